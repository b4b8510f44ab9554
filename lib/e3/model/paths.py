"""Dataset paths: the user's `ws.inputs.x`, the tree path `.inputs.x`, and the East TreePath value.

A tree path is a tuple of field names, e.g. ('tasks', 'greet', 'output').
Printed like the original engine: `.tasks.greet.output`, with a name that is
not `[A-Za-z0-9_]+` quoted in backticks (backslash escapes inside). On the
command line a dataset path is `WS.field.field…`; we split on dots outside
backticks and also accept bare names such as `my-task` unquoted, because users
type them that way.
"""
from __future__ import annotations

import sys

import re
from typing import Any

from e3.errors import UsageError

TreePath = tuple[str, ...]

_PLAIN = re.compile(r"[A-Za-z0-9_]+")


def format_name(name: str) -> str:
    if _PLAIN.fullmatch(name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def format_tree_path(path: TreePath) -> str:
    """('inputs', 'x') -> '.inputs.x' (the original engine's printed form)."""
    return "".join("." + format_name(p) for p in path)


def ref_path(path: TreePath) -> str:
    """('inputs', 'x') -> 'inputs/x': the key of a package object's `refs` dict."""
    return "/".join(path)


def from_ref_path(text: str) -> TreePath:
    # Interned: a package's 100,000 refs share a few names ("tasks", "output") between them.
    return tuple(sys.intern(p) for p in text.split("/") if p)


def split_names(text: str) -> list[str]:
    """Split on dots outside backticks; `\\` escapes inside backticks."""
    names: list[str] = []
    cur: list[str] = []
    i, quoted, started = 0, False, False
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 2
                continue
            if c == "`":
                quoted = False
            else:
                cur.append(c)
        elif c == "`":
            quoted, started = True, True
        elif c == ".":
            names.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(c)
        i += 1
    if quoted:
        raise UsageError(f"unterminated backtick in path {text!r}")
    names.append("".join(cur))
    return names


def parse_tree_path(text: str) -> TreePath:
    """'.inputs.x' or 'inputs.x' -> ('inputs', 'x'); '' or '.' -> ()."""
    if text in ("", "."):
        return ()
    names = split_names(text[1:] if text.startswith(".") else text)
    if any(n == "" for n in names):
        raise UsageError(f"invalid dataset path {text!r}: empty name")
    return tuple(names)


def parse_dataset_path(text: str) -> tuple[str, TreePath]:
    """'dev.inputs.x' -> ('dev', ('inputs', 'x')); 'dev' -> ('dev', ())."""
    names = split_names(text)
    if not names or any(n == "" for n in names):
        raise UsageError(f"invalid dataset path {text!r}: expected WORKSPACE.name.name…")
    return names[0], tuple(names[1:])


def tree_path_to_east(path: TreePath) -> list[Any]:
    from e3.east import value_variant as variant

    return [variant("field", p) for p in path]


def tree_path_from_east(value: Any) -> TreePath:
    return tuple(str(seg.value) for seg in value)
