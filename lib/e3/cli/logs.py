"""Print or follow the output of a workspace task's execution; or list a workspace's tasks and how they last ran."""
from __future__ import annotations

import argparse
import sys
import time

from e3.cli import _command as command
from e3.cli import _complete

PROG = "e3 logs"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Print the output of task TASK in workspace WS: the execution for its current inputs, "
        "else its newest recorded execution. The task's stdout goes to stdout, its stderr to stderr. "
        "Given WS alone, list its tasks and how each last ran.",
    )
    command.add_repository(p)
    p.add_argument(
        "target", metavar="WS.TASK", help="workspace and task name, e.g. dev.greet; or a workspace, to list its tasks"
    ).completer = _complete.workspace_tasks
    p.add_argument(
        "-f", "--follow", action="store_true",
        help="keep printing as the execution writes, until it ends; if none runs, wait for the next one",
    )
    p.add_argument("--all", action="store_true", help="every execution recorded in the task's log, each under a header")
    p.add_argument("--json", action="store_true", help="print the output as JSON lines: {stream, data, offset} per chunk")
    return p


def _run(args: argparse.Namespace) -> int | None:
    from e3.errors import UsageError
    from e3.model.paths import parse_dataset_path

    repo = command.open_repository(args.repo)
    ws, path = parse_dataset_path(args.target)
    if not path:
        return _tasks(repo, ws, args.json)
    if len(path) != 1:
        raise UsageError(f"invalid task {args.target!r} (expected WS.TASK, e.g. dev.greet, or WS)")
    task = path[0]
    if args.json:
        from e3.cli import _json

        chunks = repo.log_follow(ws, task, all_executions=args.all) if args.follow else repo.log_read(ws, task, all_executions=args.all).chunks
        for c in chunks:
            _json.line(c)
        return None
    if not args.all:
        chunks = repo.log_follow(ws, task) if args.follow else repo.log_read(ws, task).chunks
        command.replay((c.stream, c.data) for c in chunks)
        return None
    # --all: every execution under a header saying which one, when it started and how it ended.
    from e3.errors import ExecutionNotFound

    try:
        read = repo.log_read(ws, task, all_executions=True, markers=True)
    except ExecutionNotFound:
        if not args.follow:
            raise
        read = None  # nothing yet: wait for the first
    if read is not None:
        _replay_with_headers(read.chunks)
    if args.follow:
        # on from where that read ended: the rest of a running execution, else the next one
        offset = read.offset if read is not None else None
        _replay_with_headers(repo.log_follow(ws, task, offset=offset, all_executions=True, markers=True), live=True)
    return None


def _header(start, end) -> str:  # noqa: ANN001 - e3.api.LogChunk markers
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start.time)) if start and start.time else "unknown time"
    ident = start.execution_id if start and start.execution_id else "(no start record)"
    outcome = end.status if end is not None else "running"
    took = f" after {end.time - start.time:.2f}s" if end is not None and start and start.time and end.time else ""
    return f"==> execution {ident}, started {when}: {outcome}{took} <=="


def _replay_with_headers(chunks, live: bool = False) -> None:  # noqa: ANN001 - LogChunk values
    """Each execution's output under its header. Read whole, an execution's outcome is in its header;
    followed (`live`), the header says `running` and a line at its end says how it ended."""
    chunks = list(chunks) if not live else chunks
    if not live:
        groups: list[list] = []
        for c in chunks:
            if c.stream == "start" or not groups:
                groups.append([])
            groups[-1].append(c)
        for group in groups:
            start = group[0] if group[0].stream == "start" else None
            end = next((c for c in group if c.stream == "end"), None)
            command.write_line(_header(start, end))
            sys.stdout.flush()
            command.replay((c.stream, c.data) for c in group if c.stream in ("stdout", "stderr"))
        return
    start = None
    for c in chunks:
        if c.stream == "start":
            start = c
            command.write_line(_header(c, None))
            sys.stdout.flush()
        elif c.stream == "end":
            command.write_line(f"==> execution {start.execution_id if start else ''} ended: {c.status} <==")
            sys.stdout.flush()
        else:
            command.replay([(c.stream, c.data)])


def _tasks(repo, ws: str, as_json: bool) -> None:  # noqa: ANN001 - an e3.api.Repository
    """`e3 logs WS`: each task, how its execution on its current inputs went, when, how long."""
    tasks = repo.task_list(ws)
    states = {t.name: t for t in repo.workspace_status(ws).tasks}
    rows = []
    for t in tasks:
        executions = repo.task_executions(ws, t.name)
        rows.append((t.name, states.get(t.name), executions[0] if executions else None))
    if as_json:
        from e3.cli import _json

        _json.dump(
            [{"task": name, "state": st.state if st else None, "last": ex} for name, st, ex in rows]
        )
        return
    table = [("TASK", "LAST RUN", "TOOK", "OUTCOME")]
    for name, st, ex in rows:
        if ex is None:  # not run on its current inputs: what workspace status says of it
            table.append((name, "-", "-", st.describe() if st else "never run"))
            continue
        when = ex.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        took = f"{(ex.completed_at - ex.started_at).total_seconds():.2f}s" if ex.completed_at else "-"
        if ex.status == "failed":
            outcome = f"failed (exit code {ex.exit_code})"
        elif ex.status == "error":
            outcome = f"error: {(ex.message or '').splitlines()[0] if ex.message else ''}"
        elif ex.status == "running":
            outcome = f"running (pid {ex.pid})" if ex.pid else "running"
        else:
            outcome = ex.status
        table.append((name, when, took, outcome))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        command.write_line("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[3])


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
