"""The values that cross the repository interface: arguments, results and run events.

Plain frozen dataclasses, in e3's words, holding names, hashes, counts, times
and East types; never a path into `.e3`, never a handle on the library's
objects, so an HTTP client can build them from a reply and a server can send
them. A dataset path is a `TreePath`, a tuple of field names such as
`("inputs", "x")`; a type is an East type as e3.east gives it.

Large payloads are not values: they cross as binary streams (see
e3.api.interface). Importing this module loads `dataclasses` (a few
milliseconds), which is why e3.api loads it only when a value is needed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TreePath = tuple[str, ...]
"""A dataset's place in a workspace's tree: ("inputs", "x"), ("tasks", "t", "output")."""


# ---------------------------------------------------------------- repository


@dataclass(frozen=True)
class WorkspaceSummary:
    """One workspace as the repository's status sees it."""

    name: str
    commit: str
    package: str | None
    """NAME@VERSION deployed, None if not deployed, '?' if its state cannot be read."""
    datasets: int
    """Datasets holding a value."""


@dataclass(frozen=True)
class RepositoryStatus:
    """A repository at a glance (`e3 repo status`)."""

    location: str
    objects: int
    object_bytes: int
    git_loose: int
    git_loose_bytes: int
    git_packed: int
    git_pack_bytes: int
    refs: int
    packages: list[str]
    """NAME@VERSION of every imported package."""
    workspaces: list[WorkspaceSummary]
    task_histories: int
    queue: dict[str, tuple[int, int]]
    """runner -> (pending, claimed) executions."""
    executions: dict[str, int]
    """Kind of each task_id's newest record (success, failed, error, running, dead) -> how many."""
    running: list[str]
    """task_ids running now (their process is alive)."""
    temporary_files: int


@dataclass(frozen=True)
class GcReport:
    """What a garbage collection removed (or, in a dry run, would remove)."""

    dry_run: bool
    prune: str
    """The grace period it used ('2.weeks.ago', 'now', …)."""
    reachable: int
    removed: list[tuple[str, int]]
    """(hash, bytes) of each e3 object removed."""
    kept_recent: int
    """Unreachable objects kept because they are inside the grace period."""
    temporary_removed: int
    git_loose_removed: int
    git_packed: str
    """What happened to git's own objects, one line ('' if nothing)."""

    @property
    def removed_bytes(self) -> int:
        return sum(size for _, size in self.removed)


@dataclass(frozen=True)
class LockInfo:
    """A lock held on the repository now: a run, a deploy, a gc."""

    name: str
    """'dataflow-dev', 'workspace-dev', 'gc', …"""
    operation: str | None
    """What the holder is doing ('dataflow', 'deployment', 'removal', 'dataset_write', 'gc'), if known."""
    holder: str | None
    """Who holds it, in words ('pid 123 (e3 start), since …'), if known."""
    pid: int | None = None

    def describe(self) -> str:
        """'lock dataflow-dev held by pid 123, e3 start ., since …'"""
        return f"lock {self.name} held" + (f" by {self.holder}" if self.holder else "")


# ---------------------------------------------------------------- packages


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version: str
    hash: str
    """The package object's hash."""

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset a package declares: its place, type, and whether users set it (inputs) or a task does."""

    path: TreePath
    type: Any = field(repr=False)
    writable: bool


@dataclass(frozen=True)
class PackageDetails:
    package: PackageInfo
    tasks: dict[str, str]
    """Task name -> task object hash."""
    datasets: list[DatasetSpec]
    """Every dataset of the package's tree, in path order."""


@dataclass(frozen=True)
class PackageImport:
    package: PackageInfo
    object_count: int
    """Objects written (0 when the package was imported already)."""
    imported: bool
    """False when the same package was imported already: nothing changed."""
    replaced: bool = False
    """True when another package of the same NAME@VERSION was replaced (`replace=True`)."""


@dataclass(frozen=True)
class PackageExport:
    package: PackageInfo
    object_count: int


# ---------------------------------------------------------------- workspaces


@dataclass(frozen=True)
class Deployment:
    """Which package a workspace runs, since when."""

    package_name: str
    package_version: str
    package_hash: str
    deployed_at: datetime

    @property
    def spec(self) -> str:
        return f"{self.package_name}@{self.package_version}"


@dataclass(frozen=True)
class WorkspaceInfo:
    name: str
    commit: str
    """The workspace's newest state (a history entry's id)."""
    deployment: Deployment | None

    @property
    def deployed(self) -> bool:
        return self.deployment is not None

    def describe(self) -> str:
        """'NAME@VERSION' of the deployed package, or 'not deployed'."""
        return self.deployment.spec if self.deployment is not None else "not deployed"


@dataclass(frozen=True)
class DeployResult:
    workspace: str
    commit: str
    package: PackageInfo
    kept: list[TreePath]
    """Input values set in the workspace that the new deployment keeps."""
    dropped: list[TreePath]
    """Input values the new package has no place for (path gone or type changed)."""
    created: bool = False
    """True if the workspace did not exist and was created."""


@dataclass(frozen=True)
class WorkspaceImport:
    """`workspace import`: a package zip imported, then deployed."""

    imported: PackageImport
    deployed: DeployResult


@dataclass(frozen=True)
class TaskState:
    """One task in `workspace status`."""

    name: str
    state: str
    """up-to-date | stale | never-run | running | queued | interrupted | failed | error | waiting"""
    detail: str = ""
    depends_on: list[str] = field(default_factory=list)
    unset_inputs: list[TreePath] = field(default_factory=list)
    pid: int | None = None

    def describe(self) -> str:
        words = self.state.replace("-", " ")
        return f"{words} ({self.detail})" if self.detail else words


@dataclass(frozen=True)
class WorkspaceStatus:
    workspace: str
    deployment: Deployment
    tasks: list[TaskState]
    unset_inputs: list[TreePath]
    """Writable inputs with no value."""
    datasets_total: int
    datasets_set: int
    running_pid: int | None
    """The pid of the `e3 start` running it (0 if unknown), None if no run holds it."""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tasks:
            out[t.state] = out.get(t.state, 0) + 1
        return out


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a workspace (a commit of its history)."""

    commit: str
    time: int
    """Seconds since the epoch."""
    message: str
    author: str = ""


@dataclass(frozen=True)
class DatasetChange:
    path: TreePath
    old: str | None
    new: str | None

    @property
    def kind(self) -> str:
        """git's name-status letter: A added, D deleted (unassigned), M modified."""
        return "A" if self.old is None else "D" if self.new is None else "M"


@dataclass(frozen=True)
class WorkspaceDiff:
    old: str | None
    """The older commit (None: before the first)."""
    new: str
    old_deployment: Deployment | None
    new_deployment: Deployment | None
    changes: list[DatasetChange]


@dataclass(frozen=True)
class ResetResult:
    workspace: str
    commit: str
    """The new commit that puts the old state back."""
    changes: list[DatasetChange]


# ---------------------------------------------------------------- datasets


@dataclass(frozen=True)
class DatasetEntry:
    """One row of a listing: a subtree (`kind` 'tree') or a dataset (`kind` 'dataset')."""

    path: TreePath
    kind: str
    type: Any = field(default=None, repr=False)
    writable: bool = False
    hash: str | None = None
    status: str = "-"
    """Datasets: 'set', 'unset' or 'null'."""
    size: int | None = None
    """Bytes of the value's object, for a dataset holding one."""

    @property
    def name(self) -> str:
        return self.path[-1] if self.path else ""


# ---------------------------------------------------------------- tasks and executions


@dataclass(frozen=True)
class TaskInfo:
    name: str
    hash: str
    """The task object's hash."""
    inputs: list[TreePath] = field(default_factory=list)
    output: TreePath = ()
    command_ir: str | None = None
    """The hash of the task's command (East IR)."""


@dataclass(frozen=True)
class ExecutionInfo:
    """One recorded execution of a task on exact inputs."""

    task_id: str
    execution_id: str
    status: str
    """running | success | failed | error"""
    input_hashes: list[str]
    started_at: datetime
    completed_at: datetime | None = None
    output_hash: str | None = None
    exit_code: int | None = None
    message: str | None = None
    pid: int | None = None


@dataclass(frozen=True)
class TaskRun:
    """`e3 run`: one task of a package run on given inputs, outside any workspace."""

    label: str
    """PKG@VERSION/TASK."""
    task_id: str
    status: str
    """success | failed | error | cancelled"""
    cached: bool
    output_hash: str | None = None
    exit_code: int | None = None
    message: str | None = None


@dataclass(frozen=True)
class ValueInput:
    """A value given to an operation as a stream in one of the value formats."""

    stream: Any
    """A readable binary file object."""
    format: str | None
    """'east', 'json' or 'beast2'; None when it could not be told (the operation refuses the
    input, naming it, when it comes to it)."""
    name: str = "<stream>"
    """How to name it in an error message (the file's name)."""


@dataclass(frozen=True)
class GraphTask:
    name: str
    hash: str
    inputs: list[TreePath]
    output: TreePath
    depends_on: list[str]
    """Tasks whose outputs this one reads."""


@dataclass(frozen=True)
class DataflowGraph:
    workspace: str
    tasks: list[GraphTask]
    """In dataflow order (every task after those it depends on)."""


# ---------------------------------------------------------------- dataflow runs


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


# ---------------------------------------------------------------- logs


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Output a task wrote: bytes of one stream, and where the next read starts."""

    stream: str
    """'stdout' or 'stderr'."""
    data: bytes
    offset: int
    """Position in the task's log just after this chunk: give it back to read on from here."""


@dataclass(frozen=True)
class LogRead:
    chunks: list[LogChunk]
    offset: int
    """Where to read on from (after the last chunk, or where reading began if there was none)."""
    complete: bool
    """True if the execution has ended: nothing more will come."""
    task_id: str = ""
    """The execution's task_id (whose log this is)."""
