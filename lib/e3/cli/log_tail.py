"""Print or follow an execution's log (logs/TASK_ID.eastl)."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command

PROG = "e3-log-tail"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Print the newest execution's output from a task's log: its stdout on stdout, its stderr on stderr.",
    )
    p.add_argument("--repo", metavar="PATH", help="repository to read (default: $E3_DIR, else search upward)")
    p.add_argument("-f", "--follow", action="store_true", help="wait for the log to appear and print records as they come, until the execution ends")
    p.add_argument("--all", action="store_true", help="every execution recorded in the log, not only the newest")
    p.add_argument("task_id", metavar="TASK_ID", help="the task_id (64 hex digits, or a unique prefix of at least 4)")
    return p


def _run(args: argparse.Namespace) -> int | None:
    from e3.exec import logs
    from e3.repository import discover_repository

    repo = discover_repository(args.repo)
    path = logs.resolve_log(repo, args.task_id, must_exist=not args.follow)
    print_records(logs.follow(path, all_executions=args.all) if args.follow else _whole(logs, path, args.all))
    return None


def _whole(logs, path, all_executions: bool):
    records = logs.read_records(path)
    return records if all_executions else logs.last_execution(records)


def print_records(records) -> None:
    """Replay records: stdout bytes to stdout, stderr bytes to stderr, flushed as they come."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for rec in records:
        stream = rec.get("stream")
        data = rec.get("bytes")
        if not isinstance(data, bytes):
            continue
        if stream == "stderr" and command.stdout_closed():
            raise BrokenPipeError  # the reader of stdout has gone: end quietly, as a write there would
        target = err if stream == "stderr" else out
        target.write(data)
        target.flush()


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
