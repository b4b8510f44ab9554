"""Create, inspect, clean and remove repositories."""
from __future__ import annotations

import argparse

from e3.cli import _command as command


def build_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 repo", "Create, inspect, clean and remove e3 repositories.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a repository at PATH/.e3")
    create.add_argument("path", metavar="PATH")
    return p


def _create(args: argparse.Namespace) -> None:
    from e3.repository import create_repository

    repo = create_repository(args.path)
    command.write_line(f"Initialized empty e3 repository in {repo.root}")


ACTIONS = {"create": _create}


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 repo", build_parser, lambda a: ACTIONS[a.action](a), argv)
