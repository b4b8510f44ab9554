"""A dataflow run's events and its summary."""
from __future__ import annotations

from dataclasses import dataclass, field


RAN, CACHED, FAILED, SKIPPED, STUCK, CANCELLED = "ran", "cached", "failed", "skipped", "stuck", "cancelled"
SETTLED_STATES = (RAN, CACHED, FAILED, SKIPPED, STUCK, CANCELLED)


@dataclass(frozen=True, slots=True)
class TaskStarted:
    """A task's execution was handed to a worker."""

    task: str
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaskFinished:
    """A task settled, in one of SETTLED_STATES: ran, cached (an earlier result reused), failed,
    skipped (upstream failed), stuck (an input has no value), cancelled."""

    task: str
    state: str
    seconds: float = 0.0
    message: str | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class RunSummary:
    workspace: str
    tasks: list[TaskFinished]
    """The final state of every task the run settled, by task name."""
    seconds: float
    commits: int = 0
    """Workspace commits the run made."""
    reruns: int = 0
    """Tasks evaluated again because an input changed during the run."""
    cancelled: bool = False
    dropped: list[tuple[str, str, str]] = field(default_factory=list)
    """(task, execution id, why) of queue entries left by earlier runs that the run dropped unrun."""

    def count(self, state: str) -> int:
        return sum(1 for t in self.tasks if t.state == state)

    @property
    def ok(self) -> bool:
        return all(t.state in (RAN, CACHED) for t in self.tasks)


@dataclass(frozen=True)
class RunFinished:
    """The last event of a run."""

    summary: RunSummary


DataflowEvent = TaskStarted | TaskFinished | RunFinished


@dataclass(frozen=True)
class PlannedTask:
    """What a run would do with one task (`e3 start --dry-run`)."""

    task: str
    action: str
    """up-to-date (its output is its result for its current inputs), cached (that result exists and
    would be reused), run, waits (runs after the tasks in `waits_for`, unless their new outputs
    find a cached result), stuck (an input has no value and nothing in the run gives it one)."""
    reason: str
    task_id: str | None = None
    """Known when every input of the task has a value now."""
    waits_for: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DataflowPlan:
    workspace: str
    tasks: list[PlannedTask]
    """The tasks the run would settle, in dataflow order."""

    def count(self, action: str) -> int:
        return sum(1 for t in self.tasks if t.action == action)
