"""Compute a value's object hash and optionally store it."""
from __future__ import annotations

import argparse
import os
import sys

from e3.cli import _command as command

PROG = "e3-hash-object"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Print the object hash of each value: Beast2 input is taken byte for byte; "
        ".east or JSON input is encoded canonically as a value of TYPE. With -w, store it.",
    )
    p.add_argument("-w", dest="write", action="store_true", help="store the value in the repository")
    p.add_argument("-t", "--type", dest="type", metavar="TYPE", help="East type of .east/JSON input; Beast2 input must have exactly this type")
    p.add_argument("--from", dest="fmt", choices=("east", "json", "beast2"), help="input format (default: by extension, else sniffed)")
    p.add_argument("--literally", action="store_true", help="check only the Beast2 header, not that the whole value decodes")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--stdin", action="store_true", help="read a value from standard input")
    src.add_argument("--stdin-paths", action="store_true", help="read file names from standard input, one per line")
    command.add_repository(p)
    p.add_argument("files", nargs="*", metavar="FILE", help="files holding values")
    return p


def _run(args: argparse.Namespace) -> None:
    from e3.errors import UsageError
    from e3.repo.ingest import Ingest

    if args.stdin_paths and args.files:
        raise UsageError("--stdin-paths takes no file arguments")
    if not (args.stdin or args.stdin_paths or args.files):
        raise UsageError("nothing to hash: give FILE..., --stdin or --stdin-paths")
    repo = None
    if args.write:

        repo = command.open_repository(args.repo)
    if args.stdin:
        each = repo.object_writer(batch=False) if repo is not None else None
        sys.stdout.write(Ingest(each, args.type, args.fmt, args.literally).stream(sys.stdin.buffer.raw) + "\n")
    if not (args.files or args.stdin_paths):
        return
    # Many inputs: written as one batch (one background sync per group of objects, not two
    # fsyncs per object); each hash is printed once its object is durable.
    from e3.runtime_stderr import quiet_runtime

    batch = repo.object_writer() if repo is not None else None
    ingest = Ingest(batch, args.type, args.fmt, args.literally)
    done: list[str] = []
    pool = None
    try:
        with quiet_runtime():  # silence the runtime's own stderr once, not per value
            for group in [args.files] if args.files else _line_groups(sys.stdin.buffer.raw):
                if pool is None and repo is not None and len(group) >= PARALLEL_FROM and _cpus() > 1 and _local(repo):
                    # Bulk input: blocks of names to forked workers, answers in input order.
                    from e3.repo.ingest_pool import IngestPool

                    _publish(batch, done)
                    pool = IngestPool(lambda: _worker(repo, args), min(_cpus(), 8))
                if pool is not None:
                    for block in _blocks(group):
                        _print_answer(*pool.submit(block))
                    if not (args.stdin_paths and _more_input(sys.stdin.buffer.raw)):
                        _print_answer(*pool.drain())
                    continue
                for path in group:
                    done.append(ingest.file(path))
                    _print_durable(batch, done)
                if not (args.stdin_paths and _more_input(sys.stdin.buffer.raw)):
                    _publish(batch, done)  # before waiting for input: whoever sent these may wait for the answers
            if pool is not None:
                _print_answer(*pool.drain())
            _publish(batch, done)
    except KeyboardInterrupt:
        if batch is not None:
            batch.discard()
        raise
    except BaseException:
        _publish(batch, done)  # values before a failing one are stored and reported, as if each were hashed alone
        raise
    finally:
        if pool is not None:
            pool.close()


PARALLEL_FROM = 1024
"""Names available at once from which forked workers repay starting them."""


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _local(repo) -> bool:  # noqa: ANN001 - an e3.api.Repository
    """Forked workers write through their own copy of the handle: only a local one can be copied so."""
    from e3 import api

    return not api.is_remote(repo.location)


def _worker(repo, args: argparse.Namespace):  # noqa: ANN001, ANN202 - an e3.api.Repository -> (Ingest, ObjectWriter)
    from e3.repo.ingest import Ingest

    batch = repo.object_writer()
    return Ingest(batch, args.type, args.fmt, args.literally), batch


def _blocks(group: list[str]):  # noqa: ANN202 - an iterator of lists
    from e3.repo.ingest_pool import BLOCK

    for i in range(0, len(group), BLOCK):
        yield group[i : i + BLOCK]


def _print_answer(hashes: list[str], error: tuple[str, str] | None) -> None:
    """Print a worker's hashes; then raise its error, if it had one."""
    if hashes:
        sys.stdout.write("\n".join(hashes) + "\n")
        sys.stdout.flush()
    if error is not None:
        from e3.repo.ingest_pool import raise_error

        raise_error(error)


def _print_durable(batch, done: list[str]) -> None:  # noqa: ANN001 - an e3.api.ObjectWriter or None
    """Print the hashes whose objects the batch has made durable (in input order)."""
    ready = len(done) - (batch.pending if batch is not None else 0)
    if ready > 0:
        sys.stdout.write("\n".join(done[:ready]) + "\n")
        sys.stdout.flush()
        del done[:ready]


def _publish(batch, done: list[str]) -> None:  # noqa: ANN001 - an e3.api.ObjectWriter or None
    """Make the pending values durable, then print their hashes."""
    if batch is not None:
        batch.flush()
    if done:
        sys.stdout.write("\n".join(done) + "\n")
        sys.stdout.flush()
        done.clear()


def _more_input(raw) -> bool:  # noqa: ANN001 - a raw binary stream
    """True if reading `raw` now would not wait (more names, or the end, are already there)."""
    import select

    try:
        return bool(select.select([raw], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def _line_groups(raw):  # noqa: ANN001, ANN202 - a raw binary stream -> iterator of lists of paths
    """File names from stdin, grouped by what one read returns.

    Answering after each group (not each line) lets bulk input share one
    sync, while a script that writes one name and waits still gets its answer.
    """
    partial = b""
    while True:
        chunk = raw.read(1 << 16)
        if not chunk:
            break
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        if lines:
            yield [os.fsdecode(line) for line in lines if line]
    if partial:
        yield [os.fsdecode(partial)]


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
