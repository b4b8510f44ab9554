"""A value's file formats: which one a file name names, and reading and writing a value in each.

`.east` and `.json` are text (e3.east), `.beast2` is binary and carries its type
(e3.east), `.csv` holds a table, an Array of Structs (e3.east_csv). This module
sits above both, so that neither imports the other's reader: e3.east_csv is
written with e3.east's helpers, and the dispatch over every format is here.

FORMATS and format_of_path are read by argument parsers: this module loads
the East runtime only when a value is read or written.
"""
from __future__ import annotations

from typing import Any

from e3.errors import FormatError, UsageError

FORMATS = ("east", "json", "beast2", "csv")
"""Value formats, by their file extensions; csv holds a table (an Array of Structs: e3.east_csv)."""


def format_of_path(path: str) -> str | None:
    """The value format a file name's extension names (one of FORMATS), else None."""
    for fmt in FORMATS:
        if path.endswith("." + fmt):
            return fmt
    return None


def load(data: bytes, fmt: str, t: Any | None = None) -> tuple[Any, Any]:
    """Read `data` in format `fmt` to `(type, value)`; text formats need `t`."""
    from e3 import east

    if fmt == "beast2":
        return east.decode(data, t)
    if t is None:
        raise UsageError(f"reading .{fmt} needs a type (--type)")
    if fmt == "east":
        return t, east.from_east(_text(data), t)
    if fmt == "json":
        return t, east.from_json(data, t)
    if fmt == "csv":
        from e3 import east_csv

        return t, east_csv.from_csv(_text(data), t)
    raise UsageError(f"unknown format {fmt!r} (expected {', '.join(FORMATS)})")


def dump(value: Any, t: Any, fmt: str) -> bytes:
    """Write `value` in format `fmt`; text formats end with a newline."""
    from e3 import east

    if fmt == "beast2":
        return east.encode(value, t)
    if fmt == "east":
        return (east.to_east(value, t) + "\n").encode()
    if fmt == "json":
        return east.to_json(value, t) + b"\n"
    if fmt == "csv":
        from e3 import east_csv

        return east_csv.to_csv(value, t)
    raise UsageError(f"unknown format {fmt!r} (expected {', '.join(FORMATS)})")


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"text is not utf-8 at byte {e.start}") from None
