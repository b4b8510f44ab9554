"""The East types of e3's own stored objects, as the original engine defines them.

These are the contract between packages, workspaces and execution: a value of
one of these types is stored (canonical Beast2) and named by its hash.
Sketches, from ../shared/spec/upstream-e3.md:

- TreePath: Array<Variant{field: String}>
- Task object: Struct{commandIr: String, inputs: Array<TreePath>, output: TreePath}
  (`commandIr` is the hash of the IR of `(Array<String>, String) -> Array<String>`)
- Structure: recursive Variant{struct: Dict<String, Structure>,
  value: Struct{type: <type of types>, writable: Boolean}}
- DatasetRef: Variant{null: Struct{versions}, unassigned: Null,
  value: Struct{hash: String, versions}}; versions: Dict<String, String>
- Package object: Struct{tasks: Dict<String, String>,
  data: Struct{structure: Structure, refs: Dict<String, DatasetRef>}}
- Execution status: Variant{running, success, failed, error} (see below)
"""
from __future__ import annotations

from e3.east import (
    ArrayType,
    BooleanType,
    DateTimeType,
    DictType,
    IntegerType,
    NullType,
    OptionType,
    StringType,
    StructType,
    TYPE_OF_TYPE,
    VariantType,
    recursive_type,
)

PathSegmentType = VariantType([("field", StringType)])
TreePathType = ArrayType(PathSegmentType)

TaskObjectType = StructType(
    [
        ("commandIr", StringType),
        ("inputs", ArrayType(TreePathType)),
        ("output", TreePathType),
    ]
)

StructureType = recursive_type(
    lambda self: VariantType(
        [
            ("struct", DictType(StringType, self)),
            ("value", StructType([("type", TYPE_OF_TYPE), ("writable", BooleanType)])),
        ]
    )
)

VersionsType = DictType(StringType, StringType)

DatasetRefType = VariantType(
    [
        ("null", StructType([("versions", VersionsType)])),
        ("unassigned", NullType),
        ("value", StructType([("hash", StringType), ("versions", VersionsType)])),
    ]
)

PackageDataType = StructType([("structure", StructureType), ("refs", DictType(StringType, DatasetRefType))])
PackageObjectType = StructType([("tasks", DictType(StringType, StringType)), ("data", PackageDataType)])

WorkspaceStateType = StructType(
    [
        ("packageName", StringType),
        ("packageVersion", StringType),
        ("packageHash", StringType),
        ("deployedAt", DateTimeType),
        ("currentRunId", OptionType(StringType)),
    ]
)

_common = [("executionId", StringType), ("inputHashes", ArrayType(StringType))]
ExecutionStatusType = VariantType(
    [
        ("error", StructType(_common + [("startedAt", DateTimeType), ("completedAt", DateTimeType), ("message", StringType)])),
        ("failed", StructType(_common + [("startedAt", DateTimeType), ("completedAt", DateTimeType), ("exitCode", IntegerType)])),
        (
            "running",
            StructType(
                _common
                + [("startedAt", DateTimeType), ("pid", IntegerType), ("pidStartTime", IntegerType), ("bootId", StringType)]
            ),
        ),
        ("success", StructType(_common + [("outputHash", StringType), ("startedAt", DateTimeType), ("completedAt", DateTimeType)])),
    ]
)

