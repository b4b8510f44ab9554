"""Verify every object in the repository: re-hash it, and find strays and leftovers."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command

PROG = "e3-fsck"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(PROG, "Verify the repository: re-hash every object, report corrupt, misnamed and leftover files, and "
        "objects that refs, history, records or the queue name but that are missing.")
    command.add_repository(p)
    p.add_argument("--decode", action="store_true", help="also decode every value with the East runtime (slower)")
    p.add_argument("--dangling", action="store_true", help="also list e3 objects that nothing reaches (not an error)")
    p.add_argument("-v", "--verbose", action="store_true", help="print what was checked on stderr")
    return p


def _run(args: argparse.Namespace) -> int:
    from e3.errors import EXIT_NO, EXIT_OK
    from e3.repo.fsck import Options, check
    from e3.storage.repository import discover_repository

    repo = discover_repository(args.repo)
    report = check(repo, Options(decode=args.decode, dangling=args.dangling))
    for problem in report.problems:
        command.write_line(str(problem))
    if args.verbose:
        others = "".join(f", {n} {what}" for what, n in sorted(report.counts.items()))
        sys.stdout.flush()
        leftovers = f", {report.leftovers} leftovers" if report.leftovers else ""
        leftovers += f", {report.damaged_cache} damaged cache entries" if report.damaged_cache else ""
        sys.stderr.write(f"{PROG}: checked {report.objects} objects{others}; {report.errors} problems{leftovers}\n")
    return EXIT_OK if report.ok else EXIT_NO


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
