"""The fixed prefix of a Beast2 container, checked without the East runtime.

Every stored object starts with the 7-byte magic `89 'East' CR LF` and a
container version byte. Checking that much needs no East runtime, so the object
store's readers, `e3-fsck` and `e3-cat-object --batch-check` can tell Beast2
from other bytes while starting fast. Decoding the type and value is
e3.east's job.
"""
from __future__ import annotations

MAGIC = b"\x89East\r\n"
PREFIX_SIZE = len(MAGIC) + 1
READ_VERSIONS = (4, 5)
"""Container versions the East runtime in use (east-py) decodes."""


def header_problem(head: bytes | memoryview) -> str | None:
    """Why `head` (the first bytes of some data) cannot start a Beast2 value, or None if it can."""
    head = bytes(head[:PREFIX_SIZE])
    if len(head) == 0:
        return "not beast2 data (empty)"
    if len(head) < PREFIX_SIZE or head[: len(MAGIC)] != MAGIC:
        return "not beast2 data (bad magic bytes)"
    version = head[len(MAGIC)]
    if version not in READ_VERSIONS:
        hint = " (written by the TypeScript East runtime)" if version == 1 else ""
        return f"unsupported beast2 container version {version}{hint}; this runtime reads versions 4 and 5"
    return None


def is_beast2(head: bytes | memoryview) -> bool:
    return header_problem(head) is None
