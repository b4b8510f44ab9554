"""Package objects: the dataset tree's structure, initial dataset refs, and task objects.

In the original engine's object model (../shared/spec/upstream-e3.md):
`{tasks: Dict<String, String>, data: {structure: Structure, refs: Dict<String, DatasetRef>}}`,
where `refs` is keyed by ref path (`inputs/x`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from e3.errors import FormatError
from e3.model.paths import TreePath, from_ref_path, ref_path

if TYPE_CHECKING:
    from e3.model.objects import Objects


@dataclass(frozen=True)
class DatasetRef:
    kind: str  # 'unassigned' | 'null' | 'value'
    hash: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    def to_east(self):
        from e3.east import value_struct as struct, value_variant as variant

        if self.kind == "unassigned":
            return variant("unassigned", None)
        if self.kind == "null":
            return variant("null", struct({"versions": dict(self.versions)}))
        return variant("value", struct({"hash": self.hash, "versions": dict(self.versions)}))

    @classmethod
    def from_east(cls, value) -> "DatasetRef":
        kind = value.type
        if kind == "unassigned":
            return UNASSIGNED
        versions = {str(k): str(v) for k, v in value.value["versions"].items()}
        if kind == "null":
            return cls("null", None, versions)
        return cls("value", str(value.value["hash"]), versions)


UNASSIGNED = DatasetRef("unassigned")


@dataclass(frozen=True)
class DatasetSpec:
    """One leaf of a structure: a dataset's East type and whether users may write it."""

    type: Any
    writable: bool


Structure = Any
"""Nested dict: name -> Structure | DatasetSpec."""


def structure_to_east(node: Structure):
    from e3.east import value_struct as struct, value_variant as variant

    if isinstance(node, DatasetSpec):
        return variant("value", struct({"type": node.type, "writable": node.writable}))
    return variant("struct", {k: structure_to_east(v) for k, v in sorted(node.items())})


def structure_from_east(value) -> Structure:
    # A package of 100,000 tasks has 200,000 datasets of a handful of types and names: equal
    # specs share one object and names are interned, which keeps its structure in ~1 KB a task.
    # (Threads using one shared type at once are safe: e3.east holds its lock around the runtime.)
    specs: dict[DatasetSpec, DatasetSpec] = {}

    def walk(node) -> Structure:
        if node.type == "value":
            spec = DatasetSpec(node.value["type"], bool(node.value["writable"]))
            return specs.setdefault(spec, spec)
        return {sys.intern(str(k)): walk(v) for k, v in node.value.items()}

    return walk(value)


def dataset_paths(node: Structure, prefix: TreePath = ()) -> Iterator[tuple[TreePath, DatasetSpec]]:
    """Every dataset leaf of a structure, in path order."""
    if isinstance(node, DatasetSpec):
        yield prefix, node
        return
    for name in sorted(node):
        yield from dataset_paths(node[name], prefix + (name,))


@dataclass(frozen=True)
class Package:
    tasks: dict[str, str]
    """Task name -> task object hash."""
    structure: Structure
    refs: dict[TreePath, DatasetRef]
    """Initial reference of each dataset, by tree path."""

    def datasets(self) -> dict[TreePath, DatasetSpec]:
        return dict(dataset_paths(self.structure))

    def to_east(self):
        from e3.east import value_struct as struct

        return struct(
            {
                "tasks": dict(sorted(self.tasks.items())),
                "data": struct(
                    {
                        "structure": structure_to_east(self.structure),
                        "refs": {ref_path(p): r.to_east() for p, r in sorted(self.refs.items())},
                    }
                ),
            }
        )

    @classmethod
    def from_east(cls, value) -> "Package":
        data = value["data"]
        return cls(
            tasks={str(k): str(v) for k, v in value["tasks"].items()},
            structure=structure_from_east(data["structure"]),
            refs={from_ref_path(str(k)): DatasetRef.from_east(v) for k, v in data["refs"].items()},
        )


def store_package(store: "Objects", package: Package) -> str:
    return store.write(encode_package(package))


def encode_package(package: Package) -> bytes:
    """The package object's bytes (its hash is their SHA-256)."""
    from e3.east import encode
    from e3.model.types import PackageObjectType

    return encode(package.to_east(), PackageObjectType)


def decode_package(data: bytes, what: str = "package object") -> Package:
    from e3.east import decode
    from e3.model.task import _decode_as
    from e3.model.types import PackageObjectType

    _, value = _decode_as(data, PackageObjectType, what, decode)
    try:
        return Package.from_east(value)
    except (KeyError, TypeError, AttributeError) as e:
        raise FormatError(f"{what} is malformed: {e}") from None


def load_package(store: "Objects", package_hash: str) -> Package:
    return decode_package(store.read(package_hash), f"package object {package_hash}")
