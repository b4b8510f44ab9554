"""Tasks: what a workspace runs and the graph of their dependencies, their recorded executions,
and a one-off run (`e3 run`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from e3.api.values import TreePath


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
