"""Which executions of a workspace are ready to run, and putting them on the queue (`e3-enqueue`).

A task is *up to date* when its inputs are assigned, its task_id has a
success record, and its output dataset holds that success's output. A task is
*ready* when it is not up to date, its inputs are all assigned, and every task
upstream of it is up to date: a task is never queued on inputs that an
upstream task is about to replace. A ready task whose task_id already
succeeded (its output was computed but not written, e.g. after a crash or an
input put back) is queued too: the worker reuses the memo and writes it.

With `force`, every named task (every task if none is named) whose inputs are
assigned is queued, whatever its memo says.

A task_id already pending or claimed on the runner's queue is not queued again
(unless forced): several `e3-enqueue`s never make a task run twice. The check
and the writes happen under `locks/queue-<RUNNER>.lock`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from e3.errors import NotFound
from e3.storage import queue, records
from e3.storage.identity import task_id as make_task_id
from e3.storage.locks import Lock
from e3.model.paths import format_tree_path

if TYPE_CHECKING:
    from e3.storage.repository import Repository


@dataclass(frozen=True)
class NotReady:
    task: str
    reason: str


def plan(repo: "Repository", ws: str, tasks: Sequence[str] | None = None, *, force: bool = False) -> tuple[list[queue.Entry], list[NotReady]]:
    """The entries to queue for workspace `ws` (not yet written), and why the other tasks are not ready."""
    from e3.repo import workspace
    from e3.exec.plan import graph_for

    view = workspace.read(repo, ws)
    if view.package_hash is None:
        raise NotFound(f"workspace {ws} is not deployed")
    graph = graph_for(repo.objects, view.package_hash, view.package)
    if tasks:
        for t in tasks:
            if t not in graph.nodes:
                raise NotFound(f"no task named {t!r} in workspace {ws}")
    wanted = set(tasks) if tasks else set(graph.nodes)
    data = view.datasets
    up_to_date: dict[str, bool] = {}
    entries: list[queue.Entry] = []
    waiting: list[NotReady] = []
    for name in graph.order:
        node = graph.nodes[name]
        inputs = [data.get(p) for p in node.task.inputs]
        missing = [p for p, h in zip(node.task.inputs, inputs) if h is None]
        tid = None if missing else make_task_id(node.task_hash, inputs)
        reused = None if tid is None else records.reusable_output(repo, records.summary(repo, tid))
        up_to_date[name] = reused is not None and data.get(node.task.output) == reused
        if name not in wanted:
            continue
        if missing:
            waiting.append(NotReady(name, f"waiting on {format_tree_path(missing[0])} (unassigned)"))
            continue
        if not force:
            if up_to_date[name]:
                continue
            stale = [u for u in node.upstream if not up_to_date.get(u)]
            if stale:
                waiting.append(NotReady(name, f"waiting on upstream task {stale[0]}"))
                continue
        entries.append(
            queue.Entry(
                execution_id=queue.new_execution_id(),
                workspace=ws,
                task=name,
                task_hash=node.task_hash,
                task_id=tid,
                input_hashes=tuple(inputs),
                output=node.task.output,
                force=force,
            )
        )
    return entries, waiting


def enqueue_ready(
    repo: "Repository", ws: str, tasks: Sequence[str] | None = None, *, force: bool = False, runner: str = queue.DEFAULT_RUNNER
) -> tuple[list[queue.Entry], list[NotReady]]:
    """Queue every ready execution of `ws` on `runner`; return the entries queued and the tasks left waiting."""
    queue.check_runner(runner)
    with Lock(repo, f"queue-{runner}", "enqueue"):
        entries, waiting = plan(repo, ws, tasks, force=force)
        if not force:
            queued = queue.queued_task_ids(repo, runner)
            entries = [e for e in entries if e.task_id not in queued]
        queue.enqueue_many(repo, runner, entries)
    return entries, waiting
