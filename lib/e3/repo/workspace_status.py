"""What `e3 workspace status` reports: each task's state and the inputs still unset.

A task's state, decided in this order (first match wins):

running / queued
    An execution of the task in this workspace is claimed from the durable
    queue by a live worker (`running`, with the worker's pid), or waits on the
    queue (`queued`); or the newest execution record for its current inputs is
    `running` and its holder (pid, process start time, boot id) is alive. A
    claim or record whose holder is gone is `interrupted`.
waiting
    An input is unassigned: an unset input dataset, or the output of a task
    that has not produced it yet.
stale
    An upstream task is not up to date, so this task's inputs will change
    (also when the task has no output yet, the state is `waiting`).
up-to-date / stale (result cached) / failed / error
    From the newest execution record for the task's *current* inputs
    (task_id of its task object and input hashes): a success whose output is
    the workspace's output is up to date; a success whose output is not yet in
    the workspace is stale but free to bring up to date; failed and error say
    so.
stale / never-run
    No record for the current inputs: stale if the task produced an output for
    earlier inputs (its output is assigned, or refs/tasks/WS/TASK exists),
    else never run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from e3.storage import refs
from e3.repo import workspace
from e3.errors import RefError
from e3.model.paths import TreePath, format_tree_path

if TYPE_CHECKING:
    from e3.storage.repository import Repository

_tasks: dict[str, object] = {}


@dataclass
class TaskStatus:
    name: str
    state: str  # up-to-date | stale | never-run | running | queued | interrupted | failed | error | waiting
    detail: str = ""
    depends_on: list[str] = field(default_factory=list)
    unset_inputs: list[TreePath] = field(default_factory=list)
    pid: int | None = None


@dataclass
class WorkspaceStatus:
    view: workspace.WorkspaceView
    tasks: list[TaskStatus]
    unset_inputs: list[TreePath]
    datasets_total: int
    datasets_set: int
    running_pid: int | None


def _load_task(repo: "Repository", task_hash: str):
    task = _tasks.get(task_hash)
    if task is None:
        from e3.model.task import load_task

        task = _tasks[task_hash] = load_task(repo.objects, task_hash)
    return task


def status(repo: "Repository", ws: str) -> WorkspaceStatus:
    from e3.storage import records
    from e3.storage.identity import task_id
    from e3.process import Holder

    view = workspace.require_deployed(workspace.read(repo, ws))
    pkg = view.package
    specs = pkg.datasets()
    tasks = {name: (h, _load_task(repo, h)) for name, h in sorted(pkg.tasks.items())}
    producer = {t.output: name for name, (_, t) in tasks.items()}
    done: dict[str, TaskStatus] = {}
    active = _queued(repo, ws)

    def decide(name: str, visiting: frozenset = frozenset()) -> TaskStatus:
        if name in done:
            return done[name]
        task_hash, task = tasks[name]
        deps = sorted({producer[p] for p in task.inputs if p in producer and producer[p] != name})
        st = TaskStatus(name, "never-run", depends_on=deps)
        missing = [p for p in task.inputs if p not in view.datasets]
        output = view.datasets.get(task.output)
        record = None
        if not missing:
            record = records.latest(repo, task_id(task_hash, [view.datasets[p] for p in task.inputs]))
        upstream_behind = [d for d in deps if d not in visiting and decide(d, visiting | {name}).state != "up-to-date"]
        queued = active.get(name)
        if queued is not None:
            state, pid = queued
            st.state, st.pid = state, pid
            st.detail = f"pid {pid}" if pid and state == "running" else "its worker is gone" if state == "interrupted" else ""
        elif record is not None and record.kind == "running":
            holder = Holder(record.pid or 0, record.pid_start_time or 0, record.boot_id or "")
            if holder.alive():
                st.state, st.detail, st.pid = "running", f"pid {record.pid}", record.pid
            else:
                st.state, st.detail = "interrupted", f"pid {record.pid} is gone"
        elif missing:
            st.unset_inputs = [p for p in missing if p not in producer]
            waiting_on = sorted({producer[p] for p in missing if p in producer})
            parts = []
            if st.unset_inputs:
                parts.append("unset: " + ", ".join(format_tree_path(p) for p in st.unset_inputs))
            if waiting_on:
                parts.append("on task " + ", ".join(waiting_on))
            st.state, st.detail = "waiting", "; ".join(parts)
        elif upstream_behind:
            if output is not None:
                st.state, st.detail = "stale", "upstream " + ", ".join(upstream_behind) + " not up to date"
            else:
                st.state, st.detail = "waiting", "on task " + ", ".join(upstream_behind)
        elif record is not None and record.kind == "success":
            if record.output_hash == output:
                st.state = "up-to-date"
            else:
                st.state, st.detail = "stale", "result cached"
        elif record is not None and record.kind == "failed":
            st.state, st.detail = "failed", f"exit code {record.exit_code}"
        elif record is not None and record.kind == "error":
            st.state, st.detail = "error", (record.message or "").splitlines()[0] if record.message else ""
        elif output is not None or _has_history(repo, ws, name):
            st.state, st.detail = "stale", "inputs changed"
        done[name] = st
        return st

    statuses = [decide(name) for name in tasks]
    task_outputs = set(producer)
    unset = [p for p, spec in specs.items() if p not in view.datasets and p not in task_outputs and spec.writable]
    assigned = sum(1 for p in specs if p in view.datasets)
    return WorkspaceStatus(view, statuses, unset, len(specs), assigned, workspace.running_pid(repo, ws))


def _queued(repo: "Repository", ws: str) -> dict[str, tuple[str, int | None]]:
    """Task name -> ('running' | 'queued' | 'interrupted', worker pid) for this workspace's queue entries."""
    from e3.storage import queue

    out: dict[str, tuple[str, int | None]] = {}
    rank = {"queued": 0, "interrupted": 1, "running": 2}
    for q in queue.list_entries(repo):
        if q.entry.workspace != ws:
            continue
        state = {"pending": "queued", "claimed": "running", "dead": "interrupted"}.get(q.state, q.state)
        pid = q.holder.pid if q.holder else None
        if q.entry.task not in out or rank.get(state, 0) > rank.get(out[q.entry.task][0], 0):
            out[q.entry.task] = (state, pid)
    return out


def _has_history(repo: "Repository", ws: str, task: str) -> bool:
    try:
        return refs.read(repo, f"refs/tasks/{ws}/{task}") is not None
    except RefError:
        return False
