"""CSV as an East value: a table is an `Array<Struct{…}>`, one row per element.

The first line names the columns: the struct's fields, in any order. A cell is
read by its field's type: Integer and Float as numbers, Boolean as `true` or
`false`, DateTime in ISO 8601 (UTC unless it says otherwise), String and Blob
(hex, `0x…` or bare) as they are; an `Option<T>` field is `none` when its
cell is empty (or its column is missing), else T; any other type (an array, a
nested struct) is written in its `.east` text. Writing does the reverse, so a
table written and read back is the same value.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any, Callable

from e3 import east
from e3.errors import FormatError, TypeMismatch


def _fields(t: Any) -> list[tuple[str, Any]]:
    """The struct fields of a table type; anything else is refused with one line."""
    if t.type != "Array" or t.value.type != "Struct":
        raise TypeMismatch(f"csv holds an Array of Structs (a table), not {east.format_type(t)}")
    return [(f["name"], f["type"]) for f in t.value.value]


def _option_of(t: Any) -> Any | None:
    if t.type == "Variant":
        cases = [(f["name"], f["type"]) for f in t.value]
        if [c for c, _ in cases] == ["none", "some"] and cases[0][1].type == "Null":
            return cases[1][1]
    return None


def _reader(t: Any) -> Callable[[str], Any]:
    """Cell text -> the plain Python value `east.coerce` takes for type `t`."""
    inner = _option_of(t)
    if inner is not None:
        read_inner = _reader(inner)
        return lambda text: east.none if text == "" else east.some(read_inner(text))
    kind = t.type
    if kind == "Integer":
        return lambda text: int(text.strip())
    if kind == "Float":
        return lambda text: float(text.strip())
    if kind == "String":
        return lambda text: text
    if kind == "Boolean":
        def boolean(text: str) -> bool:
            word = text.strip().lower()
            if word not in ("true", "false"):
                raise ValueError(f"expected true or false, got {text!r}")
            return word == "true"
        return boolean
    if kind == "DateTime":
        def when(text: str) -> datetime:
            d = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            return d.replace(tzinfo=timezone.utc) if d.tzinfo is None else d.astimezone(timezone.utc)
        return when
    if kind == "Null":
        def null(text: str) -> None:
            if text.strip():
                raise ValueError(f"expected an empty cell for Null, got {text!r}")
        return null
    if kind == "Blob":
        return lambda text: bytes.fromhex(text.strip().removeprefix("0x"))
    return lambda text: east.from_east(text, t)


def from_csv(data: bytes | str, t: Any) -> Any:
    """The table `data` holds, as a value of type `t` (an Array of Structs)."""
    fields = _fields(t)
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(rows)
    except StopIteration:
        raise FormatError("csv is empty: the first line must name the columns") from None
    except csv.Error as e:
        raise FormatError(f"invalid csv: {e}") from None
    known = dict(fields)
    unknown = [c for c in header if c not in known]
    if unknown:
        raise FormatError(f"csv column {unknown[0]!r} is not a field of {east.format_type(t.value)}")
    if len(set(header)) != len(header):
        twice = next(c for c in header if header.count(c) > 1)
        raise FormatError(f"csv column {twice!r} appears twice")
    missing = {name: ft for name, ft in fields if name not in header}
    for name, ft in missing.items():
        if _option_of(ft) is None:
            raise FormatError(f"csv has no column {name!r} (a {east.format_type(ft)} field)")
    readers = [(name, _reader(known[name])) for name in header]
    out = []
    line = 1
    try:
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise FormatError(f"csv line {line}: {len(row)} cells, the header names {len(header)}")
            element = {name: east.none for name in missing}
            for (name, read), cell in zip(readers, row):
                try:
                    element[name] = read(cell)
                except (ValueError, FormatError, TypeMismatch) as e:
                    raise FormatError(f"csv line {line}, column {name!r}: {cell!r} is not a {east.format_type(known[name])}: {e}") from None
            out.append(element)
    except csv.Error as e:
        raise FormatError(f"invalid csv at line {line}: {e}") from None
    return east.coerce(out, t)


def _writer(t: Any) -> Callable[[Any], str]:
    """The value of a cell of type `t` -> its text (what `_reader` reads back)."""
    inner = _option_of(t)
    if inner is not None:
        write_inner = _writer(inner)
        return lambda v: "" if v.type == "none" else write_inner(v.value)
    kind = t.type
    if kind == "Integer":
        return str
    if kind == "Float":
        return repr
    if kind == "String":
        return lambda v: v
    if kind == "Boolean":
        return lambda v: "true" if v else "false"
    if kind == "DateTime":
        return lambda v: v.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if kind == "Null":
        return lambda v: ""
    if kind == "Blob":
        return lambda v: "0x" + bytes(v).hex()
    return lambda v: east.to_east(v, t)


def to_csv(value: Any, t: Any) -> bytes:
    """The table `value` (of type `t`, an Array of Structs) as CSV with a header line."""
    fields = _fields(t)
    writers = [(name, _writer(ft)) for name, ft in fields]
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([name for name, _ in fields])
    for element in value:
        w.writerow([write(element[name]) for name, write in writers])
    return buf.getvalue().encode()
