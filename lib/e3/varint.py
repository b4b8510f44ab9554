"""LEB128 varints as Beast2 writes them (counts, lengths, frame sizes): one reader over bytes in
memory and one writer, shared by the readers that must not load each other (e3.beast2_type,
e3.model.canonical, e3.beast2_stream)."""
from __future__ import annotations


class VarintError(ValueError):
    """A varint that runs past the end of its bytes or past 64 bits."""


def read(data: bytes | memoryview, pos: int) -> tuple[int, int, bool]:
    """The varint at `pos`: its value, the position after it, and whether it is written in as
    few bytes as it can be (as the runtime writes it)."""
    value = shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise VarintError("varint runs past the end")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos, b != 0 or shift == 0
        shift += 7
        if shift > 63:
            raise VarintError("varint too long")


def encode(n: int) -> bytes:
    """`n` (not negative) as a varint."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)
