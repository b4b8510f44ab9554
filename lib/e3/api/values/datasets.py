"""Datasets: a listing's rows, and a value given as a stream in a value format."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from e3.api.values import TreePath


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
