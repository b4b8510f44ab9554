"""Resolve names (refs, pkg@version, dev~1, dev@{2}, dev.inputs.x, hex prefixes) to hashes."""
from __future__ import annotations

import argparse

from e3.cli import _command as command

PROG = "e3-rev-parse"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Print the hash each NAME resolves to, one per line: a commit id (40 hex) for refs and revisions, an "
        "object hash (64 hex) for dataset paths and e3 objects.",
    )
    p.add_argument("--verify", action="store_true", help="exactly one NAME, which must resolve")
    p.add_argument("-q", "--quiet", action="store_true", help="with --verify: no message on failure, only exit status 1")
    p.add_argument("--symbolic-full-name", action="store_true", help="print the full ref name each NAME starts from")
    command.add_repository(p)
    p.add_argument("names", nargs="*", metavar="NAME")
    return p


def _run(args: argparse.Namespace) -> int | None:
    from e3.repo import revision
    from e3.errors import EXIT_NO, E3Error, NotFound, UsageError
    from e3.storage.repository import discover_repository

    if args.quiet and not args.verify:
        raise UsageError("--quiet only works with --verify")
    if args.verify and len(args.names) != 1:
        raise UsageError("--verify needs exactly one NAME")
    repo = discover_repository(args.repo)
    out = []
    for name in args.names:  # resolve everything before printing: a failure prints nothing
        try:
            resolved = revision.resolve(repo, name)
        except E3Error:
            if args.quiet:
                return EXIT_NO
            raise
        if args.symbolic_full_name:
            if resolved.ref is None:
                raise NotFound(f"{name} does not start from a ref")
            out.append(resolved.ref)
        else:
            out.append(resolved.hash)
    for line in out:
        command.write_line(line)
    return None


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
