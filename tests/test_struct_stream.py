"""A Struct at the root (a table held as columns), a Variant or a scalar: checked, made canonical
and printed a part at a time, never decoded whole.

The library is held to the East runtime's own decoding and encoding of the whole value, on the
canonical bytes and on other encodings of the same value written here (collections in several
segments, counts and lengths one byte longer than they need, deflate); the commands are held to
the memory limit on a 96 MB struct-of-arrays table made on the fly, and to the bytes that went in.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import io
import random
import struct
import subprocess
import sys
import zlib

import pytest

from east.serialization import beast2 as runtime_beast2

from e3_testing.beast2_values import FORMATS, assert_canonical_passes_through, decoded, printed, runtime_text
from e3_testing.commands import assert_one_line_error, command_env, run, workspace_imported
from test_big_values import LIMIT_MB, PEAK, peak, text_to_file

from e3 import beast2_stream, east, sdk
from e3.varint import encode as varint
from e3.errors import FormatError, TypeMismatch

INTEGERS = east.ArrayType(east.IntegerType)
FLOATS = east.ArrayType(east.FloatType)
TABLE = east.StructType([("id", INTEGERS), ("price", FLOATS), ("qty", INTEGERS)])
ROW = east.StructType([("id", east.IntegerType), ("tags", east.ArrayType(east.StringType)), ("score", east.OptionType(east.FloatType))])
MIXED = east.StructType([
    ("name", east.StringType),
    ("rows", east.ArrayType(ROW)),
    ("tags", east.SetType(east.StringType)),
    ("index", east.DictType(east.StringType, INTEGERS)),
    ("data", east.BlobType),
    ("when", east.DateTimeType),
    ("ok", east.BooleanType),
    ("nothing", east.NullType),
    ("maybe", east.OptionType(FLOATS)),
    ("inner", east.StructType([("xs", FLOATS), ("n", east.IntegerType)])),
])
SHAPE = east.VariantType([("columns", TABLE), ("empty", east.NullType)])
WHEN = datetime.datetime(2026, 12, 7, 9, 30, tzinfo=datetime.timezone.utc)


def table(rows: int) -> dict:
    return {"id": [i * 7919 - 10**6 for i in range(rows)], "price": [i * 0.25 for i in range(rows)], "qty": [i % 50 for i in range(rows)]}


VALUES = {
    "table": (TABLE, table(3000)),
    "empty table": (TABLE, table(0)),
    "mixed": (MIXED, {
        "name": "é,\u20ac" * 500,
        "rows": [{"id": i, "tags": [str(i)] * (i % 3), "score": east.some(i / 3) if i % 2 else east.none} for i in range(1500)],
        "tags": {f"t{i}" for i in range(2000)},
        "index": {f"k{i}": [i, -i] for i in range(1000)},
        "data": bytes(range(256)) * 40,
        "when": WHEN,
        "ok": True,
        "nothing": None,
        "maybe": east.some([0.5] * 700),
        "inner": {"xs": [-1.5, 2.0], "n": 2**63 - 1},
    }),
    "variant root": (SHAPE, east.value_variant("columns", table(2000))),
    "option root": (east.OptionType(INTEGERS), east.some(list(range(-2000, 2000)))),
    "empty struct": (east.StructType([]), {}),
    "null root": (east.NullType, None),
    "integer root": (east.IntegerType, -(2**63)),
    "float root": (east.FloatType, -0.0),
    "boolean root": (east.BooleanType, True),
    "datetime root": (east.DateTimeType, WHEN),
}


def logical(t, v, segment: int | None = None, long: bool = False) -> bytes:
    """The logical bytes of `v`, written here: each collection in segments of `segment` elements
    (else one), every count, length, tag and integer one byte longer than it needs when `long`."""

    def uint(n: int) -> bytes:
        data = varint(n)
        return data[:-1] + bytes([data[-1] | 0x80, 0]) if long and len(data) < 10 else data  # 10 bytes at most

    def zigzag(n: int) -> bytes:
        return uint((n << 1) ^ (n >> 63))

    def one(t, v) -> bytes:
        kind = t.type
        if kind == "Struct":
            return b"".join(one(f["type"], v[f["name"]]) for f in t.value)
        if kind == "Variant":
            (i, case), = [(i, c) for i, c in enumerate(t.value) if c["name"] == v.type]
            return uint(i) + one(case["type"], v.value)
        if kind in ("Array", "Set", "Dict"):
            if kind == "Array":
                items = [one(t.value, x) for x in v]
            elif kind == "Set":
                items = [one(t.value, x) for x in sorted(v, key=functools.cmp_to_key(east.compare_for(t.value)))]
            else:
                keys = sorted(v, key=functools.cmp_to_key(east.compare_for(t.value["key"])))
                items = [one(t.value["key"], k) + one(t.value["value"], v[k]) for k in keys]
            step = segment or max(len(items), 1)
            return b"\x00" + b"".join(uint(len(items[a : a + step])) + b"".join(items[a : a + step]) for a in range(0, len(items), step)) + uint(0)
        if kind in ("String", "Blob"):
            data = v.encode() if kind == "String" else v
            return uint(len(data)) + data
        if kind == "Integer":
            return zigzag(v)
        if kind == "DateTime":
            return zigzag(int(v.timestamp() * 1000))
        if kind == "Float":
            return struct.pack("<d", v)
        if kind == "Boolean":
            return bytes([v])
        assert kind == "Null"
        return b""

    return one(t, v)


def container(t, payload: bytes, long: bool = False, deflate: bool = False, cuts: list[int] = []) -> bytes:  # noqa: B006
    """A version 5 container of `payload`: one frame (codec 0, or deflate), or frames cut at `cuts`."""
    out = beast2_stream.canonical_prefix(t)
    for a, b in zip([0, *cuts], [*cuts, len(payload)]):
        part = payload[a:b]
        if deflate:
            z = zlib.compressobj(6, zlib.DEFLATED, -15)
            packed = z.compress(part) + z.flush()
            out += b"\x01" + varint(len(part)) + varint(len(packed)) + packed
        else:
            size = varint(len(part))
            size = size[:-1] + bytes([size[-1] | 0x80, 0]) if long else size
            out += b"\x00" + size * 2 + part
    return out


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch):
    """Pieces of 4 KiB: every collection above crosses many piece boundaries (the real size is 1 MiB)."""
    monkeypatch.setattr(beast2_stream, "PIECE", 1 << 12)


def test_the_logical_bytes_written_here_are_the_runtimes():
    for t, v in VALUES.values():
        assert container(t, logical(t, v)) == east.encode(v, t)


@pytest.mark.parametrize("name", list(VALUES))
def test_canonical_bytes_pass_through_unchanged_and_are_recognised(name):
    t, value = VALUES[name]
    assert_canonical_passes_through(east.encode(value, t), t)


def other_encodings(t, value) -> dict[str, bytes]:
    return {
        "segments": container(t, logical(t, value, segment=7)),
        "long varints": container(t, logical(t, value, long=True), long=True),
        "long frame lengths": container(t, logical(t, value), long=True),
        "deflate": container(t, logical(t, value), deflate=True),
        "runtime's deflate": runtime_beast2.encode_beast2_v5_for(t, codec="deflate")(value),
    }


@pytest.mark.parametrize("name", list(VALUES))
def test_other_encodings_are_recognised_and_rewritten_canonically(name):
    t, value = VALUES[name]
    canonical = east.encode(value, t)
    for how, other in other_encodings(t, value).items():
        assert decoded(other, t) == decoded(canonical, t), how  # the runtime reads it as the same value
        seen = bytearray()
        checked = beast2_stream.check(io.BytesIO(other), t, tee=seen.extend)
        assert bytes(seen) == other
        assert checked.canonical is (other == canonical), how
        out = bytearray()
        assert east.type_equal(beast2_stream.write_canonical(io.BytesIO(other), t, out.extend, io.BytesIO), t)
        assert bytes(out) == canonical, how


@pytest.mark.parametrize("name", ["table", "mixed", "variant root", "integer root"])
def test_a_value_in_several_frames_is_refused_as_the_runtime_refuses_it(name):
    t, value = VALUES[name]
    payload = logical(t, value)
    for cuts in ([1], [len(payload) // 2], [3, len(payload) - 1]):
        data = container(t, payload, cuts=[c for c in cuts if 0 < c < len(payload)])
        with pytest.raises(FormatError, match="must be one frame"):
            beast2_stream.check(io.BytesIO(data), t)
        with pytest.raises(ValueError):
            decoded(data, t)


@pytest.mark.parametrize("tail", [b"\x00", b"\x00\x00\x00", b"\x00\x01\x01\x00", b"\x00" * 8 + beast2_stream.FOOTER_MAGIC])
def test_bytes_after_a_struct_are_refused_as_the_runtime_refuses_them(tail):
    t, value = VALUES["table"]
    data = east.encode(value, t) + tail
    with pytest.raises(FormatError, match="bytes after the end of the value"):
        beast2_stream.check(io.BytesIO(data), t)
    with pytest.raises(ValueError):
        decoded(data, t)


def small(name):
    t, value = VALUES[name]
    if name == "table":
        return t, table(12)
    if name == "variant root":
        return t, east.value_variant("columns", table(12))
    if name == "mixed":
        return t, {**value, "name": "é€", "rows": value["rows"][:3], "tags": {"a", "b"}, "index": {"k": [1]}, "data": b"\x00\xff", "maybe": east.some([0.5])}
    return t, value


@pytest.mark.parametrize("name", ["table", "mixed", "variant root", "integer root", "null root"])
def test_every_truncation_is_refused(name):
    t, value = small(name)
    for data in (east.encode(value, t), container(t, logical(t, value), deflate=True)):
        for n in range(len(data)):
            with pytest.raises(FormatError):
                beast2_stream.check(io.BytesIO(data[:n]), t)


@pytest.mark.parametrize("name", ["table", "mixed", "variant root"])
def test_a_flipped_bit_is_accepted_only_where_the_runtime_reads_the_value(name):
    t, value = small(name)
    rng = random.Random(name)
    for data in (east.encode(value, t), container(t, logical(t, value, segment=2))):
        accepted = 0
        for _ in range(300):
            flipped = bytearray(data)
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            try:
                checked = beast2_stream.check(io.BytesIO(bytes(flipped)), t)
            except (FormatError, TypeMismatch):
                continue
            with east.quiet_runtime():
                again = decoded(bytes(flipped), t)  # accepted: the runtime reads it too
            try:
                nan = has_nan(again)
            except UnicodeDecodeError:  # a string in an element: the runtime decodes it only when it is read
                nan = False
            if not nan:  # a NaN's bits are kept as they came, as in a root Array<Float>
                assert checked.canonical is (east.encode(again, t) == bytes(flipped))
            accepted += 1
        assert accepted < 300


def has_nan(v) -> bool:
    """Whether a decoded value holds a NaN (in its Structs, Variants and collections)."""
    if isinstance(v, float):
        return v != v
    if isinstance(v, (str, bytes)):
        return False
    if hasattr(v, "values"):
        return any(has_nan(x) for x in v.values())
    if hasattr(v, "__iter__"):
        return any(has_nan(x) for x in v)
    return hasattr(v, "type") and has_nan(v.value)


def test_a_struct_whose_fields_are_one_collection_is_read_whole():
    """Two fields holding the same array: the second is a reference to the first, read by the runtime."""
    t = east.StructType([("a", INTEGERS), ("b", INTEGERS)])
    xs = list(range(5000))
    data = east.encode({"a": xs, "b": xs}, t)
    assert data.endswith(b"\x01\x01")  # b refers to a's array
    assert beast2_stream.check(io.BytesIO(data), t).canonical
    other = container(t, data[len(beast2_stream.canonical_prefix(t)) + 5 :], deflate=True)
    assert decoded(other, t) == {"a": xs, "b": xs}
    assert not beast2_stream.check(io.BytesIO(other), t).canonical
    out = bytearray()
    beast2_stream.write_canonical(io.BytesIO(other), t, out.extend, io.BytesIO)
    assert bytes(out) == data
    parts: list[str] = []
    beast2_stream.print_text(lambda: io.BytesIO(data), "east", parts.append)
    assert "".join(parts) == east.to_east(decoded(data, t), t) + "\n"


def test_a_struct_of_another_type_is_refused_naming_both_types():
    t, value = VALUES["table"]
    other = east.StructType([("id", INTEGERS), ("price", INTEGERS), ("qty", INTEGERS)])
    with pytest.raises(TypeMismatch, match=r"Struct\{id: Array<Integer>, price: Array<Float>.*expected Struct\{id: Array<Integer>, price: Array<Integer>"):
        beast2_stream.check(io.BytesIO(east.encode(value, t)), other)


@pytest.mark.parametrize("name", list(VALUES) + ["shared"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_text_is_the_runtimes_text_of_the_whole_value(name, fmt):
    if name == "shared":
        t = east.StructType([("a", INTEGERS), ("b", east.StructType([("c", INTEGERS)]))])
        xs = [1, 2]
        value = {"a": xs, "b": {"c": xs}}
    else:
        t, value = VALUES[name]
    data = east.encode(value, t)
    parts = printed(data, fmt)
    assert "".join(parts) == runtime_text(data, t, fmt)
    if name in ("table", "mixed") and fmt != "compact json":
        assert len(parts) > 20  # written a piece at a time


def test_field_names_are_printed_as_the_runtime_prints_them():
    t = east.StructType([("a b", INTEGERS), ('é"x', east.IntegerType), ("`", east.StructType([]))])
    value = {"a b": [1], 'é"x': 2, "`": {}}
    data = east.encode(value, t)
    for fmt, want in (("east", east.to_east(value, t)), ("json", east.to_json(value, t).decode())):
        parts: list[str] = []
        beast2_stream.print_text(lambda: io.BytesIO(data), fmt, parts.append, indent=False)
        assert "".join(parts) == want + "\n"


# ------------------------------------------------------------------ the commands, on a 96 MB table

MB = 96
"""1.5 times LIMIT_MB, as in test_big_values: enough that a command holding the table, or its largest
column (the Floats, two thirds of it), goes over the limit, with the interpreter on top (it was 160)."""
BLOCK = 1 << 16
"""Rows per block of the table made on the fly: each column's block is made once and repeated."""
ID_BLOCK = b"".join(varint(2 * i) for i in range(BLOCK))  # zigzag of 0, 1, 2...
PRICE_BLOCK = struct.pack(f"<{BLOCK}d", *(i * 0.25 for i in range(BLOCK)))
QTY_BLOCK = b"".join(varint(2 * (i % 50)) for i in range(BLOCK))
BLOCKS = MB * (1 << 20) // (len(ID_BLOCK) + len(PRICE_BLOCK) + len(QTY_BLOCK)) + 1


def table_pieces(blocks: int = BLOCKS, segmented: bool = False, cut: int = 0):
    """The Beast2 of a TABLE of `blocks` * 65,536 rows, a piece at a time: canonical, or each column
    in a segment per block (another encoding of the same value); without its last `cut` bytes."""
    rows = blocks * BLOCK
    columns = (ID_BLOCK, PRICE_BLOCK, QTY_BLOCK)
    if segmented:
        head, each, tail = b"\x00", varint(BLOCK), b"\x00"
        payload = sum(len(tail) + len(head) + blocks * (len(each) + len(c)) for c in columns)
    else:
        head, each, tail = b"\x00" + varint(rows), b"", b"\x00"
        payload = sum(len(head) + blocks * len(c) + len(tail) for c in columns)
    total = len(beast2_stream.canonical_prefix(TABLE)) + 1 + 2 * len(varint(payload)) + payload
    left = total - cut

    def pieces():
        yield beast2_stream.canonical_prefix(TABLE) + b"\x00" + varint(payload) * 2
        for column in columns:
            yield head
            for _ in range(blocks):
                yield each + column
            yield tail

    for piece in pieces():
        piece = piece[:left]
        left -= len(piece)
        if piece:
            yield piece


def write_table(path, **kw) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for piece in table_pieces(**kw):
            h.update(piece)
            f.write(piece)
    return h.hexdigest()


def test_the_table_made_on_the_fly_is_the_runtimes_encoding():
    rows = 2 * BLOCK
    value = {"id": list(range(BLOCK)) * 2, "price": [i * 0.25 for i in range(BLOCK)] * 2, "qty": [i % 50 for i in range(BLOCK)] * 2}
    canonical = b"".join(table_pieces(2))
    assert canonical == east.encode(value, TABLE)
    segmented = b"".join(table_pieces(2, segmented=True))
    assert decoded(segmented, TABLE) == value and len(value["id"]) == rows


def workspace(tmp_path, t=TABLE):
    zip_path = tmp_path / "t.zip"
    sdk.export(sdk.package("t", "1.0.0", sdk.input("t", t)), zip_path)
    return workspace_imported(tmp_path / "repo", zip_path)


def stored(repo) -> list:
    return sorted((repo / ".e3" / "objects").glob("??/*.beast2"))


# The tests of the one large value share it on one xdist worker: made on both, it was made twice.
BIG = pytest.mark.xdist_group("big-table")


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A repository whose dev.inputs.t holds the 96 MB table, set from a pipe; and the table's file."""
    d = tmp_path_factory.mktemp("table")
    value = d / "t.beast2"
    sha = write_table(value)
    repo = workspace(d)
    setter = subprocess.Popen([sys.executable, "-c", PEAK, "e3", "set", str(repo), "dev.inputs.t", "-", "--format", "beast2"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
    for piece in table_pieces():  # made as it is sent: the value never exists whole in any process
        setter.stdin.write(piece)
    setter.stdin.close()
    err = setter.stderr.read().decode()
    assert setter.wait(timeout=300) == 0, err
    assert "Traceback" not in err, err
    pipe_peak = int(err.rstrip().rpartition("peak-kb ")[2]) // 1024
    return {"repo": repo, "value": value, "sha": sha, "dir": d, "pipe_peak": pipe_peak}


@BIG
def test_set_of_a_large_table_from_a_pipe_streams_it_in(big):
    assert big["value"].stat().st_size >= MB << 20
    assert big["pipe_peak"] < LIMIT_MB, f"e3 set of a {MB} MB table from a pipe peaked at {big['pipe_peak']} MB"
    assert run("e3-rev-parse", "--repo", big["repo"], "dev.inputs.t").out.strip() == big["sha"]


@BIG
def test_set_of_a_large_table_from_a_file_streams_it_in(big, tmp_path):
    repo = workspace(tmp_path)
    mb, _ = peak("e3", "set", repo, "dev.inputs.t", big["value"])
    assert mb < LIMIT_MB, f"e3 set of a {MB} MB table from a file peaked at {mb} MB"
    assert run("e3-rev-parse", "--repo", repo, "dev.inputs.t").out.strip() == big["sha"]


@BIG
def test_hash_object_checks_and_stores_a_large_table(big, tmp_path):
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    mb, _ = peak("e3-hash-object", "-w", "--repo", repo, "-t", east.format_type(TABLE), big["value"])
    assert mb < LIMIT_MB, f"e3-hash-object -w of a {MB} MB table peaked at {mb} MB"
    assert run("e3-cat-object", "--repo", repo, "-s", big["sha"]).out.strip() == str(big["value"].stat().st_size)


@BIG
def test_get_gives_the_large_table_back_byte_for_byte(big, tmp_path):
    out = tmp_path / "out.beast2"
    with open(out, "wb") as f:
        mb, _ = peak("e3", "get", big["repo"], "dev.inputs.t", "-f", "beast2", stdout=f)
    assert mb < LIMIT_MB, f"e3 get of a {MB} MB table peaked at {mb} MB"
    h = hashlib.sha256()
    with open(out, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    assert h.hexdigest() == big["sha"]


@BIG
def test_another_encoding_of_a_large_table_is_stored_canonically(big, tmp_path):
    """Each column in a segment per 65,536 rows: checked, then written again canonically, in flat memory."""
    other = tmp_path / "segmented.beast2"
    write_table(other, segmented=True)
    repo = workspace(tmp_path)
    mb, _ = peak("e3", "set", repo, "dev.inputs.t", other)
    assert mb < LIMIT_MB, f"e3 set of a {MB} MB table in segments peaked at {mb} MB"
    assert run("e3-rev-parse", "--repo", repo, "dev.inputs.t").out.strip() == big["sha"]


def test_a_truncated_large_table_is_refused_and_nothing_is_stored(tmp_path):
    cut = tmp_path / "cut.beast2"
    write_table(cut, cut=1000)
    repo = workspace(tmp_path)
    before = stored(repo)
    assert_one_line_error(run("e3", "set", repo, "dev.inputs.t", cut, expect=128), "truncated")
    with open(cut, "rb") as f:
        assert_one_line_error(run("e3", "set", repo, "dev.inputs.t", "-", "--format", "beast2", input=f.read(), expect=128), "truncated")
    assert_one_line_error(run("e3-hash-object", "-w", "--repo", repo, cut, expect=128), "truncated")
    assert stored(repo) == before


def test_another_encoding_of_a_table_is_stored_canonically(tmp_path):
    """What the runtime writes by default (one deflate frame) is set as e3's canonical bytes."""
    value = table(300_000)
    deflated = tmp_path / "deflated.beast2"
    deflated.write_bytes(runtime_beast2.encode_beast2_with_header_for(TABLE)(value))
    canonical = east.encode(value, TABLE)
    assert deflated.read_bytes() != canonical
    repo = workspace(tmp_path)
    run("e3", "set", repo, "dev.inputs.t", deflated)
    assert run("e3-rev-parse", "--repo", repo, "dev.inputs.t").out.strip() == hashlib.sha256(canonical).hexdigest()


@pytest.mark.parametrize("flaw", ["a count past the end", "a container tag that is 7", "bytes after the value"])
def test_a_malformed_table_is_refused_in_one_line_and_nothing_is_stored(tmp_path, flaw):
    t = east.StructType([("id", INTEGERS), ("ok", east.ArrayType(east.BooleanType)), ("n", east.IntegerType)])
    data = bytearray(east.encode({"id": list(range(100_000)), "ok": [True] * 1000, "n": 1}, t))
    assert data[-1004:-1002] == varint(1000)  # the booleans' count: then 1000 booleans, the end, n
    if flaw == "a count past the end":
        data[-1004:-1002] = varint(1001)
    elif flaw == "a container tag that is 7":
        data[-1005] = 7  # the tag of the array of booleans
    else:
        data += b"\x00"
    value = tmp_path / "bad.beast2"
    value.write_bytes(bytes(data))
    repo = workspace(tmp_path, t)
    before = stored(repo)
    for argv in (("e3", "set", repo, "dev.inputs.t", value), ("e3-hash-object", "-w", "--repo", repo, value)):
        assert_one_line_error(run(*argv, expect=128), "malformed beast2 value")
    assert stored(repo) == before


def test_a_table_of_another_type_is_refused_naming_both_types(tmp_path):
    value = tmp_path / "t.beast2"
    value.write_bytes(east.encode(table(10), TABLE))
    other = east.StructType([("id", INTEGERS), ("price", INTEGERS), ("qty", INTEGERS)])
    repo = workspace(tmp_path, other)
    before = stored(repo)
    for argv in (("e3", "set", repo, "dev.inputs.t", value), ("e3-hash-object", "-w", "--repo", repo, "-t", east.format_type(other), value)):
        r = run(*argv, expect=None)
        assert r.returncode != 0
        assert_one_line_error(r, east.format_type(TABLE), east.format_type(other))
    assert stored(repo) == before


@pytest.mark.parametrize("fmt", ["east", "json"])
def test_text_of_a_large_table_is_written_a_piece_at_a_time(tmp_path, fmt):
    """A Struct whose column holds 100 strings of 1 MiB: 100 MB of text, the command's memory under the 64 MB limit."""
    t = east.StructType([("n", east.IntegerType), ("names", east.ArrayType(east.StringType)), ("xs", FLOATS)])
    element = varint(1 << 20) + b"x" * (1 << 20)
    count = 100
    n, names, xs = b"\x0e", b"\x00" + varint(count), b"\x00\x01" + struct.pack("<d", 0.5) + b"\x00"  # 7; the array's head; [0.5]
    payload = len(n) + len(names) + len(element) * count + 1 + len(xs)
    value = tmp_path / "t.beast2"
    with open(value, "wb") as f:
        f.write(beast2_stream.canonical_prefix(t) + b"\x00" + varint(payload) * 2 + n + names)
        for _ in range(count):
            f.write(element)
        f.write(b"\x00" + xs)
    repo = workspace(tmp_path, t)
    run("e3", "set", repo, "dev.inputs.t", value)
    value.unlink()
    out = tmp_path / f"out.{fmt}"
    mb = text_to_file(repo, "dev.inputs.t", fmt, out)
    assert mb < LIMIT_MB, f"e3 get -f {fmt} of a table of {out.stat().st_size >> 20} MB of text peaked at {mb} MB"
    with open(out, "rb") as f:
        start = f.read(24)
        f.seek(-40, 2)
        end = f.read()
    if fmt == "east":
        assert start.startswith(b'(n=7, names=["xxxx') and end.endswith(b'xxx"], xs=[0.5])\n')
    else:
        assert start.startswith(b'{\n  "n": "7",\n  "names"') and end.endswith(b'xxx"\n  ],\n  "xs": [\n    0.5\n  ]\n}\n')
    assert out.stat().st_size > count << 20
