"""e3's own objects in their canonical encoding, read and written without the East runtime.

Importing a package reads its package object and task objects, and checks the
type of every value it carries; deploying it writes a WorkspaceState; exporting
a workspace reads its package and writes a new one. Loading the East runtime
for that costs more than copying a large value, so the common case is done
here: objects in e3's canonical encoding (container version 5, the exact
header e3 writes for their type, one uncompressed frame).

Reading either returns what the runtime would decode or returns None, and the
caller asks the runtime (which then accepts or refuses with its own message):
a header of other bytes, another container version, a deflate frame, several
frames, a shared container this reader does not follow, unsorted or repeated
keys, a string holding NUL -- anything it does not expect -- is declined, so
correctness never rests on this reader accepting less than the runtime
refuses. `tests/test_canonical.py` holds it to the runtime.

Writing gives the runtime's bytes exactly (`tests/test_workspace_export.py`
compares whole exports), or None where it cannot tell what they would be.

Types inside a package object (a dataset's type) are kept as `TypeValue`, a
tree of the type-of-type value, not as runtime types: such a package is for
checking an import or writing an export, never for the rest of e3
(e3.model.package's are).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timedelta, timezone
from typing import Any

from e3 import varint
from e3.beast2_type import field_name, type_text
from e3.model.package import DatasetRef, DatasetSpec, Package, UNASSIGNED
from e3.model.paths import from_ref_path, ref_path
from e3.model.task import TaskObject

PACKAGE_HEADER = bytes.fromhex(
    "89456173740d0a0500fc021718010b000012110b0002120e0a04090206696e7075747305066f757470757404000902036b657904"
    "0576616c7565040209020269640905696e6e6572040802037265660907777261707065720a0902046e616d65000474797065040a"
    "0c0813054172726179040d4173796e6346756e6374696f6e0604426c6f620707426f6f6c65616e07084461746554696d65070444"
    "6963740805466c6f6174070846756e6374696f6e0607496e746567657207064d617472697804054e6576657207044e756c6c0709"
    "5265637572736976650b0352656604035365740406537472696e6707065374727563740d0756617269616e740d06566563746f72"
    "04040902047479706504087772697461626c650f080206737472756374030576616c75651009010876657273696f6e7301090204"
    "68617368000876657273696f6e73010803046e756c6c120a756e61737369676e6564070576616c7565130b001409020973747275"
    "6374757265020472656673150902057461736b73010464617461160100"
)
"""The canonical header of a package object (e3.model.types.PackageObjectType)."""
TASK_HEADER = bytes.fromhex(
    "89456173740d0a05002d0405010801056669656c64000a010a02090309636f6d6d616e6449720006696e7075747303066f7574707574020100"
)
"""The canonical header of a task object (TaskObjectType)."""
IR_HEADER = bytes.fromhex("89456173740d0a05010145cf4e0706d397df0100")
"""The canonical header of a function's IR (the runtime's IR type, a well-known type)."""
TYPE_HEADER = bytes.fromhex("89456173740d0a0501020947b0dde16f86410100")
"""The canonical header of a type-of-type value (a well-known type)."""
WORKSPACE_STATE_HEADER = bytes.fromhex(
    "89456173740d0a05005904050105000802046e6f6e650204736f6d650009050b7061636b6167654e616d65000e7061636b616765"
    "56657273696f6e000b7061636b61676548617368000a6465706c6f7965644174010c63757272656e7452756e4964030100"
)
"""The canonical header of a WorkspaceState (WorkspaceStateType)."""
IR_TYPE_DIGEST = "1e8276c8bdc607e4e84ae41c638ed6ea1cf0d315f1a6cfba150d37ef69e658f1"
"""SHA-256 of the `TypeValue.key` of the runtime's IR type: a dataset of that type holds a function's IR."""

READ_MOST = 1 << 18
"""Package objects larger than this (about a thousand tasks) are left to the runtime: from there
on, decoding in C makes up for loading it."""

# The cases of the type-of-type value, in the runtime's (sorted) order.
_CASES = (
    "Array", "AsyncFunction", "Blob", "Boolean", "DateTime", "Dict", "Float", "Function", "Integer", "Matrix",
    "Never", "Null", "Recursive", "Ref", "Set", "String", "Struct", "Variant", "Vector",
)
_SIMPLE = frozenset({"Blob", "Boolean", "DateTime", "Float", "Integer", "Never", "Null", "String"})
_ONE = frozenset({"Array", "Matrix", "Ref", "Set", "Vector"})
_SKETCHED = frozenset({"Blob", "Boolean", "DateTime", "Float", "Integer", "Null", "String", "Array", "Set", "Ref", "Dict", "Struct", "Variant"})


class _Decline(Exception):
    """Not in the form this module reads: ask the runtime."""


# ---------------------------------------------------------------- types as values


@dataclass(frozen=True, eq=False)
class TypeValue:
    """A type as a package object spells it: `kind` is a case of the type-of-type value and
    `parts` its contents (a TypeValue, a tuple of (name, TypeValue), or for Recursive
    ('ref', id) or ('wrapper', id, TypeValue))."""

    kind: str
    parts: Any = None
    origin: int | None = field(default=None, compare=False)
    """For a Struct, Variant, Function or AsyncFunction read from a package object: which container
    of that object held its fields (or inputs). Types read through a reference to one container
    have the same origin: the runtime decodes them as one container and writes it once again,
    the later ones as references (`encode_package`)."""

    @cached_property
    def key(self) -> str:
        """A text that names the type exactly (its tree): equal keys, equal types."""
        return _key(self)

    @cached_property
    def origins(self) -> tuple[int | None, ...]:
        """The `origin` of each container this type begins with (those in no other container of
        it). Two types of one key with the same origins were read from the same containers,
        and so hold the same ones all the way down."""
        return _origins(self)

    @cached_property
    def is_ir(self) -> bool:
        """Is this the type of a function's IR?"""
        return hashlib.sha256(self.key.encode()).hexdigest() == IR_TYPE_DIGEST

    def sketch(self) -> str | None:
        """The type as e3.east.format_type prints it (e3.beast2_type's sketch), or None for the
        kinds that are not printed as a sketch (recursive, functions, vectors, Never)."""
        try:
            return _sketch(self)
        except _Decline:
            return None


def _key(t: TypeValue) -> str:
    if t.kind in _SIMPLE:
        return t.kind
    if t.kind in _ONE:
        return f"{t.kind}({t.parts.key})"
    if t.kind == "Dict":
        return f"Dict({t.parts[0].key},{t.parts[1].key})"
    if t.kind in ("Struct", "Variant"):
        return f"{t.kind}(" + ",".join(f"{name!r}:{inner.key}" for name, inner in t.parts) + ")"
    if t.kind in ("Function", "AsyncFunction"):
        inputs, output = t.parts
        return f"{t.kind}([" + ",".join(i.key for i in inputs) + f"],{output.key})"
    if t.kind == "Recursive":
        if t.parts[0] == "ref":
            return f"Recursive.ref({t.parts[1]})"
        return f"Recursive.wrapper({t.parts[1]},{t.parts[2].key})"
    raise AssertionError(t.kind)


def _origins(t: TypeValue) -> tuple[int | None, ...]:
    if t.kind in _SIMPLE:
        return ()
    if t.kind in _ONE:
        return t.parts.origins
    if t.kind == "Dict":
        return t.parts[0].origins + t.parts[1].origins
    if t.kind in ("Struct", "Variant"):
        return (t.origin,)
    if t.kind in ("Function", "AsyncFunction"):
        return (t.origin,) + t.parts[1].origins  # the output is outside the inputs' container
    return () if t.parts[0] == "ref" else t.parts[2].origins


def _sketch(t: TypeValue) -> str:
    if t.kind not in _SKETCHED:
        raise _Decline
    if t.kind in _SIMPLE:
        return t.kind
    if t.kind == "Set" and not _immutable(t.parts) or t.kind == "Dict" and not _immutable(t.parts[0]):
        raise _Decline  # a type the runtime refuses to make: it is the one to say so
    if t.kind in _ONE:
        return f"{t.kind}<{_sketch(t.parts)}>"
    if t.kind == "Dict":
        return f"Dict<{_sketch(t.parts[0])}, {_sketch(t.parts[1])}>"
    names = [name for name, _ in t.parts]
    if len(set(names)) != len(names):
        raise _Decline
    if t.kind == "Variant":
        # The runtime orders cases by name; a value in another order is left to it (as e3.beast2_type does).
        if any(a.encode() >= b.encode() for a, b in zip(names, names[1:])):
            raise _Decline
        if names == ["none", "some"] and t.parts[0][1].kind == "Null":
            return f"Option<{_sketch(t.parts[1][1])}>"
    inner = ", ".join(f"{field_name(name)}: {_sketch(v)}" for name, v in t.parts)
    return f"{t.kind}{{{inner}}}"


def _immutable(t: TypeValue) -> bool:
    """Can values of `t` be a set's elements or a dict's keys? (Collections and refs cannot.)"""
    if t.kind in _SIMPLE:
        return True
    if t.kind in ("Struct", "Variant"):
        return all(_immutable(inner) for _, inner in t.parts)
    return False


def value_has_type(head: bytes, t: TypeValue) -> bool | None:
    """Does the Beast2 value starting `head` have type `t`? True when this module can tell from
    the header; None when it cannot (ask the runtime, which also names the types when they differ)."""
    if t.is_ir:
        return True if head.startswith(IR_HEADER) else None
    want = t.sketch()
    if want is None:
        return None
    found = type_text(head)
    return True if found is not None and found == want else None


# ---------------------------------------------------------------- reading


class _Reader:
    """The logical bytes of one canonical value (after its header and frame), read in order."""

    def __init__(self, data: bytes, header: bytes):
        if not data.startswith(header):
            raise _Decline
        self.data = data
        self.pos = len(header)
        codec = self.varint()
        size = self.varint()
        if codec != 0 or self.varint() != size or self.pos + size != len(data):
            raise _Decline  # deflate, several frames, an index: not e3's canonical form
        self.defs: list[Any] = []
        """Every container begun so far (NEW), its contents once whole: a reference names one."""
        self.kinds: list[str] = []
        """The East type of each container in `defs`: a reference must name one of its own type."""

    def done(self) -> None:
        if self.pos != len(self.data):
            raise _Decline

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise _Decline
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        try:
            value, self.pos, minimal = varint.read(self.data, self.pos)
        except varint.VarintError:
            raise _Decline from None
        if not minimal:
            raise _Decline  # not as the runtime writes it
        return value

    def integer(self) -> int:
        n = self.varint()
        if n >= 1 << 64:
            raise _Decline
        return (n >> 1) ^ -(n & 1)

    def string(self) -> str:
        n = self.varint()
        end = self.pos + n
        if end > len(self.data):
            raise _Decline
        raw = self.data[self.pos : end]
        self.pos = end
        if b"\x00" in raw:
            raise _Decline
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Decline from None

    def boolean(self) -> bool:
        b = self.byte()
        if b > 1:
            raise _Decline
        return b == 1

    def case(self, n: int) -> int:
        i = self.varint()
        if i >= n:
            raise _Decline
        return i

    def items(self, read_one, kind: str) -> list:
        """A collection (Array, or Dict with `read_one` reading a pair) of the East type `kind`
        names: its tag, segments, terminator."""
        return self.container(read_one, kind)[1]

    def container(self, read_one, kind: str) -> tuple[int, list]:
        """`items`, and which container of the value it is (a reference: the one it names)."""
        tag = self.byte()
        if tag == 1:  # a reference to a container already read
            delta = self.varint()
            at = len(self.defs) - delta
            if delta < 1 or at < 0 or self.defs[at] is None or self.kinds[at] != kind:
                raise _Decline  # before the first, one still being read (a cycle), or of another type
            return at, self.defs[at]
        if tag != 0:
            raise _Decline
        slot = len(self.defs)
        self.defs.append(None)
        self.kinds.append(kind)
        out: list = []
        while True:
            n = self.varint()
            if n == 0:
                break
            for _ in range(n):
                out.append(read_one())
        self.defs[slot] = out
        return slot, out

    def dict(self, read_value, kind: str) -> dict:
        pairs = self.items(lambda: (self.string(), read_value()), kind)
        out = dict(pairs)
        keys = [k.encode() for k, _ in pairs]
        if any(a >= b for a, b in zip(keys, keys[1:])):
            raise _Decline  # unsorted or repeated keys: what the runtime makes of them is its business
        return out

    def type_value(self) -> TypeValue:
        kind = _CASES[self.case(len(_CASES))]
        if kind in _SIMPLE:
            return TypeValue(kind)
        if kind in _ONE:
            return TypeValue(kind, self.type_value())
        if kind == "Dict":
            return TypeValue(kind, (self.type_value(), self.type_value()))
        if kind in ("Struct", "Variant"):
            origin, fields = self.container(lambda: (self.string(), self.type_value()), "fields")
            return TypeValue(kind, tuple(fields), origin)
        if kind in ("Function", "AsyncFunction"):
            origin, inputs = self.container(self.type_value, "types")
            return TypeValue(kind, (tuple(inputs), self.type_value()), origin)
        # Recursive: Variant{ref: Integer, wrapper: Struct{id: Integer, inner: type}}
        if self.case(2) == 0:
            return TypeValue(kind, ("ref", self.integer()))
        return TypeValue(kind, ("wrapper", self.integer(), self.type_value()))

    def tree_path(self) -> tuple[str, ...]:
        def segment() -> str:
            self.case(1)  # field
            return self.string()

        return tuple(self.items(segment, "path"))


def read_task(data: bytes) -> TaskObject | None:
    """A task object's bytes decoded, or None to ask the runtime."""
    try:
        r = _Reader(data, TASK_HEADER)
        command_ir = r.string()
        inputs = tuple(r.items(r.tree_path, "paths"))
        output = r.tree_path()
        r.done()
    except _Decline:
        return None
    return TaskObject(command_ir, inputs, output)


def read_type_value(data: bytes) -> TypeValue | None:
    """A type-of-type value's bytes (e3.east.type_key's) decoded, or None to ask the runtime."""
    try:
        r = _Reader(data, TYPE_HEADER)
        t = r.type_value()
        r.done()
    except _Decline:
        return None
    return t


def read_package(data: bytes) -> Package | None:
    """A package object's bytes decoded, its dataset types as `TypeValue`s; or None to ask the runtime."""
    if len(data) > READ_MOST:
        return None
    try:
        r = _Reader(data, PACKAGE_HEADER)
        tasks = r.dict(r.string, "strings")
        # Datasets of one type and writability share one spec: a package of 100,000 tasks has a
        # handful. The origins are part of it: written again, a type shares containers only
        # where the one read did (encode_package).
        specs: dict[tuple[str, tuple[int | None, ...], bool], DatasetSpec] = {}

        def structure() -> Any:
            if r.case(2) == 0:  # struct: Dict<String, Structure>
                return r.dict(structure, "structure")
            t = r.type_value()
            writable = r.boolean()
            return specs.setdefault((t.key, t.origins, writable), DatasetSpec(t, writable))

        def dataset_ref() -> DatasetRef:
            kind = r.case(3)
            if kind == 1:
                return UNASSIGNED
            h = r.string() if kind == 2 else None
            versions = r.dict(r.string, "strings")
            return DatasetRef("value" if kind == 2 else "null", h, dict(versions))

        tree = structure()
        refs = r.dict(dataset_ref, "refs")
        r.done()
    except _Decline:
        return None
    return Package(tasks=dict(tasks), structure=tree, refs={from_ref_path(k): v for k, v in refs.items()})


def read_workspace_state(data: bytes) -> tuple[str, str, str, datetime, str | None] | None:
    """A WorkspaceState's bytes decoded (package name, version and hash, deployed at (aware,
    UTC), current run id or None), or None to ask the runtime."""
    try:
        r = _Reader(data, WORKSPACE_STATE_HEADER)
        name, version, package_hash = r.string(), r.string(), r.string()
        millis = r.integer()
        run = r.string() if r.case(2) == 1 else None
        r.done()
        deployed_at = _EPOCH + timedelta(milliseconds=millis)
    except (_Decline, OverflowError):
        return None
    return name, version, package_hash, deployed_at, run


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# ---------------------------------------------------------------- writing


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return varint.encode(len(raw)) + raw


def encode_workspace_state(package_name: str, package_version: str, package_hash: str, deployed_at: datetime,
                           current_run_id: str | None = None) -> bytes:
    """The canonical bytes of a WorkspaceState, as the runtime encodes it; `deployed_at` (aware)
    in whole milliseconds, as a DateTime holds it (a finer part is dropped)."""
    since = deployed_at - _EPOCH
    millis = (since.days * 86400 + since.seconds) * 1000 + since.microseconds // 1000
    body = (
        _string(package_name) + _string(package_version) + _string(package_hash)
        + _zigzag(millis)
        + (b"\x00" if current_run_id is None else b"\x01" + _string(current_run_id))
    )
    return WORKSPACE_STATE_HEADER + b"\x00" + varint.encode(len(body)) * 2 + body


def encode_package(package: Package) -> bytes | None:
    """The canonical bytes of a package whose dataset types are `TypeValue`s (as `read_package`
    gives them), as the runtime writes the same package decoded from the object it was read
    from (e3.model.package.encode_package of decode_package's); None when a type is not a
    `TypeValue`.

    The runtime writes a container it meets again as a reference to where it first wrote it.
    Of a decoded package, only a type's containers can be met again: those the object read held
    as references (decoded as the container they name: the same `origin` here). Equal types
    read in full twice are two containers, written in full twice (read_package shares a spec
    between datasets only where their types have the same origins). Every other container
    (the structure's, the refs', a ref's versions) is made anew and written whole.
    """
    writer = _Writer()
    try:
        writer.dict(package.tasks, writer.string)
        writer.structure(package.structure)
        writer.dict({ref_path(p): r for p, r in package.refs.items()}, writer.dataset_ref)
    except _Decline:
        return None
    body = b"".join(writer.out)
    return PACKAGE_HEADER + b"\x00" + varint.encode(len(body)) * 2 + body


class _Writer:
    """The logical bytes of one value, written in the order `_Reader` reads them."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.count = 0
        """Containers begun so far: a reference names one by how far back it is."""
        self.written: dict[int, int] = {}
        """A type's `origin` -> the container (by count) it was written as."""

    def string(self, s: str) -> None:
        self.out.append(_string(s))

    def items(self, items, write_one, origin: int | None = None) -> None:
        """A collection: a reference to the container of `origin` if it is written already, else
        NEW, one segment of every item (none when empty), the terminator."""
        if origin is not None:
            at = self.written.get(origin)
            if at is not None:
                self.out.append(b"\x01" + varint.encode(self.count - at))
                return
            self.written[origin] = self.count
        self.count += 1
        self.out.append(b"\x00" + (varint.encode(len(items)) if items else b""))
        for item in items:
            write_one(item)
        self.out.append(b"\x00")

    def dict(self, d: dict, write_value) -> None:
        def pair(key: str) -> None:
            self.string(key)
            write_value(d[key])

        self.items(sorted(d, key=lambda k: k.encode("utf-8")), pair)

    def structure(self, node: Any) -> None:
        if isinstance(node, DatasetSpec):
            if not isinstance(node.type, TypeValue):
                raise _Decline
            self.out.append(b"\x01")
            self.type_value(node.type)
            self.out.append(b"\x01" if node.writable else b"\x00")
            return
        self.out.append(b"\x00")
        self.dict(node, self.structure)

    def dataset_ref(self, ref: DatasetRef) -> None:
        if ref.kind == "unassigned":
            self.out.append(b"\x01")
            return
        if ref.kind == "value":
            self.out.append(b"\x02")
            self.string(ref.hash or "")
        else:
            self.out.append(b"\x00")
        self.dict(ref.versions, self.string)

    def type_value(self, t: TypeValue) -> None:
        self.out.append(varint.encode(_CASES.index(t.kind)))
        if t.kind in _SIMPLE:
            return
        if t.kind in _ONE:
            self.type_value(t.parts)
        elif t.kind == "Dict":
            self.type_value(t.parts[0])
            self.type_value(t.parts[1])
        elif t.kind in ("Struct", "Variant"):
            self.items(t.parts, self.field, t.origin)
        elif t.kind in ("Function", "AsyncFunction"):
            self.items(t.parts[0], self.type_value, t.origin)
            self.type_value(t.parts[1])
        elif t.parts[0] == "ref":
            self.out.append(b"\x00" + _zigzag(t.parts[1]))
        else:
            self.out.append(b"\x01" + _zigzag(t.parts[1]))
            self.type_value(t.parts[2])

    def field(self, pair: tuple[str, TypeValue]) -> None:
        self.string(pair[0])
        self.type_value(pair[1])


def _zigzag(n: int) -> bytes:
    return varint.encode((n << 1) ^ (n >> 63))


NULL_VALUE = bytes.fromhex("89456173740d0a0500030001000100000000")
"""The canonical bytes of null (of type Null)."""
_NULL_OF = {
    "Boolean": bytes.fromhex("89456173740d0a050003000104010000010100"),
    "Blob": bytes.fromhex("89456173740d0a050003000106010000010100"),
    "Struct": bytes.fromhex("89456173740d0a050004000109000100000000"),
}
"""The runtime encodes None as a value of these types too (false, the empty blob, the struct
without fields): e3.repo.workspace.null_value's bytes for them."""
_NULL_OF_NULL = frozenset({"Null", "Integer", "Float", "String", "DateTime", "Array", "Set", "Dict", "Variant", "Ref", "Recursive", "Struct"})
"""Kinds of type (a Struct with fields) whose null ref stands for Null's null: the runtime encodes None as no value of theirs."""


def null_value(t: TypeValue) -> bytes | None:
    """e3.repo.workspace.null_value's bytes for a dataset of type `t` (what a `null` ref stands
    for), or None for a kind whose null this module does not know (ask the runtime)."""
    if t.kind in ("Boolean", "Blob") or t.kind == "Struct" and not t.parts:
        return _NULL_OF[t.kind]
    return NULL_VALUE if t.kind in _NULL_OF_NULL else None
