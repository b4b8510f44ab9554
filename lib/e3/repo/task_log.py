"""Which log belongs to a workspace task (`e3 logs WS.TASK`).

The log files themselves (`logs/<TASK_ID>.eastl`) are e3.storage.logs; this
module finds the task_id a workspace's task stands for now.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from e3.errors import ExecutionNotFound, TaskNotFound, UsageError
from e3.model.paths import parse_dataset_path
from e3.model.task import load_task
from e3.repo import workspace
from e3.storage import identity, records, refs
from e3.storage.logs import log_path

if TYPE_CHECKING:
    from e3.storage.repository import Repository


def task_log(repo: "Repository", target: str, follow: bool = False) -> Path:
    """The log of `WS.TASK`: of the execution for the task's current inputs, else of its newest recorded one.

    With `follow`, the current inputs' log is returned even before it exists
    (the follower waits for it), unless an input is unassigned.
    """
    ws, path = parse_dataset_path(target)
    if len(path) != 1:
        raise UsageError(f"invalid task {target!r} (expected WS.TASK, e.g. dev.greet)")
    (name,) = path
    view = workspace.require_deployed(workspace.read(repo, ws))
    task_hash = view.package.tasks.get(name)
    if task_hash is None:
        known = ", ".join(sorted(view.package.tasks)) or "none"
        raise TaskNotFound(f"task {name!r} not found in workspace {ws} (tasks: {known})", task=name)
    task = load_task(repo.objects, task_hash)
    inputs = [view.datasets.get(p) for p in task.inputs]
    current = None if None in inputs else log_path(repo, identity.task_id(task_hash, inputs))
    if current is not None and current.exists():
        return current
    # The newest execution recorded for this workspace task, if the dataflow keeps that chain.
    commit = refs.read(repo, f"refs/tasks/{refs.check_component('workspace', ws)}/{refs.check_component('task', name)}")
    if commit is not None:
        record_hash = refs.read_state(repo, commit).get(("execution",))
        if record_hash is not None:
            rec = records.load(repo, record_hash)
            newest = log_path(repo, identity.task_id(task_hash, list(rec.input_hashes)))
            if newest.exists():
                return newest
    if follow and current is not None:
        return current
    why = "it has not run on its current inputs" if current is not None else "an input is unassigned"
    raise ExecutionNotFound(f"no log for task {name} in workspace {ws} ({why})", task=name)
