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
    from e3.cli.log_tail import print_records
    from e3.exec import logs
    from e3.repository import open_repository

    repo = open_repository(args.repo)
    path = logs.task_log(repo, args.target, follow=args.follow)
    if args.follow:
        print_records(logs.follow(path, all_executions=args.all))
    else:
        records = logs.read_records(path)
        print_records(records if args.all else logs.last_execution(records))
    return None


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
