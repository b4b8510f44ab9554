"""Workspaces: their deployment, status, history and the changes between two of their states."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from e3.api.values import TreePath
from e3.api.values.packages import PackageImport, PackageInfo


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
