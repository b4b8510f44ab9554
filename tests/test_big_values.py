"""Values larger than memory should be: every command that moves one keeps its peak memory flat.

A 96 MB Array<Float> (1.5 times the 64 MB limit), written on the fly, goes in with
`e3 set` (from a pipe) and `e3-hash-object -w`, out with `e3 get` and
`e3-cat-object`, through a package zip with `e3 workspace export` and
`e3 workspace import`; each command's peak resident memory is measured by the
operating system, and the bytes that come out are the bytes that went in.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from e3_testing.commands import assert_one_line_error, command_env, run, workspace_imported

from e3 import beast2_stream, east, varint

MB = 96
"""1.5 times LIMIT_MB is enough: a command holding the value whole peaks above 96 MB plus the
interpreter's 20-30 MB (a get that joined its text before writing it peaked at 340 MB); each MB more
was seconds of writing and hashing on a loaded machine (it was 160)."""
LIMIT_MB = 64
FLOATS = east.ArrayType(east.FloatType)

# Runs a command as a child of a small process and prints the child's own peak memory: a child
# of the test process would count the test process's memory too (Linux carries the peak resident
# memory over fork and exec).
PEAK = textwrap.dedent(
    """
    import os, sys
    pid = os.fork()
    if pid == 0:
        os.execvp(sys.argv[1], sys.argv[1:])
    _, status, usage = os.wait4(pid, 0)
    sys.stderr.write(f"\\npeak-kb {usage.ru_maxrss}\\n")
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def peak(*argv, stdin=None, stdout=None) -> tuple[int, str]:
    """Run an e3 command; its exit code must be 0. Returns (peak MB, its stderr)."""
    proc = subprocess.run([sys.executable, "-c", PEAK, *map(str, argv)], stdin=stdin, stdout=stdout if stdout is not None else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=command_env(), timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    head, _, kb = err.rstrip().rpartition("peak-kb ")
    return int(kb) // 1024, head


def text_to_file(repo: Path, dataset: str, fmt: str, out: Path) -> int:
    """`e3 get -f FMT` of a dataset into the file `out`; the command's peak MB."""
    with open(out, "wb") as f:
        return peak("e3", "get", repo, dataset, "-f", fmt, stdout=f)[0]


def value_pieces(megabytes: int):
    """The canonical Beast2 of an Array<Float> of `megabytes` MiB of doubles, a piece at a time."""
    chunk = bytes(range(256)) * 4096  # 1 MiB: 131,072 doubles
    count = len(chunk) // 8 * megabytes
    payload = 1 + len(varint.encode(count)) + 8 * count + 1
    yield beast2_stream.canonical_prefix(FLOATS) + b"\x00" + varint.encode(payload) * 2 + b"\x00" + varint.encode(count)
    for _ in range(megabytes):
        yield chunk
    yield b"\x00"


# The tests of the one large value share it on one xdist worker: made on both, it was made twice.
BIG = pytest.mark.xdist_group("big-value")


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A repository whose dev.inputs.xs holds the large value, set from a pipe; and the value's file."""
    from e3 import sdk

    d = tmp_path_factory.mktemp("big")
    value = d / "xs.beast2"
    h = hashlib.sha256()
    with open(value, "wb") as f:
        for piece in value_pieces(MB):
            h.update(piece)
            f.write(piece)
    zip_path = d / "big.zip"
    sdk.export(sdk.package("big", "1.0.0", sdk.input("xs", FLOATS)), zip_path)
    repo = d / "repo"
    run("e3", "repo", "create", repo)
    run("e3", "workspace", "import", repo, "dev", zip_path)
    setter = subprocess.Popen([sys.executable, "-c", PEAK, "e3", "set", str(repo), "dev.inputs.xs", "-", "--format", "beast2"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
    for piece in value_pieces(MB):  # made as it is sent: the value never exists whole in any process
        setter.stdin.write(piece)
    setter.stdin.close()
    err = setter.stderr.read().decode()
    assert setter.wait(timeout=300) == 0, err
    set_peak = int(err.rstrip().rpartition("peak-kb ")[2]) // 1024
    return {"repo": repo, "value": value, "sha": h.hexdigest(), "dir": d, "set_peak": set_peak}


@BIG
def test_set_of_a_value_larger_than_memory_streams_it_in(big):
    assert big["set_peak"] < LIMIT_MB, f"e3 set of a {MB} MB value peaked at {big['set_peak']} MB"
    assert run("e3-rev-parse", "--repo", big["repo"], "dev.inputs.xs").out.strip() == big["sha"]


@BIG
def test_get_and_cat_object_stream_the_stored_bytes_out(big, tmp_path):
    for argv in (["e3", "get", big["repo"], "dev.inputs.xs", "-f", "beast2"], ["e3-cat-object", "--repo", big["repo"], "-f", "beast2", big["sha"]]):
        out = tmp_path / "out.beast2"
        with open(out, "wb") as f:
            mb, _ = peak(*argv, stdout=f)
        assert mb < LIMIT_MB, f"{argv[0]} of a {MB} MB value peaked at {mb} MB"
        assert hashlib.sha256(out.read_bytes()).hexdigest() == big["sha"]
        out.unlink()


@BIG
def test_hash_object_checks_and_stores_a_value_larger_than_memory(big, tmp_path):
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    mb, _ = peak("e3-hash-object", "-w", "--repo", repo, big["value"])
    assert mb < LIMIT_MB, f"e3-hash-object -w of a {MB} MB value peaked at {mb} MB"
    assert run("e3-cat-object", "--repo", repo, "-s", big["sha"]).out.strip() == str(big["value"].stat().st_size)


@BIG
def test_a_truncated_large_value_is_refused_whole_and_nothing_is_stored(big, tmp_path):
    cut = tmp_path / "cut.beast2"
    with open(big["value"], "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(big["value"].stat().st_size - 1000))
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    r = run("e3-hash-object", "-w", "--repo", repo, cut, expect=128)
    assert_one_line_error(r, "truncated")
    assert not any((repo / ".e3" / "objects").glob("??/*.beast2"))


@BIG
def test_a_package_zip_carries_a_large_value_out_and_in(big, tmp_path):
    zip_path = tmp_path / "ws.zip"
    mb, _ = peak("e3", "workspace", "export", big["repo"], "dev", zip_path)
    assert mb < LIMIT_MB, f"e3 workspace export of a {MB} MB value peaked at {mb} MB"
    with zipfile.ZipFile(zip_path) as z:
        entry = z.getinfo(f"objects/{big['sha'][:2]}/{big['sha'][2:]}.beast2")
        assert entry.compress_type == zipfile.ZIP_STORED  # large values go in as they are
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    mb, _ = peak("e3", "workspace", "import", repo, "copy", zip_path)
    assert mb < LIMIT_MB, f"e3 workspace import of a {MB} MB value peaked at {mb} MB"
    assert run("e3-rev-parse", "--repo", repo, "copy.inputs.xs").out.strip() == big["sha"]


def test_another_encoding_of_a_value_is_stored_canonically(tmp_path):
    """What `east-py run` writes (segments, deflate, an index) is set as e3's canonical bytes."""
    from east.serialization import beast2 as runtime_beast2

    from e3 import sdk

    values = [i * 0.25 for i in range(300_000)]
    paged = tmp_path / "paged.beast2"
    paged.write_bytes(runtime_beast2.encode_beast2_paged_for(FLOATS)(values))
    zip_path = tmp_path / "p.zip"
    sdk.export(sdk.package("p", "1.0.0", sdk.input("xs", FLOATS)), zip_path)
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    run("e3", "workspace", "import", repo, "dev", zip_path)
    run("e3", "set", repo, "dev.inputs.xs", paged)
    canonical = east.encode(values, FLOATS)
    assert run("e3-rev-parse", "--repo", repo, "dev.inputs.xs").out.strip() == hashlib.sha256(canonical).hexdigest()


@pytest.mark.parametrize("fmt", ["east", "json"])
def test_text_of_a_large_value_is_written_a_piece_at_a_time(tmp_path, fmt):
    """100 strings of 1 MiB: the text is 100 MB, the command's memory stays under the 64 MB limit
    (a command that held the text whole would be far above it)."""
    from e3 import sdk

    strings = east.ArrayType(east.StringType)
    element = varint.encode(1 << 20) + b"x" * (1 << 20)
    count = 100
    payload = 1 + len(varint.encode(count)) + len(element) * count + 1
    value = tmp_path / "s.beast2"
    with open(value, "wb") as f:
        f.write(beast2_stream.canonical_prefix(strings) + b"\x00" + varint.encode(payload) * 2 + b"\x00" + varint.encode(count))
        for _ in range(count):
            f.write(element)
        f.write(b"\x00")
    zip_path = tmp_path / "s.zip"
    sdk.export(sdk.package("s", "1.0.0", sdk.input("s", strings)), zip_path)
    repo = workspace_imported(tmp_path / "repo", zip_path)
    run("e3", "set", repo, "dev.inputs.s", value)
    value.unlink()
    out = tmp_path / f"out.{fmt}"
    mb = text_to_file(repo, "dev.inputs.s", fmt, out)
    assert mb < LIMIT_MB, f"e3 get -f {fmt} of a value of {out.stat().st_size // (1 << 20)} MB of text peaked at {mb} MB"
    with open(out, "rb") as f:
        start = f.read(16)
    assert start.startswith(b'["xxxx' if fmt == "east" else b'[\n  "xxxx')
    assert out.stat().st_size > count << 20


def test_a_large_value_in_a_zip_that_does_not_match_its_name_leaves_nothing(tmp_path):
    # A value bigger than what the import keeps in memory is copied into the store's temporary
    # files while it is checked (one pass): when its bytes hash to another name, the import is
    # refused and neither an object nor a temporary file of it is left behind.
    from e3 import sdk

    src, value = tmp_path / "src", tmp_path / "xs.beast2"
    value.write_bytes(b"".join(value_pieces(4)))
    sdk.export(sdk.package("big", "1.0.0", sdk.input("xs", FLOATS)), tmp_path / "big.zip")
    run("e3", "repo", "create", src)
    run("e3", "workspace", "import", src, "dev", tmp_path / "big.zip")
    run("e3", "set", src, "dev.inputs.xs", value)
    good, bad = tmp_path / "ws.zip", tmp_path / "bad.zip"
    run("e3", "workspace", "export", src, "dev", good)
    sha = hashlib.sha256(value.read_bytes()).hexdigest()
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == f"objects/{sha[:2]}/{sha[2:]}.beast2":
                data = data[:-9] + bytes([data[-9] ^ 1]) + data[-8:]  # one bit of the last double
            zout.writestr(info, data)
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    before = sorted(p.relative_to(repo) for p in (repo / ".e3").rglob("*"))
    assert_one_line_error(run("e3", "workspace", "import", repo, "copy", bad, expect=128), "does not match its contents")
    assert sorted(p.relative_to(repo) for p in (repo / ".e3").rglob("*")) == before
    run("e3", "workspace", "import", repo, "copy", good)
    assert run("e3-rev-parse", "--repo", repo, "copy.inputs.xs").out.strip() == sha
    assert run("e3-fsck", "--repo", repo).returncode == 0


def test_a_large_value_stored_in_a_zip_is_read_past_zipfile_yet_a_damaged_entry_is_one_line(tmp_path):
    # An object stored as it is (not deflated) is read straight from the zip, not through
    # zipfile's CRC-32 (its SHA-256 against its name checks it): its local header is still checked.
    from e3 import sdk

    value = tmp_path / "xs.beast2"
    value.write_bytes(b"".join(value_pieces(2)))
    sha = hashlib.sha256(value.read_bytes()).hexdigest()
    sdk.export(sdk.package("big", "1.0.0", sdk.input("xs", FLOATS)), tmp_path / "big.zip")
    src = tmp_path / "src"
    run("e3", "repo", "create", src)
    run("e3", "workspace", "import", src, "dev", tmp_path / "big.zip")
    run("e3", "set", src, "dev.inputs.xs", value)
    good = tmp_path / "ws.zip"
    run("e3", "workspace", "export", src, "dev", good)
    with zipfile.ZipFile(good) as z:
        info = z.getinfo(f"objects/{sha[:2]}/{sha[2:]}.beast2")
        assert info.compress_type == zipfile.ZIP_STORED
    data = bytearray(good.read_bytes())
    data[info.header_offset + 30] ^= 0x20  # the first letter of its name in the local header
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    assert_one_line_error(run("e3", "package", "import", repo, bad, expect=128), "damaged", "local header")
    run("e3", "package", "import", repo, good)
    assert (repo / ".e3" / "objects" / sha[:2] / f"{sha[2:]}.beast2").read_bytes() == value.read_bytes()
