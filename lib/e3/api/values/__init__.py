"""The values that cross the repository interface: arguments, results and run events.

Plain frozen dataclasses, in e3's words, holding names, hashes, counts, times
and East types; never a path into `.e3`, never a handle on the library's
objects, so an HTTP client can build them from a reply and a server can send
them. A dataset path is a `TreePath`, a tuple of field names such as
`("inputs", "x")`; a type is an East type as e3.east gives it.

Large payloads are not values: they cross as binary streams (see
e3.api.interface).

One module per area (repository, packages, workspaces, datasets, tasks,
dataflow, logs). Every value is importable from here too (`from e3.api.values
import WorkspaceInfo`); a name loads its area's module on first use, because
making a dataclass costs about a millisecond and a command should pay only for
the values it uses (`e3 start` makes only the dataflow run's).
"""
from __future__ import annotations

import importlib
from typing import Any

TreePath = tuple[str, ...]
"""A dataset's place in a workspace's tree: ("inputs", "x"), ("tasks", "t", "output")."""

_HOME = {
    "CACHED": "dataflow",
    "CANCELLED": "dataflow",
    "DataflowEvent": "dataflow",
    "FAILED": "dataflow",
    "RAN": "dataflow",
    "RunFinished": "dataflow",
    "RunSummary": "dataflow",
    "SETTLED_STATES": "dataflow",
    "SKIPPED": "dataflow",
    "STUCK": "dataflow",
    "TaskFinished": "dataflow",
    "TaskStarted": "dataflow",
    "DataflowPlan": "dataflow",
    "PlannedTask": "dataflow",
    "DatasetEntry": "datasets",
    "ValueInput": "datasets",
    "LogChunk": "logs",
    "LogRead": "logs",
    "DatasetSpec": "packages",
    "PackageDetails": "packages",
    "PackageExport": "packages",
    "PackageImport": "packages",
    "PackageInfo": "packages",
    "GcReport": "repository",
    "LockInfo": "repository",
    "RepositoryStatus": "repository",
    "WorkspaceSummary": "repository",
    "DataflowGraph": "tasks",
    "ExecutionInfo": "tasks",
    "GraphTask": "tasks",
    "TaskInfo": "tasks",
    "TaskRun": "tasks",
    "DatasetChange": "workspaces",
    "DeployResult": "workspaces",
    "Deployment": "workspaces",
    "HistoryEntry": "workspaces",
    "ResetResult": "workspaces",
    "TaskState": "workspaces",
    "WorkspaceDiff": "workspaces",
    "WorkspaceImport": "workspaces",
    "WorkspaceInfo": "workspaces",
    "WorkspaceStatus": "workspaces",
}
"""Each value's area module."""

__all__ = ["TreePath", *_HOME]


def __getattr__(name: str) -> Any:
    area = _HOME.get(name)
    if area is None:
        raise AttributeError(f"module 'e3.api.values' has no attribute {name!r}")
    return getattr(importlib.import_module(f"e3.api.values.{area}"), name)
