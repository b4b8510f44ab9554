"""Print a dataset's value (ws.path.to.dataset)."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command
from e3.cli import _complete


def build_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 get", "Print the value of a dataset (ws.path.to.dataset).")
    command.add_repository(p)
    p.add_argument("path", metavar="PATH", help="WS.path.to.dataset, e.g. dev.inputs.name").completer = _complete.dataset_paths
    p.add_argument(
        "-f", "--format", choices=("east", "json", "beast2", "csv"), default="east",
        help="output format: east (default), json, beast2 (the stored bytes), csv (a table: an Array of Structs)",
    )
    return p


def _handle(args: argparse.Namespace) -> None:
    from e3.model.paths import parse_dataset_path

    repo = command.open_repository(args.repo)
    ws, path = parse_dataset_path(args.path)
    if args.format == "beast2":
        import shutil

        with repo.dataset_get(ws, path) as f:
            sys.stdout.flush()
            shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)  # the stored bytes, exactly
        return
    if args.format == "csv":
        from e3 import east, formats

        with repo.dataset_get(ws, path) as f:
            t, value = east.decode(f.read())
        sys.stdout.write(formats.dump(value, t, "csv").decode())
        return
    # A piece at a time (a value can be larger than memory), in the value's own header type: a
    # `null` dataset ref of a type without null holds Null. JSON is indented, like the original
    # engine's JSON.stringify(value, null, 2).
    from e3.beast2_stream import print_text

    print_text(lambda: repo.dataset_get(ws, path), args.format, sys.stdout.write)


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 get", build_parser, _handle, argv)
