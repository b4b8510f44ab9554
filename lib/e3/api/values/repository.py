"""The repository as a whole: its status, garbage collection, the locks held on it."""
from __future__ import annotations

from dataclasses import dataclass


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
