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
    command.add_repository(p)
    p.add_argument("task", metavar="PKG[@VER]/TASK", help="the task, e.g. my-package/greet or my-package@1.0.0/greet")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="input files, in the task's input order")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="the output file; its extension (.beast2, .east, .json) picks the format")
    p.add_argument("--force", action="store_true", help="run even if this task already succeeded on these exact inputs")
    p.add_argument("--spawn", action="store_true", help="spawn the task's command as given, even an East task (as the original engine does)")
    p.add_argument("--timeout", type=command.positive_float, metavar="SECONDS", help="stop a spawned task after SECONDS (an error)")
    return p


def _run(args: argparse.Namespace) -> int | None:
    from e3 import east, formats
    from e3.api import names
    from e3.api.values import ValueInput
    from e3.errors import EXIT_NO, UsageError

    repo = command.open_repository(args.repo)
    out_fmt = formats.format_of_path(args.output)
    if out_fmt is None:
        raise UsageError(f"cannot tell the format of {args.output!r} from its name (expected .beast2, .east or .json)")
    package, version, task = names.task_spec(args.task)
    inputs = [ValueInput(_InputFile(file), formats.format_of_path(file), file) for file in args.inputs]
    result = repo.task_run(
        package, version, task, inputs, force=args.force, spawn=args.spawn, timeout=args.timeout, echo=sys.stderr.buffer
    )
    if result.status == "success":
        with repo.object_read(result.output_hash) as f:
            data = f.read()
        if out_fmt != "beast2":
            t, value = east.decode(data)
            data = formats.dump(value, t, out_fmt)
        with command.output_file(args.output) as out:
            out.write(data)
        return None
    what = f"exited with status {result.exit_code}" if result.status == "failed" else (result.message or result.status)
    sys.stderr.write(f"e3 run: task {result.label} {result.status}: {what} (log: e3-log-tail {result.task_id[:12]})\n")
    return EXIT_NO


class _InputFile:
    """An input file opened when the task comes to it, so that its problems are named in their turn."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self) -> bytes:
        from e3.errors import NotFound

        try:
            with open(self.path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFound(f"input file {self.path} not found") from None


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
