"""One dataset at a glance: its type, value, size, who writes it, and whether it is up to date."""
from __future__ import annotations

import argparse

from e3.cli import _command as command
from e3.cli import _complete

PROG = "e3 status"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Show one dataset (WS.path.to.dataset): its type, whether it is set, its hash and size, "
        "the task that writes it and whether that task is up to date, and the tasks that read it.",
    )
    command.add_repository(p)
    p.add_argument("path", metavar="PATH", help="WS.path.to.dataset, e.g. dev.tasks.greet.output").completer = _complete.dataset_paths
    p.add_argument("--json", action="store_true", help="print the same facts as one JSON document")
    return p


def _run(args: argparse.Namespace) -> None:
    from e3 import east
    from e3.model.paths import format_tree_path, parse_dataset_path

    repo = command.open_repository(args.repo)
    ws, path = parse_dataset_path(args.path)
    entry = repo.dataset_status(ws, path)
    graph = repo.dataflow_graph(ws)
    writer = next((t.name for t in graph.tasks if tuple(t.output) == tuple(path)), None)
    readers = [t.name for t in graph.tasks if tuple(path) in {tuple(p) for p in t.inputs} and writer != t.name]
    state = None
    if writer is not None:
        state = next(t for t in repo.workspace_status(ws).tasks if t.name == writer)
    if args.json:
        from e3.cli import _json

        _json.dump(
            {
                "workspace": ws,
                "path": format_tree_path(path),
                "type": east.format_type(entry.type),
                "writable": entry.writable,
                "status": entry.status,
                "hash": entry.hash,
                "size": entry.size,
                "written_by": writer,
                "task_state": state.state if state else None,
                "task_detail": state.detail if state else None,
                "read_by": readers,
            }
        )
        return
    w = command.write_line
    w(f"dataset:    {ws}{format_tree_path(path)}")
    w(f"type:       {east.format_type(entry.type)}")
    if entry.hash is None:
        w("value:      unassigned")
    else:
        w(f"value:      {entry.status}, {command.format_size(entry.size or 0)}, {entry.hash}")
    if writer is not None:
        w(f"written by: task {writer}, {state.describe()}")
    elif entry.writable:
        w("written by: e3 set (an input)")
    else:
        w("written by: the package (not writable)")
    w(f"read by:    {', '.join(readers) if readers else 'no task'}")


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
