"""`e3-run-task REPO [--once] [--runner R] [--workers N]`: a worker serving a repository's queue."""
from __future__ import annotations

import argparse

from e3.cli import _command as command

PROG = "e3-run-task"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Claim queued executions and run each to completion: record its outcome, write its output into its workspace.",
    )
    command.add_repository(p)
    p.add_argument("--once", action="store_true", help="process the queue until it is empty, then exit")
    p.add_argument("--runner", default="local", metavar="R", help="queue to serve (default: local)")
    p.add_argument("--workers", type=command.positive_int, default=1, metavar="N", help="executions to run at once (default: 1)")
    p.add_argument("--timeout", type=command.positive_float, metavar="SECONDS", help="fail an execution that runs longer")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing per execution")
    return p


def _run(args: argparse.Namespace) -> int:
    import signal

    from e3.errors import EXIT_NO
    from e3.exec.queue_worker import Worker
    from e3.storage.repository import discover_repository

    repo = discover_repository(args.repo)

    def report(r) -> None:
        if not args.quiet:
            status = "cached" if r.how == "cached" else r.status
            command.write_line(f"{r.entry.execution_id} {status} {r.entry.workspace}.{r.entry.task}")
            import sys

            sys.stdout.flush()

    # SIGTERM stops like Ctrl-C: running tasks are killed and recorded, nothing is left half-done.
    # SIGINT is set too: a parent may have left it ignored, and a worker must still be stoppable.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    worker = Worker(repo, args.runner, workers=args.workers, once=args.once, timeout=args.timeout, on_result=report)
    results = worker.run()
    return EXIT_NO if any(r.status != "success" for r in results) else None


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
