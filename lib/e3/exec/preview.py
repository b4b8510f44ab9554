"""What `e3 start` would do now, without doing it (`e3 start --dry-run`).

The same walk as the scheduler's first pass, over the workspace's datasets as
they are: a task whose inputs all have values gets its task_id, and the memo
says whether its result would be reused. A reused result's hash is known, so
the tasks below it are decided too; below a task that would run, nothing can
be known before it runs, so those tasks wait for it. Nothing is locked,
queued or written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from e3.model.paths import format_tree_path

if TYPE_CHECKING:
    from e3.exec.plan import Graph
    from e3.model.paths import TreePath
    from e3.storage.repository import Repository

# What a task would do: its result reused (and its output already the workspace's, or not yet),
# run now, run once the tasks it waits for have run (unless their results are reused then),
# or not run at all because an input has no value and nothing in this run will give it one.
UP_TO_DATE, CACHED, RUN, WAITS, STUCK = "up-to-date", "cached", "run", "waits", "stuck"


@dataclass(frozen=True)
class Step:
    task: str
    action: str
    """up-to-date | cached | run | waits | stuck"""
    reason: str
    task_id: str | None = None
    """Known when every input has a value now."""
    waits_for: tuple[str, ...] = ()
    """Tasks that would run first (for `waits`)."""


def preview(
    repo: "Repository",
    graph: "Graph",
    datasets: dict["TreePath", str],
    selected: set[str] | None = None,
    force: set[str] = frozenset(),
) -> list[Step]:
    """Each selected task's step, in dataflow order; the tasks in `force` run even if cached."""
    from e3.storage import records
    from e3.storage.identity import task_id as make_task_id

    selected = set(graph.nodes) if selected is None else selected
    known = dict(datasets)
    pending: dict["TreePath", str] = {}
    """Output path -> the task that would write it in this run (not known before it runs)."""
    stuck: dict["TreePath", str] = {}
    """Output path -> the task that cannot run, so nothing will write it."""
    steps = []
    for name in graph.order:
        if name not in selected:
            continue
        node = graph.nodes[name]
        waits = sorted({pending[p] for p in node.task.inputs if p in pending})
        missing = [p for p in node.task.inputs if p not in known and p not in pending]
        if missing:
            path = missing[0]
            producer = graph.producer.get(path)
            if path in stuck:
                why = f"upstream task {stuck[path]} cannot run"
            elif producer is None:
                why = f"input {format_tree_path(path)} is unassigned"
            else:
                why = f"{format_tree_path(path)} has no value and task {producer} is not part of this run"
            stuck[node.task.output] = name
            known.pop(node.task.output, None)  # the run skips what reads it, old value or not
            steps.append(Step(name, STUCK, why))
            continue
        if waits:
            pending[node.task.output] = name
            shown = ", ".join(waits)
            steps.append(Step(name, WAITS, f"after {shown}: then runs, unless a result for its new inputs is cached", None, tuple(waits)))
            continue
        tid = make_task_id(node.task_hash, [known[p] for p in node.task.inputs])
        done = records.summary(repo, tid)
        reusable = records.reusable_output(repo, done)
        forced = name in force
        if reusable is not None and not forced:
            if known.get(node.task.output) == reusable:
                steps.append(Step(name, UP_TO_DATE, "its output is the result for its current inputs", tid))
            else:
                steps.append(Step(name, CACHED, "a result for its current inputs exists: reused, not run", tid))
            known[node.task.output] = reusable
            continue
        if forced:
            why = "--force"
        elif done is None:
            why = "no result for its current inputs"
        elif done.kind in ("failed", "error"):
            why = f"its last run on these inputs {'failed' if done.kind == 'failed' else 'ended in an error'}; runs again"
        elif done.kind == "running":
            why = "an execution on these inputs is recorded as running"
        else:
            why = "its recorded result is missing; runs again"
        pending[node.task.output] = name
        known.pop(node.task.output, None)
        steps.append(Step(name, RUN, why, tid))
    return steps
