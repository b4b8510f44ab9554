"""A value's type, printed from its Beast2 header without the East runtime.

`e3-cat-object -t` and `--batch-check` print a value's type. Loading the East
runtime to read it costs about 50 ms, more than a whole batch of 10,000 answers,
so the common case is read here: a version 5 container whose type section is the
structural type table (see e3-repository(5)) over the kinds that print as a
sketch (`Array<Integer>`, `Struct{a: Integer}`...). The text is exactly what
`e3.east.format_type` prints. Anything else -- container version 4, well-known
types, recursive or function types, a table this module does not expect --
gives None, and the caller asks the runtime, so correctness never rests on
this reader: it either agrees with the runtime or declines.

The same headers are read as a `Sketch` (`walk_type`), the type's shape as
e3.beast2_stream walks it: checking a large array of numbers that way needs no
runtime at all (`e3-hash-object -w`).
"""
from __future__ import annotations

import re

from e3 import varint
from e3.container import MAGIC

_V5 = MAGIC + b"\x05"
_STRUCTURAL = 0
_EMPTY_SOURCE_MAP = b"\x01\x00"
"""Payload length 1, no stacks: what every value without functions carries."""

# Tag bytes of the structural type table, for the kinds printed as a sketch.
_SIMPLE = {0x00: "Null", 0x01: "String", 0x02: "Integer", 0x03: "Float", 0x04: "Boolean", 0x05: "DateTime", 0x06: "Blob"}
_ONE_PARAMETER = {0x0A: "Array", 0x0C: "Set", 0x0D: "Ref"}
_DICT = 0x0B
_NAMED = {0x09: "Struct", 0x08: "Variant"}

_MAX_TEXT = 1 << 20
"""Shared table entries can print exponentially long text: past this, leave it to the runtime."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def field_name(name: str) -> str:
    """A struct field or variant case name as a type sketch prints it: bare, or in backquotes."""
    if _IDENTIFIER.fullmatch(name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class _Decline(Exception):
    pass


_seen: dict[bytes, str] = {}
"""Header bytes -> text: a batch over many values of a few types parses each header once."""
_SEEN_MAX = 4096


def type_text(data: bytes | memoryview) -> str | None:
    """The type sketch of the Beast2 value starting `data`, or None to ask the runtime."""
    # The common header (structural section shorter than 128 bytes, no source map) is its own cache key.
    if len(data) > 10 and data[8] == _STRUCTURAL and data[9] < 0x80:
        key = bytes(data[: 10 + data[9] + len(_EMPTY_SOURCE_MAP)])
        text = _seen.get(key)
        if text is not None:
            return text
    else:
        key = None
    try:
        text = _read(memoryview(data))
    except _Decline:
        return None
    if key is not None and len(_seen) < _SEEN_MAX:
        _seen[key] = text
    return text


def _read(data: memoryview) -> str:
    texts, _, root = _table(data)
    return texts[root]


class Sketch:
    """A type read from a header, in the shape of the runtime's type objects as e3.beast2_stream
    walks them: `type` is the kind ("Array", "Struct"...) and `value` the inner type (Array, Set,
    Ref), `{"key": K, "value": V}` (Dict) or `[{"name": N, "type": T}, ...]` (Struct, Variant)."""

    __slots__ = ("type", "value")

    def __init__(self, kind: str, value: object = None):
        self.type = kind
        self.value = value


def walk_type(data: bytes | memoryview) -> Sketch | None:
    """The type of the Beast2 value starting `data` as a `Sketch`, or None to ask the runtime: read
    from the same headers `type_text` reads, declining a Struct or Variant that names a field twice
    and a Set or Dict whose elements or keys are not of an immutable type (the runtime refuses those)."""
    try:
        _, nodes, root = _table(memoryview(data))
    except _Decline:
        return None
    t = nodes[root]
    return t if _acceptable(t) else None


def _acceptable(t: Sketch) -> bool:
    if t.type in ("Array", "Ref"):
        return _acceptable(t.value)
    if t.type == "Set":
        return _immutable(t.value) and _acceptable(t.value)
    if t.type == "Dict":
        return _immutable(t.value["key"]) and _acceptable(t.value["key"]) and _acceptable(t.value["value"])
    if t.type in ("Struct", "Variant"):
        names = [f["name"] for f in t.value]
        return len(set(names)) == len(names) and all(_acceptable(f["type"]) for f in t.value)
    return True


def _immutable(t: Sketch) -> bool:
    if t.type in ("Struct", "Variant"):
        return all(_immutable(f["type"]) for f in t.value)
    return t.type in _SIMPLE.values()


def _table(data: memoryview) -> tuple[list[str], list[Sketch], int]:
    """The structural type table of a version 5 header: each entry's text and `Sketch`, and the root's index."""
    if data[: len(_V5)] != _V5:
        raise _Decline
    pos = len(_V5)
    kind, pos = _varint(data, pos)
    if kind != _STRUCTURAL:
        raise _Decline
    length, pos = _varint(data, pos)
    end = pos + length
    if data[end : end + len(_EMPTY_SOURCE_MAP)] != _EMPTY_SOURCE_MAP:
        raise _Decline  # also when the header runs past `data`
    root, pos = _varint(data, pos)
    count, pos = _varint(data, pos)
    # Canonical tables list children before their parents and the root last, so
    # one pass in order prints every entry from texts already printed.
    if count == 0 or root != count - 1:
        raise _Decline
    texts: list[str] = []
    nodes: list[Sketch] = []
    total = 0
    for _ in range(count):
        if pos >= end:
            raise _Decline
        tag = data[pos]
        pos += 1
        if tag in _SIMPLE:
            text = _SIMPLE[tag]
            node = Sketch(text)
        elif tag in _ONE_PARAMETER:
            inner, pos = _child(data, pos, texts)
            text = f"{_ONE_PARAMETER[tag]}<{texts[inner]}>"
            node = Sketch(_ONE_PARAMETER[tag], nodes[inner])
        elif tag == _DICT:
            key, pos = _child(data, pos, texts)
            value, pos = _child(data, pos, texts)
            text = f"Dict<{texts[key]}, {texts[value]}>"
            node = Sketch("Dict", {"key": nodes[key], "value": nodes[value]})
        elif tag in _NAMED:
            text, node, pos = _named(data, pos, end, texts, nodes, _NAMED[tag])
        else:
            raise _Decline  # Never, Vector, Matrix, functions, recursive types: the runtime prints these
        total += len(text)
        if total > _MAX_TEXT:
            raise _Decline
        texts.append(text)
        nodes.append(node)
    if pos != end:
        raise _Decline
    return texts, nodes, root


def _named(data: memoryview, pos: int, end: int, texts: list[str], nodes: list[Sketch], kind: str) -> tuple[str, Sketch, int]:
    n, pos = _varint(data, pos)
    names: list[str] = []
    parts: list[str] = []
    fields: list[dict] = []
    for _ in range(n):
        size, pos = _varint(data, pos)
        if pos + size > end:
            raise _Decline
        raw = bytes(data[pos : pos + size])
        pos += size
        if b"\x00" in raw:
            raise _Decline  # the runtime cuts a name at NUL
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Decline from None
        inner, pos = _child(data, pos, texts)
        names.append(name)
        parts.append(f"{field_name(name)}: {texts[inner]}")
        fields.append({"name": name, "type": nodes[inner]})
    node = Sketch(kind, fields)
    if kind == "Variant":
        # The runtime orders cases by name; a table in another order is left to it.
        if any(a.encode() >= b.encode() for a, b in zip(names, names[1:])):
            raise _Decline
        if names == ["none", "some"] and parts[0] == "none: Null":
            return f"Option<{parts[1][len('some: '):]}>", node, pos
    return f"{kind}{{{', '.join(parts)}}}", node, pos


def _child(data: memoryview, pos: int, texts: list[str]) -> tuple[int, int]:
    index, pos = _varint(data, pos)
    if index >= len(texts):
        raise _Decline  # a forward or self reference: not a canonical table
    return index, pos


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    try:
        value, pos, _ = varint.read(data, pos)
    except varint.VarintError:
        raise _Decline from None
    return value, pos


_TAGS = {kind: tag for table in (_SIMPLE, _ONE_PARAMETER, _NAMED) for tag, kind in table.items()} | {"Dict": _DICT}


def canonical_header(t: Sketch) -> bytes:
    """The header the runtime writes for a value of type `t` (e3's canonical header): the
    structural table lists each distinct type once, children before their parents in the order
    a depth-first walk from the root first finishes them, the root last; an empty source map.
    Held to the runtime's `e3.beast2_stream.canonical_prefix` by tests/test_beast2_type.py."""
    entries: list[bytes] = []
    index: dict[bytes, int] = {}

    def visit(t: Sketch) -> int:
        tag = bytes((_TAGS[t.type],))
        if t.type in _ONE_PARAMETER.values():
            body = tag + varint.encode(visit(t.value))
        elif t.type == "Dict":
            key = visit(t.value["key"])
            body = tag + varint.encode(key) + varint.encode(visit(t.value["value"]))
        elif t.type in _NAMED.values():
            children = [visit(f["type"]) for f in t.value]
            body = tag + varint.encode(len(t.value))
            for f, child in zip(t.value, children):
                name = f["name"].encode()
                body += varint.encode(len(name)) + name + varint.encode(child)
        else:
            body = tag
        at = index.get(body)
        if at is None:
            at = index[body] = len(entries)
            entries.append(body)
        return at

    root = visit(t)
    table = varint.encode(root) + varint.encode(len(entries)) + b"".join(entries)
    return _V5 + varint.encode(_STRUCTURAL) + varint.encode(len(table)) + table + _EMPTY_SOURCE_MAP
