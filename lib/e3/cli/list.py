"""List workspaces, or the datasets and subtrees at a path."""
from __future__ import annotations

import argparse

from e3.cli import _command as command


def build_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 list", "List workspaces, or the datasets and subtrees at a path (ws.path.to.tree).")
    p.add_argument("repo", metavar="REPO")
    p.add_argument("path", nargs="?", metavar="PATH", help="WS or WS.path.to.tree (default: list workspaces)")
    p.add_argument("-r", "--recursive", action="store_true", help="list every dataset below PATH, as paths")
    p.add_argument("-l", "--long", action="store_true", help="a table with each entry's type, status and size")
    return p


def format_size(n: int) -> str:
    """42 B, 1.5 KB, 3 MB (the original engine's sizes)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def _handle(args: argparse.Namespace) -> None:
    from e3.repository import open_repository

    repo = open_repository(args.repo)
    if not args.path:
        _workspaces(repo)
        return
    from e3 import datasets, east
    from e3.model.paths import format_tree_path

    view, path = datasets.locate(repo, args.path)
    entries = datasets.list_entries(view, path, recursive=args.recursive)
    if args.recursive and not args.long:
        entries = [e for e in entries if e.kind == "dataset"]
    if not entries:
        command.write_line("(empty)")
        return
    if not args.long:
        for e in entries:
            command.write_line(format_tree_path(e.path) if args.recursive else e.name)
        return
    rows = []
    for e in entries:
        name = format_tree_path(e.path) if args.recursive else e.name
        if e.kind == "tree":
            rows.append((name, "(tree)", "-", "-"))
            continue
        size = "-" if e.hash is None else "0 B" if e.status == "null" else format_size(repo.objects.size(e.hash))
        rows.append((name, east.format_type(e.type), e.status, size))
    header = ("PATH" if args.recursive else "NAME", "TYPE", "STATUS", "SIZE")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    for row in (header, *rows):
        command.write_line("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _workspaces(repo) -> None:
    from e3 import workspace
    from e3.cli.workspace import describe_deployment

    # Every workspace is read before one is printed: a corrupt ref fails the listing whole.
    lines = [f"{ws}  ({describe_deployment(repo, ws)})" for ws in workspace.list_workspaces(repo)]
    if not lines:
        command.write_line("No workspaces")
    for line in lines:
        command.write_line(line)


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 list", build_parser, _handle, argv)
