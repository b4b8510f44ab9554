"""e3.model.canonical: e3's own objects read and written without the East runtime, held to the runtime.

Each reader either gives what the runtime decodes or declines (None); the
headers it expects and the IR type's digest are the runtime's own.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest

from e3 import east
from e3.model import canonical
from e3.model.package import DatasetRef, DatasetSpec, Package, decode_package, encode_package
from e3.model.task import TaskObject, load_task
from e3.model.types import PackageObjectType, TaskObjectType, WorkspaceStateType
from e3.repo.workspace import WorkspaceState

E = east
TYPES = [
    E.IntegerType, E.FloatType, E.StringType, E.BooleanType, E.DateTimeType, E.BlobType, E.NullType,
    E.ArrayType(E.FloatType), E.SetType(E.StringType), E.DictType(E.StringType, E.ArrayType(E.IntegerType)),
    E.StructType([("id", E.IntegerType), ("odd name", E.StringType), ("b`q", E.FloatType)]),
    E.VariantType([("a", E.NullType), ("b", E.IntegerType)]), E.OptionType(E.StringType),
    E.StructType([]), E.ArrayType(E.StructType([("x", E.OptionType(E.DictType(E.IntegerType, E.BlobType)))])),
    E.IR_TYPE, E.TYPE_OF_TYPE,
]
V = "ab" * 32


def header(data: bytes) -> bytes:
    from e3.beast2_stream import _header_length

    return data[: _header_length(data)]


def a_package(types=TYPES) -> Package:
    """Every kind of ref and structure: nested structs, null and value refs with versions, many types (the IR one twice)."""
    inputs = {f"i{n}": DatasetSpec(t, n % 2 == 0) for n, t in enumerate(types)}
    structure = {"inputs": inputs, "tasks": {"t": {"function_ir": DatasetSpec(E.IR_TYPE, False), "output": DatasetSpec(E.IntegerType, False)},
                                             "u": {"function_ir": DatasetSpec(E.IR_TYPE, False)}}}
    refs = {("inputs", "i0"): DatasetRef("value", V, {"v": "1"}), ("inputs", "i1"): DatasetRef("null", None, {"a": "b", "c": "d"}),
            ("inputs", "i2"): DatasetRef("unassigned"), ("tasks", "t", "function_ir"): DatasetRef("value", "cd" * 32)}
    return Package({"t": "ef" * 32, "u": "01" * 32}, structure, refs)


def test_the_headers_are_the_ones_the_runtime_writes():
    assert header(encode_package(a_package())) == canonical.PACKAGE_HEADER
    assert header(E.encode(TaskObject("x", (("a",),), ("b",)).to_east(), TaskObjectType)) == canonical.TASK_HEADER
    assert header(E.type_key(E.IntegerType)) == canonical.TYPE_HEADER
    state = WorkspaceState("p", "1", V, datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert header(E.encode(state.to_east(), WorkspaceStateType)) == canonical.WORKSPACE_STATE_HEADER
    assert header(E.encode(E.function_ir(E.East.function([E.IntegerType], E.IntegerType, lambda b, x: x)), E.IR_TYPE)) == canonical.IR_HEADER


def test_the_ir_types_digest_is_the_runtimes():
    t = canonical.read_type_value(E.type_key(E.IR_TYPE))
    assert hashlib.sha256(t.key.encode()).hexdigest() == canonical.IR_TYPE_DIGEST
    assert t.is_ir and not canonical.read_type_value(E.type_key(E.TYPE_OF_TYPE)).is_ir


@pytest.mark.parametrize("t", TYPES, ids=lambda t: E.format_type(t)[:40])
def test_a_type_reads_as_its_runtime_sketch(t):
    read = canonical.read_type_value(E.type_key(t))
    sketch = read.sketch()
    assert sketch is None or sketch == E.format_type(t)
    if t not in (E.IR_TYPE, E.TYPE_OF_TYPE):
        assert sketch is not None


def test_a_type_the_runtime_would_not_make_has_no_sketch():
    # The runtime decodes such a type in a package (as a value) but refuses to make it from a
    # value's header: matching it is left to the runtime.
    for body in (b"\x0e\x00\x06", b"\x05\x0e\x08\x0b", b"\x05\x11\x00\x01\x01a\x0d\x08\x00\x0b"):  # Set<Array<Float>>, Dict<Set<Integer>, Null>, Dict<Variant{a: Ref<Integer>}, Null>
        t = canonical.read_type_value(canonical.TYPE_HEADER + b"\x00" + bytes([len(body)]) * 2 + body)
        assert t is not None and t.sketch() is None, body


def test_a_package_reads_as_the_runtime_decodes_it():
    data = encode_package(a_package())
    fast, slow = canonical.read_package(data), decode_package(data)
    assert fast.tasks == slow.tasks and fast.refs == slow.refs
    a, b = fast.datasets(), slow.datasets()
    assert list(a) == list(b)
    for path in a:
        assert a[path].writable == b[path].writable
        assert a[path].type.key == canonical.read_type_value(E.type_key(b[path].type)).key, path


def test_a_task_reads_as_the_runtime_decodes_it():
    for task in (TaskObject(V, (), ("tasks", "t", "output")), TaskObject(V, (("inputs", "x y"), ("tasks", "t", "function_ir")), ("é", "`"))):
        data = E.encode(task.to_east(), TaskObjectType)
        assert canonical.read_task(data) == task == TaskObject.from_east(E.decode(data, TaskObjectType)[1])


def test_any_other_encoding_is_left_to_the_runtime():
    from east.serialization.beast2 import encode_beast2_with_header_for

    task = TaskObject(V, (("inputs", "x"),), ("tasks", "t", "output"))
    data = E.encode(task.to_east(), TaskObjectType)
    package = encode_package(a_package())
    v4 = encode_beast2_with_header_for(TaskObjectType, version=4)(task.to_east())
    assert E.decode(v4, TaskObjectType)[1] is not None  # the runtime reads it; this reader does not
    for other in (v4, data + b"\x00", data[:-1], package[:-1], package + b"\x00"):
        assert canonical.read_task(other) is None and canonical.read_package(other) is None
    assert canonical.read_package(data) is None and canonical.read_task(package) is None
    # A string holding NUL, a task whose path segment is another case: declined, not guessed at.
    assert canonical.read_task(E.encode(TaskObject("a\x00b", (), ("o",)).to_east(), TaskObjectType)) is None


def test_a_values_type_is_matched_from_its_header_or_left_to_the_runtime():
    array = canonical.read_type_value(E.type_key(E.ArrayType(E.FloatType)))
    ir = canonical.read_type_value(E.type_key(E.IR_TYPE))
    value = E.encode([1.0, 2.0], E.ArrayType(E.FloatType))
    assert canonical.value_has_type(value, array) is True
    assert canonical.value_has_type(E.encode([1, 2], E.ArrayType(E.IntegerType)), array) is None
    assert canonical.value_has_type(value, ir) is None
    fn = E.encode(E.function_ir(E.East.function([E.IntegerType], E.IntegerType, lambda b, x: x)), E.IR_TYPE)
    assert canonical.value_has_type(fn, ir) is True and canonical.value_has_type(fn, array) is None


@pytest.mark.parametrize("when", [datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc), datetime(1960, 7, 8, 9, 10, 11, 12000, tzinfo=timezone.utc)])
@pytest.mark.parametrize("run", [None, "run-1"])
def test_a_workspace_state_is_written_as_the_runtime_writes_it(when, run):
    state = WorkspaceState("pkg-é", "1.0.0", V, when, run)
    assert canonical.encode_workspace_state("pkg-é", "1.0.0", V, when, run) == E.encode(state.to_east(), WorkspaceStateType)


@pytest.mark.parametrize("when", [datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc), datetime(1960, 7, 8, 9, 10, 11, 12000, tzinfo=timezone.utc)])
@pytest.mark.parametrize("run", [None, "run-1"])
def test_a_workspace_state_reads_as_the_runtime_decodes_it(when, run):
    data = E.encode(WorkspaceState("pkg-é", "1.0.0", V, when, run).to_east(), WorkspaceStateType)
    slow = WorkspaceState.from_east(E.decode(data, WorkspaceStateType)[1])
    assert repr(WorkspaceState(*canonical.read_workspace_state(data))) == repr(slow)  # the same tzinfo too
    assert canonical.read_workspace_state(data[:-1]) is None and canonical.read_workspace_state(data + b"\x00") is None


@pytest.mark.parametrize("types", [TYPES, TYPES * 2, [E.IR_TYPE, E.IR_TYPE], []], ids=["types", "twice", "ir", "none"])
def test_a_package_read_is_written_back_as_the_runtime_writes_it_decoded(types):
    """encode_package of read_package's reading is the runtime's encode_package of decode_package's:
    the same structure, sorted keys (a path with '-' before one with '/', by UTF-8), each
    container once, and a type's containers shared where the object read shared them."""
    pkg = a_package(types)
    pkg.refs[("inputs", "a-b")] = pkg.refs[("inputs", "a", "b")] = DatasetRef("value", V, {"é": "1", "z": "2"})
    pkg.structure["inputs"].update({"a-b": DatasetSpec(E.IntegerType, True), "a": {"b": DatasetSpec(E.IntegerType, True)}})
    data = encode_package(pkg)
    assert canonical.encode_package(canonical.read_package(data)) == encode_package(decode_package(data)) == data


def test_a_package_whose_types_are_not_type_values_is_not_written():
    assert canonical.encode_package(a_package()) is None


def test_the_null_a_null_ref_stands_for_is_the_runtimes():
    from e3.repo.workspace import null_value

    for t in [*TYPES, E.StructType([("a", E.StructType([]))]), E.ArrayType(E.BooleanType)]:
        assert canonical.null_value(canonical.read_type_value(E.type_key(t))) == null_value(t), E.format_type(t)
    fn = canonical.read_type_value(E.type_key(E.FunctionType([E.IntegerType], E.IntegerType)))
    assert canonical.null_value(fn) is None


def test_a_reference_to_a_container_of_another_type_is_declined():
    """Struct{a: Integer, b: Struct{c: Integer}} whose inner fields are replaced by a reference to
    the package's tasks dict (empty: read as fields it would make Struct{}): the runtime's to judge."""
    pkg = Package({}, {"x": DatasetSpec(E.StructType([("a", E.IntegerType), ("b", E.StructType([("c", E.IntegerType)]))]), True)}, {})
    data = encode_package(pkg)
    inner = bytes.fromhex("000101630800")  # NEW (the fourth container: tasks, structure, x's fields, this), c: Integer, the end
    assert data.count(inner) == 1 and canonical.read_package(data) is not None
    assert canonical.read_package(_reframed(data.replace(inner, b"\x01\x03"))) is None  # three back: the tasks dict


def _reframed(data: bytes) -> bytes:
    """A package object's bytes with its frame's sizes made right again after its body changed."""
    from e3 import varint

    body = data[len(canonical.PACKAGE_HEADER):]
    _, pos, _ = varint.read(body, 1)
    _, pos, _ = varint.read(body, pos)
    body = body[pos:]
    return canonical.PACKAGE_HEADER + b"\x00" + varint.encode(len(body)) * 2 + body
