"""What the Beast2 streaming tests hold e3.beast2_stream to, value by value: canonical bytes pass
through its check unchanged, and the pieces it prints are the East runtime's own text of the
whole value decoded."""
from __future__ import annotations

import io
import json
from typing import Any

from e3 import beast2_stream, east

FORMATS = ("east", "json", "compact json")
"""`json` is indented as `e3 get -f json` prints it; `compact json` is the runtime's one line."""


def decoded(data: bytes, t: Any) -> Any:
    """The value in `data`, decoded whole by the runtime."""
    return east.decoder_for(t)(data)


def assert_canonical_passes_through(data: bytes, t: Any) -> None:
    """`check` of the runtime's own bytes of a value of type `t`: every byte handed on, canonical, type `t`."""
    seen = bytearray()
    checked = beast2_stream.check(io.BytesIO(data), t, tee=seen.extend)
    assert bytes(seen) == data
    assert checked.canonical
    assert east.type_equal(checked.type, t)


def printed(data: bytes, fmt: str) -> list[str]:
    """The pieces `print_text` writes of the value in `data`, in one of FORMATS."""
    parts: list[str] = []
    beast2_stream.print_text(lambda: io.BytesIO(data), fmt.split()[-1], parts.append, indent=fmt == "json")
    return parts


def runtime_text(data: bytes, t: Any, fmt: str) -> str:
    """The runtime's text of the value in `data` (of type `t`), decoded whole, as `printed` should join up."""
    whole = decoded(data, t)
    if fmt == "east":
        return east.to_east(whole, t) + "\n"
    if fmt == "compact json":
        return east.to_json(whole, t).decode() + "\n"
    return json.dumps(json.loads(east.to_json(whole, t)), indent=2, ensure_ascii=False) + "\n"
