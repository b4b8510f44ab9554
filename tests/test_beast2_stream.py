"""e3.beast2_stream: Beast2 values checked, made canonical and printed a piece at a time.

Each result is held to the East runtime's own decoding and encoding of the whole
value; memory is measured in a child process on values several times the limit,
made on the fly.
"""
from __future__ import annotations

import io
import random
import subprocess
import sys
import textwrap

import pytest

from e3_testing.beast2_values import FORMATS, assert_canonical_passes_through, decoded, printed, runtime_text
from e3_testing.commands import LIB

from east.serialization import beast2 as runtime_beast2

from e3 import beast2_stream, east, varint
from e3.errors import FormatError, TypeMismatch

ROW = east.StructType([("id", east.IntegerType), ("tags", east.ArrayType(east.StringType)), ("score", east.OptionType(east.FloatType))])
SHARED = [1, 2]

VALUES = {
    "empty floats": (east.ArrayType(east.FloatType), []),
    "floats": (east.ArrayType(east.FloatType), [i * 0.5 - 7 for i in range(3000)] + [float("inf"), -0.0]),
    "integers": (east.ArrayType(east.IntegerType), [0, -1, 1, 2**63 - 1, -(2**63)] + [(i * 7919) % 10**12 - i for i in range(3000)]),
    "datetimes": (east.ArrayType(east.DateTimeType), [__import__("datetime").datetime(2026, 1, 1, tzinfo=__import__("datetime").timezone.utc)] * 5),
    "booleans": (east.ArrayType(east.BooleanType), [True, False, False] * 1000),
    "nulls": (east.ArrayType(east.NullType), [None] * 10),
    "strings": (east.ArrayType(east.StringType), ["", "a,b", "é" * 9, '"quoted"'] + [f"s{i}" * (i % 40) for i in range(3000)]),
    "rows": (east.ArrayType(ROW), [{"id": i, "tags": [str(i)] * (i % 3), "score": east.some(i / 3) if i % 2 else east.none} for i in range(2000)]),
    "set": (east.SetType(east.StringType), {f"k{i}" for i in range(3000)}),
    "empty set": (east.SetType(east.IntegerType), set()),
    "dict": (east.DictType(east.StringType, east.ArrayType(east.IntegerType)), {f"k{i}": [i, -i] for i in range(3000)}),
    "empty dict": (east.DictType(east.StringType, east.IntegerType), {}),
    "shared inner arrays": (east.ArrayType(east.ArrayType(east.IntegerType)), [SHARED, SHARED, [3]]),
    "struct root": (ROW, {"id": 1, "tags": ["x"], "score": east.none}),
    "integer root": (east.IntegerType, 42),
    "blob root": (east.BlobType, bytes(range(256)) * 100),
    "empty blob root": (east.BlobType, b""),
    "string root": (east.StringType, "é,\u20ac\U0001f600" * 3000),
}


def frames(t, logical: bytes, cuts: list[int] = []) -> bytes:  # noqa: B006
    """A Blob's or String's logical bytes (length and bytes) in codec-0 frames, cut where `cuts` say."""
    out = beast2_stream.canonical_prefix(t)
    for a, b in zip([0, *cuts], [*cuts, len(logical)]):
        out += b"\x00" + varint.encode(b - a) * 2 + logical[a:b]
    return out


def logical(value) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return varint.encode(len(data)) + data


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch):
    """Pieces of 4 KiB: every value above crosses many piece boundaries (the real size is 1 MiB)."""
    monkeypatch.setattr(beast2_stream, "PIECE", 1 << 12)


@pytest.mark.parametrize("name", list(VALUES))
def test_canonical_bytes_pass_through_unchanged_and_are_recognised(name):
    t, value = VALUES[name]
    assert_canonical_passes_through(east.encode(value, t), t)


@pytest.mark.parametrize("name", [n for n, (t, _) in VALUES.items() if t.type in ("Array", "Set", "Dict")])
@pytest.mark.parametrize("codec", ["none", "deflate"])
def test_other_encodings_of_a_collection_are_rewritten_canonically(name, codec):
    t, value = VALUES[name]
    paged = runtime_beast2.encode_beast2_paged_for(t, codec=codec)(value)  # segments, an index: what east-py run writes
    assert beast2_stream.check(io.BytesIO(paged), t).canonical is (paged == east.encode(decoded(paged, t), t))
    out = bytearray()
    found = beast2_stream.write_canonical(io.BytesIO(paged), t, out.extend, io.BytesIO)
    assert east.type_equal(found, t)
    assert bytes(out) == east.encode(decoded(paged, t), t)


@pytest.mark.parametrize("name", ["blob root", "string root"])
@pytest.mark.parametrize("how", ["deflate", "long length"])
def test_other_encodings_of_a_blob_or_string_are_rewritten_canonically(name, how):
    t, value = VALUES[name]
    canonical = east.encode(value, t)
    if how == "deflate":
        other = runtime_beast2.encode_beast2_v5_for(t, codec="deflate")(value)
    else:  # the length as a varint one byte longer than it needs
        short = logical(value)
        size = len(varint.encode(len(short) - len(varint.encode(len(short)))))
        other = frames(t, bytes([b | 0x80 for b in short[:size]]) + b"\x00" + short[size:])
    assert other != canonical and decoded(other, t) == value  # the runtime reads it as the same value
    seen = bytearray()
    checked = beast2_stream.check(io.BytesIO(other), t, tee=seen.extend)
    assert bytes(seen) == other and not checked.canonical
    out = bytearray()
    assert east.type_equal(beast2_stream.write_canonical(io.BytesIO(other), t, out.extend, io.BytesIO), t)
    assert bytes(out) == canonical


@pytest.mark.parametrize("name", ["integers", "strings", "blob root"])
@pytest.mark.parametrize("where", ["codec", "frame lengths", "count"])
def test_a_length_written_longer_than_it_needs_is_not_canonical(name, where):
    """The runtime reads a varint written in more bytes than it needs: the value is the same, the bytes are not canonical."""
    t, value = VALUES[name]
    canonical = east.encode(value, t)
    prefix = beast2_stream.canonical_prefix(t)
    (size,) = [n for k in range(1, 6) if len(varint.encode(n := len(canonical) - len(prefix) - 1 - 2 * k)) == k]
    payload = canonical[-size:]
    assert canonical == prefix + b"\x00" + varint.encode(size) * 2 + payload

    def long(n: int) -> bytes:
        data = varint.encode(n)
        return data[:-1] + bytes([data[-1] | 0x80, 0])

    size = varint.encode(len(payload))
    if where == "codec":
        other = prefix + long(0) + size * 2 + payload
    elif where == "frame lengths":
        other = prefix + b"\x00" + long(len(payload)) * 2 + payload
    else:  # a collection's count, or a Blob's length
        at = 1 if t.type == "Array" else 0
        n = varint.encode(len(value))
        assert payload[at : at + len(n)] == n
        payload = payload[:at] + long(len(value)) + payload[at + len(n) :]
        other = prefix + b"\x00" + varint.encode(len(payload)) * 2 + payload
    assert decoded(other, t) == value  # the runtime reads it as the same value
    assert not beast2_stream.check(io.BytesIO(other), t).canonical
    out = bytearray()
    beast2_stream.write_canonical(io.BytesIO(other), t, out.extend, io.BytesIO)
    assert bytes(out) == canonical


@pytest.mark.parametrize("name", ["blob root", "string root"])
def test_a_blob_or_string_in_several_frames_is_refused_as_the_runtime_refuses_it(name):
    t, value = VALUES[name]
    data = frames(t, logical(value), [1, 1001])
    with pytest.raises(FormatError, match="one frame"):
        beast2_stream.check(io.BytesIO(data), t)
    with pytest.raises(ValueError):
        decoded(data, t)


@pytest.mark.parametrize("name", ["blob root", "string root"])
def test_a_blob_or_string_cut_or_flipped_is_refused_unless_the_runtime_reads_it(name):
    t, value = VALUES[name]
    value = value[:40]
    rng = random.Random(name)
    for data in (east.encode(value, t), runtime_beast2.encode_beast2_v5_for(t, codec="deflate")(value)):
        tries = [data[:n] for n in range(len(data))] + [data + b"\x00"]
        for _ in range(300):
            flipped = bytearray(data)
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            tries.append(bytes(flipped))
        refused = 0
        for attempt in tries:
            try:
                checked = beast2_stream.check(io.BytesIO(attempt), t)
            except (FormatError, TypeMismatch):
                refused += 1
                continue
            with east.quiet_runtime():
                again = decoded(attempt, t)  # accepted: the runtime reads it too
            assert checked.canonical is (east.encode(again, t) == attempt)
        assert refused >= len(data)  # every cut at least


def test_a_string_that_is_not_utf8_is_refused():
    t = east.StringType
    good = "é" * 10
    data = logical(good)
    for bad in (data[:-1] + b"\xff", data[:-1] + b"\xc3", data[:5] + b"\xed\xa0\x80" + data[8:]):  # the last a surrogate
        with pytest.raises(FormatError, match="not UTF-8"):
            beast2_stream.check(io.BytesIO(frames(t, bad)), t)
    assert beast2_stream.check(io.BytesIO(frames(t, data)), t).canonical


def test_a_value_of_another_type_is_refused():
    data = east.encode([1.0], east.ArrayType(east.FloatType))
    with pytest.raises(TypeMismatch, match="Array<Float>"):
        beast2_stream.check(io.BytesIO(data), east.ArrayType(east.IntegerType))


@pytest.mark.parametrize("name", ["floats", "integers", "rows", "set", "dict"])
def test_every_truncation_is_refused_unless_it_cuts_only_the_index(name):
    t, value = VALUES[name]
    value = value[:40] if isinstance(value, list) else type(value)(list(value.items())[:40] if isinstance(value, dict) else sorted(value)[:40])
    for data in (east.encode(value, t), runtime_beast2.encode_beast2_paged_for(t)(value)):
        for n in range(len(data)):
            try:
                beast2_stream.check(io.BytesIO(data[:n]), t)
            except FormatError:
                continue
            decoded(data[:n], t)  # accepted: the runtime reads it too (the cut fell at the index)


@pytest.mark.parametrize("name", ["floats", "integers", "booleans", "strings", "rows", "set", "dict"])
def test_a_flipped_bit_is_accepted_only_where_the_runtime_reads_the_value(name):
    t, value = VALUES[name]
    value = value[:30] if isinstance(value, list) else type(value)(list(value.items())[:30] if isinstance(value, dict) else sorted(value)[:30])
    rng = random.Random(name)
    for data in (east.encode(value, t), runtime_beast2.encode_beast2_paged_for(t)(value)):
        for _ in range(150):
            flipped = bytearray(data)
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            try:
                beast2_stream.check(io.BytesIO(bytes(flipped)), t)
            except (FormatError, TypeMismatch):
                continue
            with east.quiet_runtime():
                decoded(bytes(flipped), t)


@pytest.mark.parametrize("name", list(VALUES))
@pytest.mark.parametrize("fmt", FORMATS)
def test_text_is_the_runtimes_text_of_the_whole_value(name, fmt):
    t, value = VALUES[name]
    data = east.encode(value, t)
    text, want = "".join(printed(data, fmt)), runtime_text(data, t, fmt)
    if fmt == "json":
        import json

        assert json.loads(text) == json.loads(want)
    else:
        assert text == want


def test_a_container_shared_across_pieces_is_read_whole(monkeypatch):
    """Elements sharing an inner array (a reference into an earlier piece): checked, re-encoded and printed whole."""
    monkeypatch.setattr(beast2_stream, "PIECE", 1)  # every element a piece of its own
    t, value = VALUES["shared inner arrays"]
    data = east.encode(value, t)
    assert b"\x01\x01" in data  # the second element refers to the first's array
    assert beast2_stream.check(io.BytesIO(data), t).canonical
    parts: list[str] = []
    beast2_stream.print_text(lambda: io.BytesIO(data), "east", parts.append)
    assert "".join(parts) == east.to_east(decoded(data, t), t) + "\n"


def test_json_of_a_collection_is_indented_like_json_dumps():
    parts: list[str] = []
    t = east.ArrayType(east.StructType([("a", east.IntegerType)]))
    data = east.encode([{"a": 1}, {"a": 2}], t)
    beast2_stream.print_text(lambda: io.BytesIO(data), "json", parts.append)
    assert "".join(parts) == '[\n  {\n    "a": "1"\n  },\n  {\n    "a": "2"\n  }\n]\n'


# A child process reads a value several times the memory limit, made on the fly: its peak
# resident memory, the runtime's own ~30 MB included, stays under the limit.
FLAT = textwrap.dedent(
    r"""
    import sys, io
    sys.path.insert(0, sys.argv[1])
    def peak_mb():  # this process's own peak (ru_maxrss would count the parent's, carried over fork and exec)
        return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) // 1024
    from e3 import beast2_stream, east
    from e3.varint import encode as varint

    MB = int(sys.argv[3])
    T = east.ArrayType(east.FloatType)
    header = beast2_stream.canonical_prefix(T)
    chunk = bytes(range(256)) * 4096          # 1 MiB: 131,072 doubles
    per = len(chunk) // 8

    class Source(io.RawIOBase):
        # the value's bytes, made as they are read
        def __init__(self, parts):
            self.parts = iter(parts); self.left = b""
        def readable(self): return True
        def readinto(self, b):
            while not self.left:
                self.left = next(self.parts, None)
                if self.left is None: return 0
            n = min(len(b), len(self.left)); b[:n] = self.left[:n]; self.left = self.left[n:]; return n
        def seekable(self): return False

    def canonical():                           # one frame, one segment
        count = per * MB
        payload = 1 + len(varint(count)) + 8 * count + 1
        yield header + b"\x00" + varint(payload) * 2 + b"\x00" + varint(count)
        for _ in range(MB): yield chunk
        yield b"\x00"

    def segmented():                           # a frame per segment of one chunk, as a paged writer cuts
        yield header + b"\x00\x01\x01\x00"
        seg = varint(per) + chunk
        for _ in range(MB): yield b"\x00" + varint(len(seg)) * 2 + seg
        yield b"\x00\x01\x01\x00"

    def blob(canonical):                       # a Blob of MB MiB; not canonical: its length one byte too long
        n = MB * len(chunk)
        length = varint(n) if canonical else bytes(b | 0x80 for b in varint(n)) + b"\x00"
        yield beast2_stream.canonical_prefix(east.BlobType) + b"\x00" + varint(len(length) + n) * 2 + length
        for _ in range(MB): yield chunk

    what = sys.argv[2]
    if what == "check blob":
        assert beast2_stream.check(io.BufferedReader(Source(blob(True))), east.BlobType, tee=lambda b: None).canonical
    elif what == "canonical blob":
        import tempfile
        src = io.BufferedReader(Source(blob(False)))
        spool = tempfile.TemporaryFile()
        while b := src.read(1 << 20): spool.write(b)
        spool.seek(0)
        assert not beast2_stream.check(spool, east.BlobType).canonical
        spool.seek(0)
        got = 0
        def count(b):
            global got
            got += len(b)
        beast2_stream.write_canonical(spool, east.BlobType, count, tempfile.TemporaryFile)
        n = MB * len(chunk)
        assert got == len(head := beast2_stream.canonical_prefix(east.BlobType)) + 1 + 2 * len(varint(n + len(varint(n)))) + len(varint(n)) + n
    elif what == "check":
        assert beast2_stream.check(io.BufferedReader(Source(canonical())), T, tee=lambda b: None).canonical
    elif what == "canonical":
        import tempfile
        class Seekable(io.BytesIO): pass
        src = io.BufferedReader(Source(segmented()))
        spool = tempfile.TemporaryFile()
        while b := src.read(1 << 20): spool.write(b)
        spool.seek(0)
        beast2_stream.write_canonical(spool, T, lambda b: None, tempfile.TemporaryFile)
    print(peak_mb())
    """
)


@pytest.mark.parametrize("what", ["check", "canonical", "check blob", "canonical blob"])
def test_memory_stays_flat_on_a_value_several_times_the_limit(what):
    mb = 256 if what.startswith("check") else 160
    out = subprocess.run([sys.executable, "-c", FLAT, str(LIB), what, str(mb)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 64, f"{what} of a {mb} MB value peaked at {out.stdout.strip()} MB"


def test_text_memory_stays_flat_on_a_value_several_times_the_limit():
    """Each piece is decoded, printed and dropped: 200 strings of 1 MiB, printed as .east text."""
    script = textwrap.dedent(
        r"""
        import sys, io, tempfile
        sys.path.insert(0, sys.argv[1])
        def peak_mb():
            return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) // 1024
        from e3 import beast2_stream, east, varint
        T = east.ArrayType(east.StringType)
        f = tempfile.TemporaryFile()
        element = varint.encode(1 << 20) + b"x" * (1 << 20)
        count = 200
        payload = 1 + len(varint.encode(count)) + len(element) * count + 1
        f.write(beast2_stream.canonical_prefix(T) + b"\x00" + varint.encode(payload) * 2 + b"\x00" + varint.encode(count))
        for _ in range(count): f.write(element)
        f.write(b"\x00"); f.seek(0)
        n = 0
        def out(text):
            global n
            n += len(text)
        def reopen():
            f.seek(0)
            return open(f.fileno(), "rb", closefd=False)
        beast2_stream.print_text(reopen, "east", out)
        assert n > count * (1 << 20), n
        print(peak_mb())
        """
    )
    out = subprocess.run([sys.executable, "-c", script, str(LIB)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 64, f"printing a 200 MB value peaked at {out.stdout.strip()} MB"


def _shape(t):
    """A type's kinds and names, nested: what the walkers read of the runtime's types and of a Sketch."""
    if t.type in ("Struct", "Variant"):
        return (t.type, tuple((f["name"], _shape(f["type"])) for f in t.value))
    if t.type == "Dict":
        return ("Dict", _shape(t.value["key"]), _shape(t.value["value"]))
    if t.type in ("Array", "Set", "Ref"):
        return (t.type, _shape(t.value))
    return t.type


@pytest.mark.parametrize(
    "spec",
    ["Array<Float>", "Array<Integer>", "Blob", "String", "Integer", "Struct{a: Array<Float>, `b c`: Blob, d: Option<Integer>}",
     "Dict<String, Array<Set<Integer>>>", "Variant{x: Null, y: Struct{z: DateTime}}"],
)
def test_a_type_read_from_a_header_without_the_runtime_has_the_runtimes_shape(spec):
    from e3.beast2_type import walk_type

    t = east.parse_type(spec)
    header = beast2_stream.canonical_prefix(t)
    assert _shape(walk_type(header)) == _shape(east.read_type(header))
