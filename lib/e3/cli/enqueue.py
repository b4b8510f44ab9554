"""`e3-enqueue REPO WS [TASK...]`: put a workspace's ready executions on the durable queue."""
from __future__ import annotations

import argparse

from e3.cli import _command as command
from e3.cli import _complete

PROG = "e3-enqueue"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Queue every ready task execution of workspace WS (or of the named TASKs) and print their execution ids.",
    )
    command.add_repository(p)
    p.add_argument("workspace", metavar="WS", help="workspace").completer = _complete.workspaces
    p.add_argument("tasks", nargs="*", metavar="TASK", help="only these tasks (default: every task)")
    p.add_argument("--force", action="store_true", help="queue the tasks even if up to date or already queued")
    p.add_argument("--runner", default="local", metavar="R", help="queue to put them on (default: local)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the task name, and on stderr why other tasks wait")
    p.parse_args = p.parse_intermixed_args  # options may follow the task names, as in git
    return p


def _run(args: argparse.Namespace) -> None:
    import sys

    from e3.exec.ready import enqueue_ready
    from e3.storage.repository import discover_repository

    repo = discover_repository(args.repo)
    entries, waiting = enqueue_ready(repo, args.workspace, args.tasks or None, force=args.force, runner=args.runner)
    for e in entries:
        command.write_line(f"{e.execution_id} {e.task}" if args.verbose else e.execution_id)
    if args.verbose:
        for w in waiting:
            sys.stderr.write(f"{PROG}: {w.task}: {w.reason}\n")


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
