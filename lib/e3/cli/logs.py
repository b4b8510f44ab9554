"""Print or follow the output of a workspace task's execution."""
from __future__ import annotations

import argparse

from e3.cli import _command as command

PROG = "e3 logs"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Print the output of task TASK in workspace WS: the execution for its current inputs, "
        "else its newest recorded execution. The task's stdout goes to stdout, its stderr to stderr.",
    )
    p.add_argument("repo", metavar="REPO", help="the repository (a directory holding .e3)")
    p.add_argument("target", metavar="WS.TASK", help="workspace and task name, e.g. dev.greet")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing as the execution writes, until it ends; wait for it to start")
    p.add_argument("--all", action="store_true", help="every execution recorded in the task's log, not only the newest")
    return p


def _run(args: argparse.Namespace) -> int | None:
    from e3 import api
    from e3.errors import UsageError
    from e3.model.paths import parse_dataset_path

    repo = api.open(args.repo)
    ws, path = parse_dataset_path(args.target)
    if len(path) != 1:
        raise UsageError(f"invalid task {args.target!r} (expected WS.TASK, e.g. dev.greet)")
    if args.follow:
        chunks = repo.log_follow(ws, path[0], all_executions=args.all)
    else:
        chunks = repo.log_read(ws, path[0], all_executions=args.all).chunks
    command.replay((c.stream, c.data) for c in chunks)
    return None


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
