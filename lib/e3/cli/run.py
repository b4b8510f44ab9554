"""Run one task of an imported package on input files and write its output file."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command

PROG = "e3 run"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Run task TASK of package PKG (version VER, or its one imported version) on the given input files, "
        "and write its output to OUTPUT. Inputs are .beast2, .east or .json files, read as the "
        "task's input types, in the task's input order; an East task's own function is taken "
        "from the package.",
    )
    p.add_argument("repo", metavar="REPO", help="the repository (a directory holding .e3)")
    p.add_argument("task", metavar="PKG[@VER]/TASK", help="the task, e.g. my-package/greet or my-package@1.0.0/greet")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="input files, in the task's input order")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="the output file; its extension (.beast2, .east, .json) picks the format")
    p.add_argument("--force", action="store_true", help="run even if this task already succeeded on these exact inputs")
    p.add_argument("--spawn", action="store_true", help="spawn the task's command as given, even an East task (as the original engine does)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop a spawned task after SECONDS (an error)")
    return p


def _run(args: argparse.Namespace) -> int | None:
    from e3.errors import EXIT_NO
    from e3.exec import execution
    from e3.repository import open_repository

    repo = open_repository(args.repo)
    result = execution.run_task(
        repo,
        args.task,
        args.inputs,
        args.output,
        force=args.force,
        force_spawn=args.spawn,
        timeout=args.timeout,
        echo=sys.stderr.buffer,
    )
    outcome = result.outcome
    if outcome.status == "success":
        return None
    what = f"exited with status {outcome.exit_code}" if outcome.status == "failed" else (outcome.message or outcome.status)
    sys.stderr.write(f"e3 run: task {result.name} {outcome.status}: {what} (log: e3-log-tail {result.task_id[:12]})\n")
    return EXIT_NO


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
