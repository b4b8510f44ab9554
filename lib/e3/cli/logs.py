"""Print or follow the output of a workspace task's execution."""
from __future__ import annotations

import argparse

from e3.cli import _command as command
from e3.cli import _complete

PROG = "e3 logs"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Print the output of task TASK in workspace WS: the execution for its current inputs, "
        "else its newest recorded execution. The task's stdout goes to stdout, its stderr to stderr.",
    )
    command.add_repository(p)
    p.add_argument("target", metavar="WS.TASK", help="workspace and task name, e.g. dev.greet").completer = _complete.workspace_tasks
    p.add_argument("-f", "--follow", action="store_true", help="keep printing as the execution writes, until it ends; wait for it to start")
    p.add_argument("--all", action="store_true", help="every execution recorded in the task's log, not only the newest")
    p.add_argument("--json", action="store_true", help="print the output as JSON lines: {stream, data, offset} per chunk")
    return p


def _run(args: argparse.Namespace) -> int | None:
    from e3.errors import UsageError
    from e3.model.paths import parse_dataset_path

    repo = command.open_repository(args.repo)
    ws, path = parse_dataset_path(args.target)
    if len(path) != 1:
        raise UsageError(f"invalid task {args.target!r} (expected WS.TASK, e.g. dev.greet)")
    if args.follow:
        chunks = repo.log_follow(ws, path[0], all_executions=args.all)
    else:
        chunks = repo.log_read(ws, path[0], all_executions=args.all).chunks
    if args.json:
        from e3.cli import _json

        for c in chunks:
            _json.line(c)
        return None
    command.replay((c.stream, c.data) for c in chunks)
    return None


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
