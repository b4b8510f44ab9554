"""Compute a value's object hash and optionally store it."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command

PROG = "e3-hash-object"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Print the object hash of each value: Beast2 input is taken byte for byte; "
        ".east or JSON input is encoded canonically as a value of TYPE. With -w, store it.",
    )
    p.add_argument("-w", dest="write", action="store_true", help="store the value in the repository")
    p.add_argument("-t", dest="type", metavar="TYPE", help="East type of .east/JSON input; Beast2 input must have exactly this type")
    p.add_argument("--from", dest="fmt", choices=("east", "json", "beast2"), help="input format (default: by extension, else sniffed)")
    p.add_argument("--literally", action="store_true", help="check only the Beast2 header, not that the whole value decodes")
    p.add_argument("--repo", metavar="PATH", help="repository to write to (default: $E3_DIR, else search upward)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--stdin", action="store_true", help="read a value from standard input")
    src.add_argument("--stdin-paths", action="store_true", help="read file names from standard input, one per line")
    p.add_argument("files", nargs="*", metavar="FILE", help="files holding values")
    return p


def _run(args: argparse.Namespace) -> None:
    from e3.errors import UsageError
    from e3.ingest import Ingest

    if args.stdin_paths and args.files:
        raise UsageError("--stdin-paths takes no file arguments")
    if not (args.stdin or args.stdin_paths or args.files):
        raise UsageError("nothing to hash: give FILE..., --stdin or --stdin-paths")
    store = None
    if args.write:
        from e3.repository import discover_repository

        store = discover_repository(args.repo).objects
    ingest = Ingest(store, args.type, args.fmt, args.literally)
    out = sys.stdout
    if args.stdin:
        out.write(ingest.stream(sys.stdin.buffer.raw) + "\n")
    for path in args.files:
        out.write(ingest.file(path) + "\n")
    if args.stdin_paths:
        for line in sys.stdin.buffer:
            path = line.rstrip(b"\n").decode("utf-8", "surrogateescape")
            out.write(ingest.file(path) + "\n")
            out.flush()  # answer each path at once, so a script can talk to us line by line


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
