"""Convert a value between .east, .json, .beast2 and .csv."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command
from e3.formats import FORMATS, dump, format_of_path, load

PROG = "e3 convert"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(PROG, "Convert a value between .east text, JSON, Beast2 and CSV (a table: an Array of Structs).")
    p.add_argument("input", nargs="?", metavar="INPUT", help="file to read (default or '-': standard input)")
    p.add_argument("--from", dest="src", choices=FORMATS, help="input format (default: by extension, else sniffed)")
    p.add_argument("--to", dest="dst", choices=FORMATS, help="output format (default: by -o's extension, else east)")
    p.add_argument("-o", dest="output", metavar="OUT", help="write to OUT, replacing it atomically (default: standard output)")
    p.add_argument("--type", metavar="SPEC", help="the value's East type (needed for .east, JSON and CSV input)")
    return p


def _run(args: argparse.Namespace) -> None:
    from e3 import east
    from e3.container import MAGIC
    from e3.errors import FormatError, TypeMismatch

    t = east.parse_type(args.type) if args.type else None
    reading_stdin = args.input in (None, "-")
    name = "<stdin>" if reading_stdin else args.input
    try:
        data = command.read_input(args.input)
    except OSError as e:
        raise FormatError(f"cannot read {name}: {(e.strerror or str(e)).lower()}") from None
    src = args.src or (None if reading_stdin else format_of_path(args.input))
    if src is None:
        src = "beast2" if data.startswith(MAGIC) or t is None else "east"
    dst = args.dst or (args.output and format_of_path(args.output)) or "east"
    try:
        found, value = load(data, src, t)
        out = dump(value, found, dst)
    except (FormatError, TypeMismatch) as e:
        raise type(e)(f"{name}: {e}") from None
    if args.output:
        with command.output_file(args.output) as f:
            f.write(out)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(out)


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
