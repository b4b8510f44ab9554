"""Which log belongs to a workspace task (`e3 logs WS.TASK`), and following it as the task runs again.

The log files themselves (`logs/<TASK_ID>.eastl`) are e3.storage.logs; this
module finds the task_id a workspace's task stands for now.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from e3.errors import ExecutionNotFound, TaskNotFound, UsageError
from e3.model.paths import parse_dataset_path
from e3.model.task import load_task
from e3.repo import workspace
from e3.storage import identity, records, refs
from e3.storage import logs
from e3.storage.logs import follow_from, log_path, read_from

if TYPE_CHECKING:
    from e3.storage.repository import Repository


def task_log(repo: "Repository", target: str, follow: bool = False) -> Path:
    """The log of `WS.TASK`: of the execution for the task's current inputs, else of its newest recorded one.

    With `follow`, the current inputs' log is returned even before it exists
    (the follower waits for it), unless an input is unassigned.
    """
    ws, name = _task_target(target)
    current, newest = task_logs(repo, ws, name)
    if current is not None and logs.exists(current):
        return current
    if newest is not None and logs.exists(newest):
        return newest
    if follow and current is not None:
        return current
    why = "it has not run on its current inputs" if current is not None else "an input is unassigned"
    raise ExecutionNotFound(f"no log for task {name} in workspace {ws} ({why})", task=name)


def _task_target(target: str) -> tuple[str, str]:
    ws, path = parse_dataset_path(target)
    if len(path) != 1:
        raise UsageError(f"invalid task {target!r} (expected WS.TASK, e.g. dev.greet)")
    return ws, path[0]


def task_logs(repo: "Repository", ws: str, name: str) -> tuple[Path | None, Path | None]:
    """The paths of two logs of a workspace's task, existing or not: the one for its current inputs
    (None while an input is unassigned), and the one of its newest recorded execution (None if
    the workspace keeps none for it)."""
    view = workspace.require_deployed(workspace.read(repo, ws))
    task_hash = view.package.tasks.get(name)
    if task_hash is None:
        known = ", ".join(sorted(view.package.tasks)) or "none"
        raise TaskNotFound(f"task {name!r} not found in workspace {ws} (tasks: {known})", task=name)
    task = load_task(repo.objects, task_hash)
    inputs = [view.datasets.get(p) for p in task.inputs]
    current = None if None in inputs else log_path(repo, identity.task_id(task_hash, inputs))
    newest = None
    # The newest execution recorded for this workspace task, if the dataflow keeps that chain.
    commit = refs.read(repo, f"refs/tasks/{refs.check_component('workspace', ws)}/{refs.check_component('task', name)}")
    if commit is not None:
        record_hash = refs.read_state(repo, commit).get(("execution",))
        if record_hash is not None:
            rec = records.load(repo, record_hash)
            newest = log_path(repo, identity.task_id(task_hash, list(rec.input_hashes)))
    return current, newest


FOLLOW_POLL = 0.1
"""Seconds between looks for a task's next execution while `follow_task` waits for one."""


def follow_task(
    repo: "Repository", ws: str, name: str, *, all_executions: bool = False, poll: float = FOLLOW_POLL, stop=None
) -> Iterator[tuple[dict, int]]:
    """`e3 logs WS.TASK --follow`: records of the task's execution as it runs, to its end.

    - An execution of the task on its current inputs is running: follow it.
    - Otherwise, while `e3 start` runs the workspace (which may run the task, again with
      --force): wait for the task's next execution and follow it; if the run ends without
      one, the newest execution, as without --follow.
    - Otherwise, its execution on its current inputs has ended: that one, and done.
    - Otherwise (it never ran on these inputs, or an input is unassigned): wait for it to
      start, looking again at its inputs each time, and follow it.

    With `all_executions`, every execution recorded in the log comes first.
    """
    looked: dict[Path, int] = {}
    """Log path -> the offset up to which it was printed or looked at: a start beyond is the next execution."""
    waited_for_run = False
    while True:
        current, _ = task_logs(repo, ws, name)
        run_going = workspace.running_pid(repo, ws) is not None
        if current is not None and logs.exists(current):
            found = read_from(current, all_executions=True).records
            if current not in looked:
                last = _last_start(found)
                running = last is not None and found[-1][0].get("stream") != "end"
                begin = _offset_before(found, last) if last is not None else 0
                if all_executions:
                    done = found[:last] if running else found
                    yield from done
                    looked[current] = done[-1][1] if done else 0
                    if running:
                        yield from follow_from(current, looked[current], poll=poll, stop=stop)
                        return
                    if not run_going:
                        return
                else:
                    if running:
                        yield from follow_from(current, begin, poll=poll, stop=stop)
                        return
                    if found and not run_going:
                        yield from found[last:] if last is not None else found
                        return
                    looked[current] = found[-1][1] if found else 0
                waited_for_run = run_going
            else:
                later = [(i, rec) for i, (rec, end) in enumerate(found) if end > looked[current] and rec.get("stream") == "start"]
                if later:
                    i = later[0][0]
                    yield from follow_from(current, _offset_before(found, i), poll=poll, stop=stop)
                    return
                if waited_for_run and not run_going:
                    # The run ended without running the task again: what it ran last.
                    if not all_executions and found:
                        last = _last_start(found)
                        yield from found[last:] if last is not None else found
                    return
        if stop is not None and stop():
            return
        time.sleep(poll)


def _last_start(found: list[tuple[dict, int]]) -> int | None:
    for i in range(len(found) - 1, -1, -1):
        if found[i][0].get("stream") == "start":
            return i
    return None


def _offset_before(found: list[tuple[dict, int]], i: int) -> int:
    return found[i - 1][1] if i > 0 else 0
