"""An execution record's Beast2 bytes written from a template, without the East runtime's encoder.

A record (e3.storage.records) is a value of one fixed type, ExecutionStatusType,
encoded as the runtime's whole-value container with no compression: a header
that names the type (the same bytes for every record), the value's length twice
(its segment's stored and plain sizes, equal without compression), then the
value: the case's index among the variant's sorted cases, and the case's fields
in the type's order, each a string (a varint byte count and its UTF-8), an
array of strings (a zero, the varint count, the strings, and a closing zero
when there are any), a DateTime (whole milliseconds since the epoch, truncated
as the runtime truncates them, zigzag varint) or an Integer (zigzag varint).
The runtime converts the record to its own values and its type description to
C on every call; a worker writes a record per task.

The template is checked before its first use in each process: records of every
kind are encoded both ways and must be byte for byte the same, else every record
is encoded by the runtime (an East runtime that writes these bytes otherwise).
A field outside what the template writes (not a str, int or datetime where one
is expected, an integer past 64 bits) goes to the runtime too, which encodes it
or refuses it as it always did.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from e3 import varint

Record = Any
"""An e3.storage.records.Record (not imported: that module imports this one)."""

_TAGS = {"error": b"\x00", "failed": b"\x01", "running": b"\x02", "success": b"\x03"}
"""Each kind's index among the variant's cases (sorted by name)."""
_I64 = 1 << 63

_head: bytes | None = None
"""The bytes before the value's lengths, once the template agreed with the runtime."""
_checked = False


def _varint(n: int) -> bytes:
    if n < 0x80:  # lengths, tags and counts: most are one byte
        return bytes((n,))
    return varint.encode(n)


def _integer(n: object) -> bytes:
    if type(n) is not int or not -_I64 <= n < _I64:
        raise _Unsupported
    return _varint((n << 1) ^ (n >> 63))


def _string(s: object) -> bytes:
    if type(s) is not str:
        raise _Unsupported
    try:
        data = s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: stored as the runtime stores them
        data = s.encode("utf-8", "surrogatepass")
    return _varint(len(data)) + data


def _datetime(d: object) -> bytes:
    if not isinstance(d, datetime):
        raise _Unsupported
    ms = int(d.timestamp() * 1000)  # the runtime's own arithmetic, float and all
    return _varint(ms << 1) if 0 <= ms < _I64 else _integer(ms)


class _Unsupported(Exception):
    """A field the template does not write: the runtime encodes the record."""


def value_bytes(r: Record) -> bytes:
    """The record's value (its case and fields) as the runtime encodes it; _Unsupported if not written here."""
    tag = _TAGS.get(r.kind)
    if tag is None or type(r.input_hashes) not in (tuple, list):
        raise _Unsupported
    inputs = r.input_hashes
    parts = [tag, _string(r.execution_id), b"\x00", _varint(len(inputs))]
    parts.extend(_string(h) for h in inputs)
    if inputs:
        parts.append(b"\x00")
    kind = r.kind
    if kind == "success":
        parts += (_string(r.output_hash), _datetime(r.started_at), _datetime(r.completed_at))
    elif kind == "failed":
        parts += (_datetime(r.started_at), _datetime(r.completed_at), _integer(r.exit_code))
    elif kind == "error":
        parts += (_datetime(r.started_at), _datetime(r.completed_at), _string(r.message or ""))
    else:
        parts += (_datetime(r.started_at), _integer(r.pid), _integer(r.pid_start_time), _string(r.boot_id))
    return b"".join(parts)


def encode(r: Record, runtime: Callable[[Record], bytes]) -> bytes:
    """The record's Beast2 bytes: from the template, or from `runtime(r)` where the template does not apply."""
    head = _head if _checked else _check(runtime, type(r))
    if head is None:
        return runtime(r)
    try:
        value = value_bytes(r)
    except _Unsupported:
        return runtime(r)
    size = _varint(len(value))
    return b"".join((head, size, size, value))


def _samples(make: type) -> list[Record]:
    """A record of every kind, with the fields that vary most: non-ASCII and empty text, several
    inputs and none, negative and multi-byte integers, times before and after the epoch."""
    t0 = datetime(2026, 1, 2, 3, 4, 5, 678901, timezone.utc)
    t1 = t0 + timedelta(days=400, microseconds=1500)
    old = datetime(1969, 12, 31, 23, 59, 59, 998500, timezone.utc)
    h = "ab" * 32
    return [
        make("success", "e" * 32, (h, "cd" * 32), t0, t1, output_hash="ef" * 32),
        make("success", "x", (), old, t0, output_hash=h),
        make("failed", "é" * 40, (h,), t0, t1, exit_code=-300),
        make("failed", "f", (h,) * 130, t0, t1, exit_code=137),
        make("error", "g", (h,), old, t1, message="déjà \u2603 " * 50),
        make("error", "g", (), t0, t1, message=""),
        make("running", "r", (h,), t0, pid=4194304, pid_start_time=123456789012, boot_id="b0-" * 12),
    ]


def _check(runtime: Callable[[Record], bytes], record_class: type) -> bytes | None:
    """The header the runtime writes for this type, if the template matches the runtime on every sample."""
    global _head, _checked
    head = None
    for r in _samples(record_class):
        try:
            data = runtime(r)
            value = value_bytes(r)
        except Exception:  # noqa: BLE001 - a runtime that cannot encode a sample: it encodes every record
            head = None
            break
        size = _varint(len(value))
        cut = len(data) - len(value) - 2 * len(size)
        if cut <= 0 or data[cut:] != size + size + value or (head is not None and data[:cut] != head):
            head = None
            break
        head = data[:cut]
    _head, _checked = head, True
    return head
