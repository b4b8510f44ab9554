"""List refs and the commits they point at."""
from __future__ import annotations

import argparse

from e3.cli import _command as command

PROG = "e3-show-ref"
NAMESPACES = {"packages": "refs/packages/", "workspaces": "refs/workspaces/", "tasks": "refs/tasks/"}


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Print 'COMMIT REF' for every ref, or for those matching a PATTERN (a full name, or its last components). "
        "Exit 1 if none matched.",
    )
    for ns in NAMESPACES:
        p.add_argument(f"--{ns}", action="store_true", help=f"only refs/{ns}/")
    p.add_argument("--hash", action="store_true", help="print only the commit ids")
    p.add_argument("--verify", action="store_true", help="PATTERNs are exact full ref names; each must exist")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing; only the exit status tells")
    command.add_repository(p)
    p.add_argument("patterns", nargs="*", metavar="PATTERN")
    return p


def _run(args: argparse.Namespace) -> int:
    from e3.storage import refs
    from e3.errors import EXIT_NO, NotFound, UsageError
    from e3.storage.repository import discover_repository

    repo = discover_repository(args.repo)
    if args.verify:
        if not args.patterns:
            raise UsageError("--verify needs at least one ref name")
        found = []
        for name in args.patterns:
            value = refs.read(repo, refs.check_ref_name(name))
            if value is None:
                if args.quiet:
                    return EXIT_NO
                raise NotFound(f"ref {name} does not exist")
            found.append((name, value))
    else:
        prefixes = [NAMESPACES[ns] for ns in NAMESPACES if getattr(args, ns)] or ["refs/"]
        found = [
            (name, value)
            for prefix in prefixes
            for name, value in refs.list_refs(repo, prefix)
            if not args.patterns or any(_matches(name, p) for p in args.patterns)
        ]
    if not found:
        return EXIT_NO
    if not args.quiet:
        for name, value in found:
            command.write_line(value if args.hash else f"{value} {name}")
    return None


def _matches(name: str, pattern: str) -> bool:
    """git's rule: a pattern matches a ref whose trailing path components equal it."""
    return name == pattern or name.endswith("/" + pattern.strip("/"))


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
