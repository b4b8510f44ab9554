"""List workspaces, or the datasets and subtrees at a path."""
from __future__ import annotations

import argparse

from e3.cli import _command as command
from e3.cli import _complete


def build_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 list", "List workspaces, or the datasets and subtrees at a path (ws.path.to.tree).")
    command.add_repository(p)
    p.add_argument("path", nargs="?", metavar="PATH", help="WS or WS.path.to.tree (default: list workspaces)").completer = _complete.dataset_paths
    p.add_argument("-r", "--recursive", action="store_true", help="list every dataset below PATH, as paths")
    p.add_argument("-l", "--long", action="store_true", help="a table with each entry's type, status and size")
    p.add_argument("--json", action="store_true", help="print the entries (or the workspaces) as one JSON document")
    return p


def _handle(args: argparse.Namespace) -> None:
    repo = command.open_repository(args.repo)
    if not args.path:
        if args.json:
            from e3.cli import _json

            _json.dump(repo.workspace_list())
            return
        _workspaces(repo)
        return
    from e3 import east
    from e3.model.paths import format_tree_path, parse_dataset_path

    ws, path = parse_dataset_path(args.path)
    entries = repo.dataset_list(ws, path, recursive=args.recursive)
    if args.recursive and not args.long:
        entries = [e for e in entries if e.kind == "dataset"]
    if args.json:
        from e3.cli import _json

        _json.dump(entries)
        return
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
        size = "-" if e.hash is None else "0 B" if e.status == "null" else command.format_size(e.size or 0)
        rows.append((name, east.format_type(e.type), e.status, size))
    header = ("PATH" if args.recursive else "NAME", "TYPE", "STATUS", "SIZE")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    for row in (header, *rows):
        command.write_line("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _workspaces(repo) -> None:  # noqa: ANN001 - an e3.api.Repository
    workspaces = repo.workspace_list()
    if not workspaces:
        command.write_line("No workspaces")
    for ws in workspaces:
        command.write_line(f"{ws.name}  ({ws.describe()})")


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 list", build_parser, _handle, argv)
