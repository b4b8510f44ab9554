"""Print or follow an execution's log (logs/TASK_ID.eastl)."""
from __future__ import annotations

import argparse

from e3.cli import _command as command

PROG = "e3-log-tail"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Print the newest execution's output from a task's log: its stdout on stdout, its stderr on stderr.",
    )
    p.add_argument("-f", "--follow", action="store_true", help="wait for the log to appear and print records as they come, until the execution ends")
    p.add_argument("--all", action="store_true", help="every execution recorded in the log, not only the newest")
    command.add_repository(p)
    p.add_argument("task_id", metavar="TASK_ID", help="the task_id (64 hex digits, or a unique prefix of at least 4)")
    return p


def _run(args: argparse.Namespace) -> int | None:
    from e3.storage import logs
    from e3.storage.repository import discover_repository

    repo = discover_repository(args.repo)
    path = logs.resolve_log(repo, args.task_id, must_exist=not args.follow)
    if args.follow:
        records = logs.follow(path, all_executions=args.all)
    else:
        records = logs.read_records(path)
        records = records if args.all else logs.last_execution(records)
    command.replay((r.get("stream"), r["bytes"]) for r in records if isinstance(r.get("bytes"), bytes))
    return None


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
