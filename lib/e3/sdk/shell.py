"""Helpers for the scripts of custom tasks: quoting East strings for bash."""
from __future__ import annotations

from typing import Any


def quote(expr: Any) -> Any:
    """An East String expression: `expr` in single quotes, safe as one bash word whatever it holds."""
    from e3.east import East

    return East.str("'", expr.replace("'", "'\\''"), "'")
