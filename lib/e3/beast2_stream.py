"""Beast2 values as streams: checked, made canonical and printed a piece at a time, never held whole.

A value may be larger than memory, so the commands that move one (`e3 set`,
`e3-hash-object -w`, `e3 get -f json`) read it a piece at a time. Only the
East runtime decodes values, and it decodes a whole value or a whole
segment of a collection; e3's canonical encoding (see e3.east) puts a
collection in one segment. So this module walks the bytes itself, without
building the value:

- A Beast2 container (version 5) is a header (magic, version, type section,
  source map), a value stream of frames (codec, logical length, payload
  length, payload; codec 1 payloads are raw DEFLATE), and optionally a
  segment index and a footer. The frames' payloads, in order, are the
  value's logical encoding. A collection at the root is `NEW`, segments
  (`varint(n)` then n elements), and `varint(0)`.
- The walker finds where each element of a root collection ends, knowing
  the encoding of every type (fixed-width floats, varints, length-prefixed
  strings, tags of variants and containers). Elements of a few scalar types
  (Float, Integer, DateTime, Boolean, Null) it checks itself, whole runs at
  a time; any other element goes to the runtime a few megabytes of elements
  at a time, as a small collection built around their bytes, so every value
  is checked by the runtime's own decoder without being held whole.
- e3's canonical encoding of a collection is the header, one frame (codec 0)
  and one segment. Bytes already in that form are kept as they are; any
  other encoding of the value (several segments, deflate frames, an index) is
  written out again as the header, the frame's lengths and the elements in
  the canonical encoding, after a first pass has counted them.

A Blob or String at the root (a file's bytes, a long text) is one frame
holding its length and its bytes (the runtime refuses more frames): those
are walked as they come too (a String's UTF-8 checked incrementally), and
written canonically as one codec-0 frame.

A Struct at the root (a table held as columns: a Struct of Arrays), a
Variant or a scalar is one frame too (the runtime refuses more, and any
bytes after it): its fields, in order, with no tag of their own; a Variant
is its case's index and that case's value. Those are walked part by part
(`_Parts`): each collection as a root collection is (it may come in several
segments), each Blob or String a chunk at a time, each scalar checked here.
The canonical encoding writes every collection in one segment, whose count
comes before its elements, so making one canonical reads the value twice:
a first pass counts, the second writes. A Struct's text is printed field by
field, its collections a piece at a time.

Values of other types (a Ref or a recursive type outside a collection's
elements, functions), container version 4, and values where a container is
shared between pieces (a reference that reaches into an earlier piece, or a
field that is the same collection as an earlier field) are handled whole,
by the runtime: those hold the value in memory. A single frame holds at most
1 GiB (the runtime refuses more), so a canonical collection, Blob, String or
Struct is at most that.
"""
from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator

from e3 import varint
from e3.container import MAGIC, header_problem
from e3.errors import FormatError, TypeMismatch

READ_SIZE = 1 << 20
"""Bytes read from the source at a time."""
PIECE = 1 << 20
"""Bytes of elements handed to the runtime at a time (checks of complex elements, text, re-encoding)."""
VARINT_WINDOW = 1 << 18
"""Bytes of a run of integers looked at at once (a few megabytes of numpy arrays at one byte per integer)."""
FRAME_MAX = 1 << 30
"""The most logical bytes one frame may declare: the runtime refuses a larger frame."""
FOOTER_MAGIC = MAGIC + b"\xf5"
TRAILER_MAX = 1 << 28
"""The most bytes of index and footer read after a value stream (an index holds ~5 bytes per segment)."""
_NEW, _REF = 0, 1
_COLLECTIONS = ("Array", "Set", "Dict")
_BYTES = ("Blob", "String")
"""Roots that are a length and bytes, walked a piece at a time as collections are."""
_FIXED = {"Float": 8, "Null": 0}


class _Whole(Exception):
    """This value cannot be walked a piece at a time: handle it whole, with the runtime."""


class Declined(Exception):
    """`check(..., expect=...)` cannot tell without the East runtime: ask it (check again with a type)."""


def _bad(message: str) -> FormatError:
    return FormatError(f"malformed beast2 value: {message}")


# ------------------------------------------------------------------ reading


class _Bytes:
    """What both readers share: a LEB128 varint from their `byte()`."""

    def byte(self) -> int:
        raise NotImplementedError

    def varint(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise _bad("varint too long")

    def varint_minimal(self) -> tuple[int, bool]:
        """A varint, and whether it is written in as few bytes as it can be (as the runtime writes it)."""
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value, b != 0 or shift == 0
            shift += 7
            if shift > 63:
                raise _bad("varint too long")


class _Input(_Bytes):
    """The source's bytes in order, read a piece at a time; every byte read is also given to `tee`."""

    def __init__(self, source: BinaryIO, tee: Callable[[bytes], object] | None = None):
        self.source = source
        self.tee = tee
        self.buf = b""
        self.pos = 0
        self.offset = 0
        """Where buf[0] is in the source."""

    def tell(self) -> int:
        return self.offset + self.pos

    def fill(self, n: int) -> bool:
        """At least `n` bytes buffered past `pos`, unless the source ends first (then False)."""
        while len(self.buf) - self.pos < n:
            more = self.source.read(max(READ_SIZE, n - (len(self.buf) - self.pos)))
            if not more:
                return False
            if self.tee is not None:
                self.tee(more)
            self.offset += self.pos
            self.buf = self.buf[self.pos :] + more if self.pos < len(self.buf) else more
            self.pos = 0
        return True

    def take(self, n: int) -> bytes:
        if not self.fill(n):
            raise _bad("truncated")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        if self.pos >= len(self.buf) and not self.fill(1):
            raise _bad("truncated")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def rest(self) -> bytes:
        """Everything left in the source (the index and footer after a value stream: small)."""
        while self.fill(len(self.buf) - self.pos + READ_SIZE):
            if len(self.buf) - self.pos > TRAILER_MAX:
                raise _bad("bytes after the end of the value")
        out = self.buf[self.pos :]
        self.pos = len(self.buf)
        return out


@dataclass
class Header:
    type: Any
    raw: bytes
    """The header's bytes: magic, version, type section and source map."""


class _Short(Exception):
    pass


def _read_header(inp: _Input, sketch: bool = False, only_sketch: bool = False) -> Header:
    """The header of a version 5 container (_Whole for version 4, which is read whole).

    With `sketch`, a type this module checks without the runtime (`_checked_here`) is read
    without it too (e3.beast2_type.walk_type): the header's `type` is then a `Sketch`, which
    only this module's walkers may be given. With `only_sketch`, any other type is `Declined`."""
    size = 1 << 12
    while True:
        complete = inp.fill(size)
        data = inp.buf[inp.pos : inp.pos + size]
        problem = header_problem(data)
        if problem:
            raise FormatError(problem)
        if data[len(MAGIC)] != 5:
            raise _Whole
        try:
            n = _header_length(data)
            break
        except _Short:
            if not complete:
                raise _bad("truncated header") from None
            size *= 4
    inp.pos += n
    if sketch:
        from e3.beast2_type import walk_type

        t = walk_type(data[:n])
        if t is not None and _checked_here(t):
            return Header(t, data[:n])
    if only_sketch:
        raise Declined
    from e3 import east

    return Header(east.read_type(data[:n]), data[:n])


class _Held(_Bytes):
    """Bytes already in memory, read from `at`; _Short past their end (more must be read first)."""

    def __init__(self, data: bytes, at: int):
        self.data, self.at = data, at

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise _Short
        b = self.data[self.at]
        self.at += 1
        return b

    def skip(self, n: int) -> None:
        # A method, not `h.at += h.varint()`: that reads `at` before the varint moves it.
        self.at += n


def _header_length(data: bytes) -> int:
    """The length of the header starting `data`: magic and version, type section, source map."""
    h = _Held(data, len(MAGIC) + 1)
    kind = h.varint()
    if kind == 0:
        h.skip(h.varint())
    elif kind in (1, 2):
        h.varint()
        h.skip(8)
        if kind == 2:
            h.skip(h.varint())
    else:
        raise _bad(f"unknown type section kind {kind}")
    h.skip(h.varint())  # the source map
    if h.at > len(data):
        raise _Short
    return h.at


class _Value(_Bytes):
    """The logical bytes of a value stream: the payloads of its frames, inflated where compressed.

    The walker reads through `buf`/`pos` (refilled by `fill`). While a piece is being
    recorded, the bytes it reads are kept, so the runtime can be given that piece.
    """

    def __init__(self, inp: _Input, one_frame: str | None = None):
        self.inp = inp
        self.one_frame = one_frame
        """What the root is, when its value must be one frame (the runtime refuses more): anything but a collection."""
        self.buf = b""
        self.pos = 0
        self.frame_left = 0
        """Payload bytes of the current frame not read yet."""
        self.inflater: Any = None
        self.logical_left = 0
        """Logical bytes of the current frame not produced yet."""
        self.frames = 0
        self.logical = 0
        """Logical bytes the frames declare, in all."""
        self.codecs: set[int] = set()
        self.frame_offsets: list[int] = []
        """Where each frame starts in the source (an index names the frames of the root's segments)."""
        self.recording = False
        self.record_parts: list[bytes] = []
        self.record_from = 0
        self.defs = 0
        """Containers defined so far (NEW tags), for references."""
        self.piece_defs = 0
        """`defs` where the piece being recorded began: a reference below it crosses pieces."""

    # -- frames

    def _next_frame(self, empty: bool = False) -> bool:
        """Read the next frame's header (False at the end of the source); `empty`: it may hold nothing."""
        if self.inp.pos >= len(self.inp.buf) and not self.inp.fill(1):
            return False
        if self.one_frame is not None and self.frames:
            raise _bad(f"{self.one_frame} at the root must be one frame")  # as the runtime says
        self.frame_offsets.append(self.inp.tell())
        codec = self.inp.varint()
        ulen = self.inp.varint()
        plen = self.inp.varint()
        if ulen > FRAME_MAX:
            raise _bad("a frame declares more than the 1 GiB the runtime reads")
        if codec == 0:
            if plen != ulen:
                raise _bad("an uncompressed frame's lengths differ")
            self.inflater = None
        elif codec == 1:
            self.inflater = zlib.decompressobj(-15)
        else:
            raise _bad(f"unknown frame codec {codec}")
        if ulen == 0 and not empty:
            raise _bad("empty frame")
        self.frames += 1
        self.logical += ulen
        self.codecs.add(codec)
        self.frame_left = plen
        self.logical_left = ulen
        return True

    def _produce(self, want: int) -> bytes:
        """Up to `want` more logical bytes (at least one), from the current frame or the next."""
        while self.logical_left == 0:
            if not self._next_frame():
                raise _bad("truncated (the value stream ends early)")
        inp = self.inp
        if self.inflater is None:
            n = min(want, self.logical_left)
            if inp.pos >= len(inp.buf):
                inp.fill(1)
            n = min(n, len(inp.buf) - inp.pos)
            if n == 0:
                raise _bad("truncated frame")
            out = inp.buf[inp.pos : inp.pos + n]
            inp.pos += n
            self.frame_left -= n
            self.logical_left -= n
            return out
        out = b""
        while not out:
            out = self._inflate(self.inflater.unconsumed_tail or self._payload(), min(want, self.logical_left))
        self.logical_left -= len(out)
        if self.logical_left == 0:
            self._end_deflate()
        return out

    def _end_deflate(self) -> None:
        """The rest of a deflate frame's payload must inflate to nothing, and end the stream."""
        while self.inflater.unconsumed_tail or self.frame_left:
            if self._inflate(self.inflater.unconsumed_tail or self._payload(), 1):
                raise _bad("a deflate frame inflates to more than it declares")
        if self._inflate(b"", 1) or not self.inflater.eof or self.inflater.unused_data:
            raise _bad("a deflate frame does not end where it declares")

    def _inflate(self, data: bytes, most: int) -> bytes:
        try:
            return self.inflater.decompress(data, most)
        except zlib.error as e:
            raise _bad(f"a deflate frame does not inflate ({e})") from None

    def _payload(self) -> bytes:
        """More of the current frame's payload (compressed bytes)."""
        inp = self.inp
        if self.frame_left == 0:
            raise _bad("a deflate frame inflates to less than it declares")
        if inp.pos >= len(inp.buf):
            inp.fill(1)
        n = min(self.frame_left, len(inp.buf) - inp.pos, READ_SIZE)
        if n == 0:
            raise _bad("truncated frame")
        data = inp.buf[inp.pos : inp.pos + n]
        inp.pos += n
        self.frame_left -= n
        return data

    def first_frame(self) -> None:
        """Read the header of a one-frame root's frame, which is empty when the value has no bytes (a Null)."""
        if not self._next_frame(empty=True):
            raise _bad("truncated (the value stream ends early)")
        if self.logical_left == 0 and self.inflater is not None:
            self._end_deflate()

    def frame_done(self) -> bool:
        return self.logical_left == 0 and self.pos >= len(self.buf)

    # -- logical bytes

    def fill(self, n: int) -> None:
        while len(self.buf) - self.pos < n:
            more = self._produce(max(n - (len(self.buf) - self.pos), READ_SIZE))
            if self.recording:  # the bytes read so far leave the buffer: keep them
                self.record_parts.append(self.buf[self.record_from : self.pos])
                self.record_from = 0
            self.buf = self.buf[self.pos :] + more if self.pos < len(self.buf) else more
            self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            self.fill(1)
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def skip(self, n: int) -> None:
        while n:
            if self.pos >= len(self.buf):
                self.fill(1)
            k = min(n, len(self.buf) - self.pos)
            self.pos += k
            n -= k

    def take(self, n: int) -> bytes:
        self.fill(n)
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    # -- pieces

    def start_piece(self) -> None:
        self.recording = True
        self.record_parts = []
        self.record_from = self.pos
        self.piece_defs = self.defs

    def end_piece(self) -> bytes:
        self.recording = False
        self.record_parts.append(self.buf[self.record_from : self.pos])
        data = b"".join(self.record_parts)
        self.record_parts = []
        return data


# ------------------------------------------------------------------ the walker


def _skipper(t: Any) -> Callable[[_Value], None]:
    """A function that moves a stream past one value of type `t`, checking its structure."""
    kind = t.type
    if kind == "Null":
        return lambda s: None
    if kind == "Boolean":

        def boolean(s: _Value) -> None:
            if s.byte() > 1:
                raise _bad("a boolean is neither 0 nor 1")

        return boolean
    if kind in ("Integer", "DateTime"):
        return _skip_varint
    if kind == "Float":
        return lambda s: s.skip(8)
    if kind in ("String", "Blob"):
        return lambda s: s.skip(s.varint())
    if kind == "Struct":
        fields = [_skipper(f["type"]) for f in t.value]

        def struct(s: _Value) -> None:
            for f in fields:
                f(s)

        return struct
    if kind == "Variant":
        cases = [_skipper(c["type"]) for c in t.value]

        def variant(s: _Value) -> None:
            i = s.varint()
            if i >= len(cases):
                raise _bad("a variant's case is out of range")
            cases[i](s)

        return variant
    if kind == "Ref":
        inner = _skipper(t.value)

        def ref(s: _Value) -> None:
            if _container_tag(s):
                inner(s)

        return ref
    if kind in _COLLECTIONS:
        element = _element_skipper(t)

        def collection(s: _Value) -> None:
            if not _container_tag(s):
                return
            while True:
                n = s.varint()
                if n == 0:
                    return
                for _ in range(n):
                    element(s)

        return collection
    raise _Whole  # recursive, function, vector, matrix, never: the runtime reads these whole


def _element_skipper(t: Any) -> Callable[[_Value], None]:
    if t.type == "Dict":
        key, value = _skipper(t.value["key"]), _skipper(t.value["value"])

        def pair(s: _Value) -> None:
            key(s)
            value(s)

        return pair
    return _skipper(t.value)


def _container_tag(s: _Value) -> bool:
    """Read a container's tag: True for NEW (its contents follow), False for a reference."""
    tag = s.byte()
    if tag == _NEW:
        s.defs += 1
        return True
    if tag != _REF:
        raise _bad(f"unknown container tag {tag}")
    delta = s.varint()
    target = s.defs - delta
    if delta < 1 or target < 0:
        raise _bad("a reference reaches before the first container")
    if s.recording and target < s.piece_defs:
        raise _Whole  # shared with an earlier piece: a piece alone would not decode
    return False


def _skip_varint(s: _Value) -> None:
    s.varint()


# Runs of scalar elements, checked here: (checker(s, count) -> canonical?)


def _run_fixed(width: int) -> Callable[[_Value, int], bool]:
    def run(s: _Value, n: int) -> bool:
        s.skip(width * n)
        return True

    return run


def _run_boolean(s: _Value, n: int) -> bool:
    while n:
        if s.pos >= len(s.buf):
            s.fill(1)
        k = min(n, len(s.buf) - s.pos)
        if s.buf[s.pos : s.pos + k].translate(None, b"\x00\x01"):
            raise _bad("a boolean is neither 0 nor 1")
        s.pos += k
        n -= k
    return True


def _run_varints(s: _Value, n: int) -> bool:
    """Move past `n` zigzag varints of 64-bit integers; True if every one is minimal (canonical)."""
    import numpy

    canonical = True
    length = 0  # bytes of a varint begun in an earlier piece
    while n:
        if s.pos >= len(s.buf):
            s.fill(1)
        # A window of at most VARINT_WINDOW bytes: numpy makes arrays of 8 bytes per varint in it.
        window = s.buf[s.pos : s.pos + min(len(s.buf) - s.pos, 10 * n, VARINT_WINDOW)]
        arr = numpy.frombuffer(window, dtype=numpy.uint8)
        ends = numpy.flatnonzero(arr < 0x80)
        if len(ends) > n:
            ends = ends[:n]
        if len(ends) == 0:
            length += len(arr)
            if length > 10:
                raise _bad("varint too long")
            s.pos += len(arr)
            continue
        lengths = numpy.diff(ends, prepend=-1)
        lengths[0] += length
        if lengths.max() > 10:
            raise _bad("varint too long")
        last = arr[ends]
        if ((lengths == 10) & (last > 1)).any():
            raise _bad("an integer does not fit 64 bits")
        if canonical and ((lengths > 1) & (last == 0)).any():
            canonical = False
        used = int(ends[-1]) + 1
        s.pos += used
        n -= len(ends)
        length = 0
    return canonical


_RUNS: dict[str, Callable[[_Value, int], bool]] = {
    "Float": _run_fixed(8),
    "Null": _run_fixed(0),
    "Boolean": _run_boolean,
    "Integer": _run_varints,
    "DateTime": _run_varints,
}


# ------------------------------------------------------------------ a collection, piece by piece


@dataclass
class Piece:
    count: int
    data: bytes | None
    """The elements' logical bytes, when recorded."""
    canonical: bool | None
    """Checked here (a run of scalars): whether the bytes are canonical. None: only the runtime can say."""


class _Collection:
    """Walks a collection's elements, a piece at a time: the root's, or (`root` False) a Struct's or
    Variant's field's, whose container tag the caller has read."""

    def __init__(self, s: _Value, t: Any, record: bool, root: bool = True):
        self.s = s
        self.t = t
        self.root = root
        # Runs of scalars in an Array are checked here; a Set's elements must also ascend,
        # which the runtime checks.
        self.run = _RUNS.get(t.value.type) if t.type == "Array" else None
        self.element = None if self.run is not None else _element_skipper(t)
        self.record = record or self.run is None
        """Pieces of elements this module does not check itself go to the runtime."""
        self.canonical = True
        """Every count written in as few bytes as it can be, and every run of scalars canonical (the
        caller still checks the runtime's pieces, and that there is at most one segment)."""
        self.segments: list[int] = []
        """Each segment's element count."""
        self.count = 0

    def pieces(self) -> Iterator[Piece]:
        s = self.s
        if self.root:
            if s.byte() != _NEW:
                raise _bad("a root collection must start with a new container")
            s.defs = 1
        while True:
            n, minimal = s.varint_minimal()
            if not minimal:
                self.canonical = False
            if n == 0:
                return
            self.segments.append(n)
            while n:
                if self.record:
                    s.start_piece()
                canonical = None
                if self.run is not None:
                    k = min(n, PIECE // 8)
                    canonical = self.run(s, k)
                    if not canonical:
                        self.canonical = False
                else:
                    k = 0
                    start = self._position()
                    while k < n:
                        self.element(s)
                        k += 1
                        if self.record and self._position() - start >= PIECE:
                            break
                n -= k
                self.count += k
                yield Piece(k, s.end_piece() if self.record else None, canonical)

    def _position(self) -> int:
        s = self.s
        return sum(len(p) for p in s.record_parts) + s.pos - s.record_from


def _walk_bytes(s: _Value, t: Any, sink: Callable[[bytes], object] | None = None) -> int:
    """Read a root Blob's or String's logical bytes (a length, then the bytes) a piece at a time,
    checking a String's UTF-8 as it goes; the bytes go to `sink`. Their count.

    `s` is made with `one_frame`: the runtime refuses a Blob or String in several frames."""
    n = s.varint()
    _bytes_body(s, t, n, sink)
    if not s.frame_done():
        raise _bad("bytes after the end of the value in its frame")
    return n


def _bytes_body(s: _Value, t: Any, n: int, sink: Callable[[bytes], object] | None) -> None:
    """Read the `n` bytes of a Blob or String a piece at a time, checking a String's UTF-8; to `sink`."""
    import codecs

    utf8 = codecs.getincrementaldecoder("utf-8")() if t.type == "String" else None
    left = n
    try:
        while left:
            if s.pos >= len(s.buf):
                s.fill(1)
            k = min(left, len(s.buf) - s.pos)
            chunk = s.buf[s.pos : s.pos + k]
            s.pos += k
            left -= k
            if utf8 is not None:
                utf8.decode(chunk)
            if sink is not None:
                sink(chunk)
        if utf8 is not None:
            utf8.decode(b"", True)
    except UnicodeDecodeError:
        raise _bad("a string is not UTF-8") from None


# ------------------------------------------------------------------ a Struct or Variant, part by part

_SCALARS = ("Null", "Boolean", "Integer", "DateTime", "Float")
_BYTES_ONE_FRAME = "a Blob or String"


def _walkable(t: Any) -> bool:
    """Whether `_Parts` walks a root of type `t`: Structs and Variants of collections, Blobs,
    Strings, scalars and more Structs and Variants. (A collection's elements may be of any type
    the walker knows; a Ref, a recursive or a function type elsewhere is read whole.)"""
    kind = t.type
    if kind in ("Struct", "Variant"):
        return (kind == "Struct" or bool(t.value)) and all(_walkable(f["type"]) for f in t.value)
    if kind in _COLLECTIONS:
        try:
            _element_skipper(t)
        except _Whole:
            return False
        return True
    return kind in _BYTES or kind in _SCALARS


class _Parts:
    """Walks a value whose root is a Struct, a Variant or a scalar, a part at a time: a Struct field
    by field, a Variant's case, each collection a piece at a time (as a root collection), each Blob
    or String a chunk at a time, each scalar checked here.

    The value is one frame. Its canonical encoding is the same walk with every count, length and
    integer written in as few bytes as it can be, each collection in one segment, and the runtime's
    own encoding of elements it checks; `canonical` says whether the bytes are that. With `out`, the
    canonical bytes go there as they are walked: a collection's count comes before its elements,
    so that walk is given the counts a first walk `found`.
    """

    def __init__(self, s: _Value, out: Callable[[bytes], object] | None = None, counts: list[int] | None = None):
        self.s = s
        self.out = out
        self.counts = counts
        self.found: list[int] = []
        """Each collection's element count, in the order of the walk."""
        self.canonical = True

    def value(self, t: Any) -> None:
        s = self.s
        kind = t.type
        if kind == "Struct":
            for field in t.value:
                self.value(field["type"])
        elif kind == "Variant":
            case = self._varint()
            if case >= len(t.value):
                raise _bad("a variant's case is out of range")
            self.value(t.value[case]["type"])
        elif kind in _COLLECTIONS:
            self._collection(t)
        elif kind in _BYTES:
            n = self._varint()
            _bytes_body(s, t, n, self.out)
        elif kind in ("Integer", "DateTime"):
            if self._varint() >= 1 << 64:
                raise _bad("an integer does not fit 64 bits")
        elif kind == "Float":
            self._emit(s.take(8))  # as a run of Floats is: bytes as they are (a NaN's bits too)
        elif kind == "Boolean":
            b = s.byte()
            if b > 1:
                raise _bad("a boolean is neither 0 nor 1")
            self._emit(bytes((b,)))
        elif kind != "Null":
            raise _Whole

    def _emit(self, data: bytes) -> None:
        if self.out is not None:
            self.out(data)

    def _varint(self) -> int:
        n, minimal = self.s.varint_minimal()
        if not minimal:
            self.canonical = False
        self._emit(varint.encode(n))
        return n

    def _collection(self, t: Any) -> None:
        s = self.s
        tag = s.byte()
        if tag == _REF:
            raise _Whole  # the same container as an earlier part's: the runtime reads that
        if tag != _NEW:
            raise _bad(f"unknown container tag {tag}")
        s.defs += 1
        count = None
        if self.counts is not None:
            count = self.counts[len(self.found)]
            self._emit(b"\x00" + (varint.encode(count) if count else b""))
        walk = _Collection(s, t, record=self.out is not None, root=False)
        runtime = None
        for piece in walk.pieces():
            data = piece.data
            if piece.canonical is None or (not piece.canonical and self.out is not None):
                runtime = runtime or _Runtime(t)
                value = runtime.value(piece)  # the runtime checks these elements
                if self.out is not None or (self.canonical and piece.canonical is None):
                    data = runtime.canonical(value, piece.count)
                    if data != piece.data:
                        self.canonical = False
            if self.out is not None:
                self.out(data)
        if not walk.canonical or len(walk.segments) > 1:
            self.canonical = False
        if count is not None and walk.count != count:
            raise FormatError("the value changed while it was read")
        self.found.append(walk.count)
        self._emit(b"\x00")


def _checked_here(t: Any) -> bool:
    """Whether `check` reads a value of type `t` to its end without the runtime (unless the bytes
    need reading whole, `_Whole`): runs of scalars in an Array, a Blob, a String, a scalar, and
    Structs and Variants of those. (A Set's or Dict's order, and other elements, are the runtime's to check.)"""
    kind = t.type
    if kind == "Array":
        return t.value.type in _RUNS
    if kind in ("Struct", "Variant"):
        return (kind == "Struct" or bool(t.value)) and all(_checked_here(f["type"]) for f in t.value)
    return kind in _BYTES or kind in _SCALARS


def _zero(t: Any) -> Any:
    """A value of a type `_walkable` accepts (its canonical header is the same for every value)."""
    from e3 import east

    kind = t.type
    if kind == "Struct":
        return {f["name"]: _zero(f["type"]) for f in t.value}
    if kind == "Variant":
        return east.value_variant(t.value[0]["name"], _zero(t.value[0]["type"]))
    if kind == "DateTime":
        import datetime

        return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return {"Array": [], "Set": set(), "Dict": {}, "Blob": b"", "String": "", "Null": None, "Boolean": False, "Integer": 0, "Float": 0.0}[kind]


def _walk_parts(inp: _Input, t: Any, out: Callable[[bytes], object] | None = None, counts: list[int] | None = None,
                judge: bool = True) -> tuple[_Parts, _Value]:
    """Walk the value that follows the header in `inp`, of type `t` (`_walkable`, not a collection,
    Blob or String), to its end: one frame, and nothing after it (the runtime reads no index here).
    `judge` False: only check it, without asking whether it is canonical."""
    s = _Value(inp, one_frame=f"a {t.type}")
    s.first_frame()
    parts = _Parts(s, out, counts)
    parts.canonical = judge
    parts.value(t)
    if not s.frame_done():
        raise _bad("bytes after the end of the value in its frame")
    if inp.pos < len(inp.buf) or inp.fill(1):  # one byte says it: the rest is not read
        raise _bad("bytes after the end of the value")
    return parts, s


# ------------------------------------------------------------------ the runtime, a piece at a time


class _Runtime:
    """Decoding and encoding pieces of a root collection with the East runtime."""

    def __init__(self, t: Any):
        from e3 import east
        from e3.beast2_type import Sketch

        if isinstance(t, Sketch):
            raise Declined  # a type read without the runtime is for this module's own walkers only
        self.t = t
        self.prefix = canonical_prefix(t)
        self.encode = east.encoder_for(t)
        self.compare = east.compare_for(t.value["key"] if t.type == "Dict" else t.value) if t.type in ("Set", "Dict") else None
        self.last = None

    def blob(self, piece: Piece) -> bytes:
        segment = varint.encode(piece.count) + piece.data
        payload = len(segment) + 2
        return self.prefix + b"\x00" + varint.encode(payload) * 2 + b"\x00" + segment + b"\x00"

    def value(self, piece: Piece) -> Any:
        """The piece decoded; a Set's or Dict's pieces must also ascend one after another."""
        from e3 import east

        _, value = east.decode(self.blob(piece), self.t)
        if self.compare is not None:
            try:  # the keys come out as Python values: a string that is not UTF-8 fails here
                keys = iter(value)
                first = next(keys)
                if self.last is not None and self.compare(self.last, first) >= 0:
                    raise _bad("a set's elements or a dict's keys do not ascend")
                last = first
                for last in keys:
                    pass
            except UnicodeDecodeError:
                raise _bad("a string is not UTF-8") from None
            self.last = last
        return value

    def canonical(self, value: Any, count: int) -> bytes:
        """The canonical bytes of a piece's elements: the runtime's encoding of the piece, unwrapped."""
        data = self.encode(value)
        at = len(self.prefix) + 1
        for _ in range(2):  # the frame's two lengths
            while data[at] >= 0x80:
                at += 1
            at += 1
        return data[at + 1 + len(varint.encode(count)) : -1]


def canonical_prefix(t: Any) -> bytes:
    """The canonical header of a value of type `t` (a collection, or any type `_walkable` accepts):
    magic, version 5, type section, empty source map."""
    from e3.beast2_type import Sketch, canonical_header

    if isinstance(t, Sketch):
        return canonical_header(t)
    from e3 import east

    data = east.encode(_zero(t), t)
    return data[: _header_length(data)]


def _plain(inp: _Input, s: _Value, header: Header) -> bool:
    """Whether the container read so far (to `inp.tell()`) is the canonical header and one codec-0
    frame whose lengths are written in as few bytes as they can be: the form of e3's canonical
    encoding, whether or not the payload is canonical."""
    return (
        s.frames == 1
        and s.codecs == {0}
        and inp.tell() == len(header.raw) + 1 + 2 * len(varint.encode(s.logical)) + s.logical
        and header.raw == canonical_prefix(header.type)
    )


# ------------------------------------------------------------------ the operations


@dataclass
class Checked:
    type: Any
    canonical: bool
    """The bytes are e3's canonical encoding of the value (so storing them as they are is storing it canonically)."""


def _check_type(found: Any, t: Any | None) -> None:
    if t is None:
        return
    from e3 import east

    if not east.type_equal(found, t):
        raise TypeMismatch(f"value has type {east.format_type(found)}, expected {east.format_type(t)}")


def check_file(f: BinaryIO, t: Any | None = None, tee: Callable[[bytes], object] | None = None) -> Any:
    """Check that an open file holds one Beast2 value (of type `t`, if given), giving every byte
    read to `tee`; return its type (a `Sketch` when read without the runtime, see `check`)."""
    if os.fstat(f.fileno()).st_size == 0:
        raise FormatError("not beast2 data (empty)")
    return check(f, t, tee, judge=False).type


def check(source: BinaryIO, t: Any | None = None, tee: Callable[[bytes], object] | None = None, judge: bool = True,
          expect: str | None = None) -> Checked:
    """Read the Beast2 value in `source` to its end and check it (of type `t`, if given).

    Every byte read is also given to `tee` (a writer storing them). `judge` False: do not ask
    whether the bytes are canonical (`canonical` is then False); without a type to match, a
    value `_checked_here` is then checked without loading the runtime, and `type` is a `Sketch`. Memory stays
    bounded for a collection, a Blob or a String at the root, and for a Struct or Variant
    of those (see `_Parts`); other values are decoded whole. `source` must be seekable: a
    value that cannot be walked is read again, whole.

    `expect` (without `t`): the value must have the type that e3.beast2_type.type_text prints
    so, and is checked, canonical judged too, without loading the runtime; `Declined` when that
    cannot be done (another type named, a type or an encoding only the runtime reads), so the
    caller checks again with a runtime type, which also words any refusal.
    """
    inp = _Input(source, tee)
    try:
        header = _read_header(inp, sketch=expect is not None or (t is None and not judge), only_sketch=expect is not None)
        if expect is not None:
            from e3.beast2_type import type_text

            if type_text(header.raw) != expect or header.raw != canonical_prefix(header.type):
                raise Declined  # another type, or not canonical (so written again, by the runtime): before reading on
        _check_type(header.type, t)
        if header.type.type in _BYTES:
            s = _Value(inp, one_frame=_BYTES_ONE_FRAME)
            n = _walk_bytes(s, header.type)
            if inp.rest():
                raise _Whole  # the runtime says what bytes after the value are
            canonical = s.logical == len(varint.encode(n)) + n
            return Checked(header.type, judge and canonical and _plain(inp, s, header))
        if header.type.type not in _COLLECTIONS:
            if not _walkable(header.type):
                raise _Whole
            parts, s = _walk_parts(inp, header.type, judge=judge)
            return Checked(header.type, judge and parts.canonical and _plain(inp, s, header))
        s = _Value(inp)
        walk = _Collection(s, header.type, record=False)
        runtime = None
        for piece in walk.pieces():
            if expect is not None and s.codecs != {0}:
                raise Declined  # deflate: not canonical, so written again by the runtime; no use reading on
            if piece.canonical is None:
                runtime = runtime or _Runtime(header.type)
                value = runtime.value(piece)
                if judge and walk.canonical and runtime.canonical(value, piece.count) != piece.data:
                    walk.canonical = False
        if not s.frame_done():
            raise _bad("bytes after the end of the value in its frame")
        canonical = judge and walk.canonical and len(walk.segments) <= 1 and _plain(inp, s, header)
        if _check_trailer(inp, s, walk):
            canonical = False
        return Checked(header.type, canonical)
    except _Whole:
        if expect is not None:
            raise Declined from None
        return _check_whole(source, inp, t, judge)


def _check_trailer(inp: _Input, s: _Value, walk: "_Collection") -> bool:
    """After the value stream: nothing, or an index of the root's segments and its footer; True if an index.

    The index's flags, its segments' frame offsets (each a frame of the stream) and element counts
    (those the walk found), then the footer: the index's offset and the footer magic.
    """
    at = inp.tell()
    trailer = inp.rest()
    if not trailer:
        return False
    if len(trailer) < 16 or trailer[-8:] != FOOTER_MAGIC or int.from_bytes(trailer[-16:-8], "little") != at:
        raise _bad("bytes after the end of the value")
    index = _Input(io.BytesIO(trailer[:-16]))
    if index.varint() > 1:  # flags: bit 0, self-contained segments, is the only one
        raise _bad("unknown index flags")
    if index.varint() != len(walk.segments):
        raise _bad("the index does not count the value's segments")
    frames = set(s.frame_offsets)
    offset = 0
    for count in walk.segments:
        offset += index.varint()
        if offset not in frames or index.varint() != count:
            raise _bad("the index does not match the value's segments")
    if index.fill(1):
        raise _bad("bytes after the index")
    return True



def _check_whole(source: BinaryIO, inp: _Input, t: Any | None, judge: bool = True) -> Checked:
    from e3 import east

    data = _all_bytes(source, inp)
    found, value = east.decode(data, t)
    return Checked(found, judge and east.encoder_for(found)(value) == data)


def _all_bytes(source: BinaryIO, inp: _Input) -> bytes:
    """The whole source, whatever has been read of it (the rest still goes to `tee`)."""
    source.seek(0)
    data = source.read()
    if inp.tee is not None:
        inp.tee(data[inp.offset + len(inp.buf) :])
    return data


def write_canonical(source: BinaryIO, t: Any, sink: Callable[[bytes], object], spool: Callable[[], BinaryIO]) -> Any:
    """Write the canonical encoding of the Beast2 value in `source` (of type `t`) to `sink`; return its type.

    `source` is seekable and holds a value that `check` found not canonical. The
    elements go, in their canonical encoding, to a scratch file `spool()` gives
    (a first pass counts them), then `sink` gets the header, the frame's
    lengths and the elements. A Blob or String is read twice: a first pass checks
    it to its end, before `sink` gets anything, the second copies its bytes. A Struct
    or Variant is read twice too: a first pass checks it and counts the elements of
    each collection in it (a count comes before its elements), the second writes its
    canonical encoding to the scratch file, then `sink` gets the header, the frame's
    lengths and that. Memory stays bounded for a collection, a Blob or a String at the
    root, and for a Struct or Variant of those.
    """
    from e3 import east

    source.seek(0)
    inp = _Input(source)
    try:
        header = _read_header(inp)
        _check_type(header.type, t)
        if header.type.type in _BYTES:
            _write_bytes_canonical(source, inp, header.type, sink)
            return header.type
        if header.type.type not in _COLLECTIONS:
            if not _walkable(header.type):
                raise _Whole
            _write_parts_canonical(source, inp, header.type, sink, spool)
            return header.type
        s = _Value(inp)
        walk = _Collection(s, header.type, record=True)
        runtime = _Runtime(header.type)
        size = 0
        with spool() as scratch:
            for piece in walk.pieces():
                data = piece.data if piece.canonical else runtime.canonical(runtime.value(piece), piece.count)
                scratch.write(data)
                size += len(data)
            if not s.frame_done():
                raise _bad("bytes after the end of the value in its frame")
            _check_trailer(inp, s, walk)
            count = walk.count
            payload = 1 + (len(varint.encode(count)) + size if count else 0) + 1
            if payload > FRAME_MAX:
                raise FormatError(f"value too large: its canonical encoding would need a frame of {payload} bytes (the runtime reads at most {FRAME_MAX})")
            sink(runtime.prefix + b"\x00" + varint.encode(payload) * 2 + b"\x00" + (varint.encode(count) if count else b""))
            scratch.seek(0)
            while chunk := scratch.read(READ_SIZE):
                sink(chunk)
            sink(b"\x00")
        return header.type
    except _Whole:
        source.seek(0)
        found, value = east.decode(source.read(), t)
        sink(east.encode(value, found))
        return found


def _write_parts_canonical(source: BinaryIO, inp: _Input, t: Any, sink: Callable[[bytes], object], spool: Callable[[], BinaryIO]) -> None:
    """`write_canonical` of a Struct, Variant or scalar: `inp` is past the header of `source`."""
    start = inp.tell()
    first, _ = _walk_parts(inp, t, judge=False)
    source.seek(start)
    with spool() as scratch:
        _walk_parts(_Input(source), t, scratch.write, first.found)
        size = scratch.tell()
        if size > FRAME_MAX:
            raise FormatError(f"value too large: its canonical encoding would need a frame of {size} bytes (the runtime reads at most {FRAME_MAX})")
        sink(canonical_prefix(t) + b"\x00" + varint.encode(size) * 2)
        scratch.seek(0)
        while chunk := scratch.read(READ_SIZE):
            sink(chunk)


def _write_bytes_canonical(source: BinaryIO, inp: _Input, t: Any, sink: Callable[[bytes], object]) -> None:
    """`write_canonical` of a Blob or String: `inp` is past the header of `source`."""
    start = inp.tell()
    n = _walk_bytes(_Value(inp, one_frame=_BYTES_ONE_FRAME), t)
    if inp.rest():
        raise _Whole  # the runtime says what bytes after the value are; nothing is sunk yet
    payload = len(varint.encode(n)) + n
    if payload > FRAME_MAX:
        raise FormatError(f"value too large: its canonical encoding would need a frame of {payload} bytes (the runtime reads at most {FRAME_MAX})")
    sink(canonical_prefix(t) + b"\x00" + varint.encode(payload) * 2 + varint.encode(n))
    source.seek(start)
    _walk_bytes(_Value(_Input(source), one_frame=_BYTES_ONE_FRAME), t, sink)


def print_text(open_source: Callable[[], BinaryIO], fmt: str, out: Callable[[str], object], indent: bool = True) -> None:
    """Write a Beast2 value as `.east` text or JSON to `out`, a piece at a time, followed by a
    newline: the same text the runtime prints for the whole value (JSON indented by two, as
    `json.dumps(indent=2)` lays it out, unless `indent` is False: then the runtime's compact JSON).

    A Struct at the root is printed field by field: its collections (and the collections of
    the Structs in it) a piece at a time, any other field whole, by the runtime.

    `open_source()` opens the value's bytes (an object's verified reader); it is called again
    when the value must be read twice: once to see that no reference reaches from one piece
    into another (only for elements holding containers, and always for a Struct), or whole,
    for a value this module cannot walk (see the module's text).
    """
    from e3 import east

    try:
        with open_source() as source:
            inp = _Input(source)
            t = _read_header(inp).type
            if t.type == "Struct" and _walkable(t):
                _walk_parts(inp, t, judge=False)  # raises _Whole on a shared container
                source = None
            elif t.type not in _COLLECTIONS:
                raise _Whole
            elif _holds_containers(_element_type(t)):
                for _ in _Collection(_Value(inp), t, record=True).pieces():  # raises _Whole on a shared container
                    pass
                source = None
        if source is None:
            with open_source() as again:
                inp = _Input(again)
                _read_header(inp)
                _print_value(inp, t, fmt, out, indent)
        else:
            with open_source() as source:
                inp = _Input(source)
                _read_header(inp)
                _print_value(inp, t, fmt, out, indent)
    except _Whole:
        with open_source() as source:
            found, value = east.decode(source.read())
        out(_whole_text(value, found, fmt, indent) + "\n")


def _print_value(inp: _Input, t: Any, fmt: str, out: Callable[[str], object], indent: bool) -> None:
    """Print the value after the header in `inp`: a collection or (checked already) a Struct."""
    if t.type == "Struct":
        s = _Value(inp, one_frame="a Struct")
        s.first_frame()
        _Printer(s, fmt, out, indent).value(t, 0)
        if not s.frame_done():
            raise _bad("bytes after the end of the value in its frame")
        out("\n")
        return
    s = _Value(inp)
    walk = _Collection(s, t, record=True)
    _print_pieces(walk, t, fmt, out, indent, 0)
    if not s.frame_done():
        raise _bad("bytes after the end of the value in its frame")
    _check_trailer(inp, s, walk)
    out("\n")


def _print_pieces(walk: "_Collection", t: Any, fmt: str, out: Callable[[str], object], indent: bool, depth: int) -> None:
    """Print a collection a piece at a time; `depth`: how many levels of JSON's indentation it is in."""
    from e3 import east

    runtime = _Runtime(t)
    open_, sep, close = _brackets(t, fmt, indent)
    pad = "  " * depth if fmt == "json" and indent else ""
    if pad:
        close = "\n" + pad + close.lstrip("\n")
    first = True
    for piece in walk.pieces():
        value = runtime.value(piece)
        if fmt == "east":
            text = east.to_east(value, t)[1:-1]
        elif indent:
            text = _json_items(east.to_json(value, t), t)
            if pad:
                text = pad + text.replace("\n", "\n" + pad)
        else:
            text = east.to_json(value, t)[1:-1].decode()
        out((open_ if first else sep) + text)
        first = False
    out(_empty(t, fmt) if first else close)


class _Printer:
    """Prints a Struct (checked already) a part at a time, as the runtime prints the whole value:
    its collections a piece at a time, its Structs field by field, any other field whole."""

    def __init__(self, s: _Value, fmt: str, out: Callable[[str], object], indent: bool):
        self.s = s
        self.fmt = fmt
        self.out = out
        self.pretty = fmt == "json" and indent

    def value(self, t: Any, depth: int) -> None:
        if t.type == "Struct":
            self._struct(t, depth)
        elif t.type in _COLLECTIONS:
            s = self.s
            if s.byte() != _NEW:
                raise _Whole  # never: the check before printing found no shared container
            s.defs += 1
            _print_pieces(_Collection(s, t, record=True, root=False), t, self.fmt, self.out, self.pretty, depth)
        else:
            self._whole(t, depth)

    def _struct(self, t: Any, depth: int) -> None:
        if not t.value:
            self.out("()" if self.fmt == "east" else "{}")
            return
        pad = "  " * (depth + 1)
        for i, field in enumerate(t.value):
            name = _field_text(field["name"], self.fmt, self.pretty)
            if self.fmt == "east":
                self.out(("(" if i == 0 else ", ") + name + "=")
            elif self.pretty:
                self.out(("{\n" if i == 0 else ",\n") + pad + name + ": ")
            else:
                self.out(("{" if i == 0 else ",") + name + ":")
            self.value(field["type"], depth + 1)
        self.out(")" if self.fmt == "east" else "\n" + pad[2:] + "}" if self.pretty else "}")

    def _whole(self, t: Any, depth: int) -> None:
        """A field that is neither a collection nor a Struct: its bytes, decoded and printed by the runtime."""
        from e3 import east

        s = self.s
        s.start_piece()
        _skipper(t)(s)
        array = east.ArrayType(t)
        (value,) = _Runtime(array).value(Piece(1, s.end_piece(), None))
        text = _whole_text(value, t, self.fmt, self.pretty)
        self.out(text.replace("\n", "\n" + "  " * depth) if self.pretty else text)


def _field_text(name: str, fmt: str, pretty: bool) -> str:
    """A field's name as the runtime prints it in a Struct (JSON indented: as json.dumps does)."""
    import json

    from e3 import east

    if pretty:
        return json.dumps(name, ensure_ascii=False)
    one = east.StructType([(name, east.NullType)])
    if fmt == "east":
        return east.to_east({name: None}, one)[1 : -len("=null)")]
    return east.to_json({name: None}, one).decode()[1 : -len(":null}")]


def _element_type(t: Any) -> Any:
    return t.value["value"] if t.type == "Dict" else t.value


def _holds_containers(t: Any) -> bool:
    """Whether values of type `t` may hold a container (Array, Set, Dict, Ref), which a reference can share."""
    kind = t.type
    if kind in _COLLECTIONS or kind == "Ref":
        return True
    if kind in ("Struct", "Variant"):
        return any(_holds_containers(f["type"]) for f in t.value)
    return kind not in ("Null", "Boolean", "Integer", "Float", "String", "DateTime", "Blob")


def _brackets(t: Any, fmt: str, indent: bool) -> tuple[str, str, str]:
    if fmt == "json":
        return ("[\n", ",\n", "\n]") if indent else ("[", ",", "]")
    if t.type == "Array":
        return "[", ", ", "]"
    return "{", ",", "}"


def _empty(t: Any, fmt: str) -> str:
    if fmt == "json" or t.type == "Array":
        return "[]"
    return "{:}" if t.type == "Dict" else "{}"


_PLAIN_JSON = ("Float", "Integer", "Boolean", "Null", "DateTime")
"""Element types whose JSON holds no comma but between items (numbers, quoted digits and dates, literals)."""


def _json_items(data: bytes, t: Any) -> str:
    """The items of a piece's JSON array, one per line and indented by two, as json.dumps(indent=2)
    lays out an array (the runtime's own text for numbers, as the original engine's JSON.stringify)."""
    import json

    element = t.value if t.type == "Array" else None
    if element is not None and element.type in _PLAIN_JSON:
        return "  " + data[1:-1].decode().replace(",", ",\n  ")
    items = json.loads(data)
    if element is not None and element.type == "String":
        return ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in items)
    return ",\n".join("  " + json.dumps(item, indent=2, ensure_ascii=False).replace("\n", "\n  ") for item in items)


def _whole_text(value: Any, t: Any, fmt: str, indent: bool = True) -> str:
    import json

    from e3 import east

    if fmt == "east":
        return east.to_east(value, t)
    if not indent:
        return east.to_json(value, t).decode()
    # Pretty, like the original engine's JSON.stringify(value, null, 2).
    return json.dumps(json.loads(east.to_json(value, t)), indent=2, ensure_ascii=False)
