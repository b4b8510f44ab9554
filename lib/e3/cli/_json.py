"""`--json`: the interface's values (e3.api.values) as JSON, for scripts.

One rule for every command, so a script learns it once:

- a value (a dataclass) is an object of its fields, under the same names;
- a dataset path is its printed form (`.inputs.x`), as every other output shows it;
- an East type is its familiar sketch (`Array<Integer>`), as `e3 list -l` shows it;
- a time is ISO 8601 in UTC (`2026-12-06T20:31:07.123Z`);
- bytes of a task's output are text (UTF-8, undecodable bytes replaced);
- an event of a stream has an `event` field naming its kind (`task_started`, …).

A command prints one document (`dump`), or one line per value for a stream
(`line`).
"""
from __future__ import annotations

import dataclasses
import json
import re
import sys
from datetime import datetime, timezone
from typing import Any


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def plain(value: Any, annotation: str = "") -> Any:
    """`value` as plain JSON data (dicts, lists, strings, numbers, booleans, None)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _field(f, getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(k): plain(v, _inner(annotation, 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if "TreePath" in annotation and not annotation.startswith(("list", "dict")):
            return _path(value)
        return [plain(v, _inner(annotation, 0)) for v in value]
    return str(value)


def _field(f: dataclasses.Field, value: Any) -> Any:
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    if f.name == "type" and value is not None:
        from e3 import east

        return east.format_type(value)
    return plain(value, annotation)


def _inner(annotation: str, index: int) -> str:
    """The annotation of a container's elements: `list[TreePath]` -> `TreePath`."""
    if "[" not in annotation:
        return ""
    inside = annotation[annotation.index("[") + 1 : annotation.rindex("]")]
    parts, depth, start = [], 0, 0
    for i, c in enumerate(inside):
        depth += c == "["
        depth -= c == "]"
        if c == "," and depth == 0:
            parts.append(inside[start:i].strip())
            start = i + 1
    parts.append(inside[start:].strip())
    return parts[min(index, len(parts) - 1)]


def _path(path: Any) -> str:
    from e3.model.paths import format_tree_path

    return format_tree_path(tuple(path))


def event(value: Any) -> dict:
    """A stream's value with its kind: {"event": "task_finished", ...fields}."""
    return {"event": _snake(type(value).__name__), **plain(value)}


def dump(data: Any) -> None:
    """Print one JSON document (indented: readable, and still one document for a script)."""
    sys.stdout.write(json.dumps(plain(data), indent=2, ensure_ascii=False) + "\n")


def line(data: Any) -> None:
    """Print one JSON value on one line, flushed: one record of a stream."""
    sys.stdout.write(json.dumps(data if isinstance(data, dict) else plain(data), ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()
