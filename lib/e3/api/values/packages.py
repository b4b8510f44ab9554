"""Packages: what is imported, what one holds, what an import or export did."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from e3.api.values import TreePath


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
