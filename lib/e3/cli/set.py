"""Set a dataset's value from a file (ws.path.to.dataset)."""
from __future__ import annotations

import argparse

from e3.cli import _command as command
from e3.cli import _complete


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        "e3 set",
        "Set a dataset's value from a file (ws.path.to.dataset). Formats, by extension: .east (East text), "
        ".json (East's JSON; a number is taken for an Integer), .beast2 (binary, with its type), "
        ".csv (a table with a header line, for an Array of Structs).",
    )
    command.add_repository(p)
    p.add_argument("path", metavar="PATH", help="WS.path.to.dataset, e.g. dev.inputs.name").completer = _complete.dataset_paths
    p.add_argument("file", metavar="FILE", help="the value; '-' reads stdin (then --from is needed)")
    p.add_argument("--type", metavar="SPEC", help="the value's type; must be the dataset's type (optional: the dataset knows it)")
    formats = ("east", "json", "beast2", "csv")
    p.add_argument("--from", dest="format", choices=formats, help="the file's format (default: from its extension)")
    p.add_argument("--format", dest="format", choices=formats, help=argparse.SUPPRESS)  # its name before --from agreed with convert and hash-object
    return p


def _handle(args: argparse.Namespace) -> None:
    from e3.api.values import ValueInput
    from e3.model.paths import parse_dataset_path

    fmt = command.value_format(args.file, args.format)
    type_spec = None
    if args.type:
        from e3 import east

        type_spec = east.parse_type(args.type)
    repo = command.open_repository(args.repo)
    ws, path = parse_dataset_path(args.path)
    with command.open_input(args.file) as f:
        repo.dataset_set(ws, path, ValueInput(f, fmt, args.file), type=type_spec)
    command.write_line(f"Set {args.path} from {args.file}")


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 set", build_parser, _handle, argv)
