"""Show a stored value's type, size, existence or content; --batch answers many from one process."""
from __future__ import annotations

import argparse
import re
import sys

from e3.cli import _command as command

PROG = "e3-cat-object"
DEFAULT_FORMAT = "%(objectname) %(objectsize) %(objecttype)"
PLACEHOLDER = re.compile(r"%\((objectname|objectsize|objecttype|rest)\)")


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Show a stored value. HASH is a full object hash or a unique prefix of at least 4 hex digits.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-t", dest="mode", action="store_const", const="type", help="print the value's East type")
    mode.add_argument("-s", dest="mode", action="store_const", const="size", help="print the object's size in bytes")
    mode.add_argument("-e", dest="mode", action="store_const", const="exists", help="exit 0 if the object exists, 1 if not, silently")
    mode.add_argument("-p", dest="mode", action="store_const", const="pretty", help="print the value as .east text")
    mode.add_argument("--batch", nargs="?", const=DEFAULT_FORMAT, metavar="FORMAT", help="for each hash on stdin print FORMAT and the content")
    mode.add_argument("--batch-check", nargs="?", const=DEFAULT_FORMAT, metavar="FORMAT", help="for each hash on stdin print FORMAT only")
    p.add_argument("-f", "--format", dest="fmt", choices=("east", "json", "beast2"), help="print the value in this format (with --batch: the content's format)")
    p.add_argument("--buffer", action="store_true", help="with --batch/--batch-check: do not flush after each answer")
    command.add_repository(p)
    p.add_argument("hash", nargs="?", metavar="HASH")
    return p


def _run(args: argparse.Namespace) -> int | None:
    from e3.errors import UsageError

    batch = args.batch or args.batch_check
    if args.mode is None and not batch and args.fmt is None:
        raise UsageError("give one of -t, -s, -e, -p, -f FORMAT, --batch or --batch-check")
    if args.mode is not None and args.fmt is not None:
        raise UsageError("-f cannot be combined with -t, -s, -e or -p")
    if batch:
        if args.hash is not None:
            raise UsageError("--batch and --batch-check read hashes from stdin, not arguments")
        if args.batch_check and args.fmt is not None:
            raise UsageError("-f goes with --batch, not --batch-check")
        repo = command.open_repository(args.repo)
        return _batch(repo, batch, with_content=bool(args.batch), fmt=args.fmt or "beast2", flush=not args.buffer)
    if args.hash is None:
        raise UsageError("missing HASH")
    repo = command.open_repository(args.repo)
    if args.mode == "exists":
        return _exists(repo, args.hash)
    obj = repo.object_resolve(args.hash)
    if args.mode == "size":
        command.write_line(str(repo.object_size(obj)))
    elif args.mode == "type":
        command.write_line(_type_of(repo, obj))
    else:
        _write_content(repo, obj, args.fmt or "east")
    return None


def _exists(repo, name: str) -> int:  # noqa: ANN001 - an e3.api.Repository
    from e3.errors import EXIT_NO, EXIT_OK, ObjectNotFound

    try:
        repo.object_resolve(name)
    except ObjectNotFound:
        return EXIT_NO
    return EXIT_OK


HEAD = 4096
"""Bytes read to find a value's type: enough for all but very wide types, which read on."""


def _type_of(repo, obj: str, size: int | None = None, head: bytes | None = None) -> str:  # noqa: ANN001 - an e3.api.Repository
    from e3.beast2_type import type_text

    if head is None:
        size, head = repo.object_head(obj, HEAD)
    data = head
    while True:
        text = type_text(data)
        if text is not None:
            return text
        # Not a header the runtime-free reader knows (or wider than what was read): the runtime decides.
        from e3 import east
        from e3.errors import CorruptObject, FormatError

        try:
            return east.format_type(east.read_type(data))
        except FormatError as e:
            if size <= len(data):
                raise CorruptObject(f"object {obj} is corrupt: {e}") from None
        data = _read(repo, obj)  # the type reaches past the head: read on
        size = len(data)


def _read(repo, obj: str) -> bytes:  # noqa: ANN001 - an e3.api.Repository
    with repo.object_read(obj) as f:
        return f.read()


def _content(repo, obj: str, fmt: str) -> bytes:  # noqa: ANN001 - an e3.api.Repository
    from e3 import east, formats
    from e3.errors import CorruptObject, FormatError

    data = _read(repo, obj)
    try:
        t, value = east.decode(data)
    except FormatError as e:
        raise CorruptObject(f"object {obj} is corrupt: {e}") from None
    return formats.dump(value, t, fmt)


def _write_content(repo, obj: str, fmt: str) -> None:  # noqa: ANN001 - an e3.api.Repository
    from e3.beast2_stream import print_text
    from e3.errors import CorruptObject, FormatError

    out = sys.stdout.buffer
    sys.stdout.flush()
    if fmt == "beast2":
        import shutil

        with repo.object_read(obj) as f:
            shutil.copyfileobj(f, out, 1 << 20)
        return
    # A piece at a time: a value can be larger than memory.
    try:
        print_text(lambda: repo.object_read(obj), fmt, sys.stdout.write, indent=False)
    except FormatError as e:
        raise CorruptObject(f"object {obj} is corrupt: {e}") from None


def _batch(repo, template: str, with_content: bool, fmt: str, flush: bool) -> None:
    """Answer one name per stdin line, like `git cat-file --batch[-check]`."""
    import contextlib

    needs_type = "%(objecttype)" in template
    quiet = contextlib.nullcontext()
    # Types are mostly read without the runtime (e3.beast2_type); decoding content needs it.
    if with_content and fmt != "beast2":
        from e3 import east

        quiet = east.quiet_runtime()
    with quiet:
        _answer_each(repo, template, with_content, fmt, flush, needs_type)


FULL_HASH = re.compile(r"[0-9a-f]{64}")


def _answer_each(repo, template: str, with_content: bool, fmt: str, flush: bool, needs_type: bool) -> None:  # noqa: ANN001
    from e3.beast2_type import type_text as fast_type_text
    from e3.errors import AmbiguousObject, CorruptObject, InvalidHash, ObjectNotFound

    needs_size = "%(objectsize)" in template
    wants_rest = "%(rest)" in template
    line_format = PLACEHOLDER.sub(lambda m: "{" + m.group(1) + "}", template.replace("{", "{{").replace("}", "}}")) + "\n"
    full_hash = FULL_HASH.fullmatch
    head_of = repo.object_head
    resolve, size_of, exists = repo.object_resolve, repo.object_size, repo.object_exists
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        text = line.decode("utf-8", "surrogateescape").rstrip("\n")
        name, _, rest = text.partition(" ") if wants_rest else (text.strip(), "", "")
        try:
            # A full hash needs no separate existence check: opening the object is one.
            obj = name if full_hash(name) else resolve(name)
            content = None
            size = None
            type_text = ""
            if with_content:
                content = _read(repo, obj) if fmt == "beast2" else _content(repo, obj, fmt)
                size = len(content)
                if needs_type:
                    type_text = _type_of(repo, obj, len(content), content) if fmt == "beast2" else _type_of(repo, obj)
            elif needs_type:
                size, head = head_of(obj, HEAD)
                type_text = fast_type_text(head) or _type_of(repo, obj, size, head)
            elif needs_size:
                size = size_of(obj)
            elif obj is name and not exists(obj):
                raise ObjectNotFound(name)
        except (ObjectNotFound, InvalidHash):
            out.write(f"{name} missing\n".encode())
        except AmbiguousObject:
            out.write(f"{name} ambiguous\n".encode())
        except CorruptObject:
            out.write(f"{name} corrupt\n".encode())
        else:
            out.write(line_format.format(objectname=obj, objecttype=type_text, objectsize=size, rest=rest).encode())
            if content is not None:
                out.write(content)
                out.write(b"\n")
        if flush:
            out.flush()


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
