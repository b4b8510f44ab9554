"""The record pointer `tasks/<TASK_ID>`: its line, then the record's Beast2 bytes (e3.storage.records).

An execution creates its output and this one file; a pointer written before records were
embedded (the line alone, its record an object) still reads; a damaged embedded record is never
read as a record; gc and fsck reach what an embedded record names.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from e3_testing.commands import assert_one_line_error, deployed, run, start_states
from e3_testing import packages

from e3 import east, sdk
from e3.errors import CorruptObject, FormatError
from e3.storage import records
from e3.storage.identity import task_id
from e3.storage.repository import open_repository

MONTH = 30 * 86400


def _value(r, text: str) -> str:
    return r.objects.write(east.encode(text, east.StringType))


def _age(r, h: str) -> None:
    t = time.time() - MONTH
    os.utime(r.objects.path(h), (t, t))


def _success(r, inputs=(), output=None, message_len=0):
    now = records.now()
    if message_len:
        return records.Record("error", "e1", tuple(inputs), now, now, message="m" * message_len)
    return records.Record("success", "e1", tuple(inputs), now, now, output_hash=output)


def _objects(r) -> set[str]:
    return set(r.objects)


def test_a_record_is_written_into_its_pointer_after_its_line_and_no_object_is_stored(repo):
    r = open_repository(repo)
    out, inp = _value(r, "out"), _value(r, "in")
    before = _objects(r)
    tid = task_id("t" * 64, [inp])
    h = records.write(r, tid, _success(r, [inp], out))
    data = Path(records.pointer_path(r, tid)).read_bytes()
    line, _, embedded = data.partition(b"\n")
    assert line.decode() == f"{h} success {out}"
    assert hashlib.sha256(embedded).hexdigest() == h and embedded.startswith(b"\x89East")
    assert _objects(r) == before  # no record object
    back = records.latest(r, tid)
    assert (back.kind, back.output_hash, back.input_hashes) == ("success", out, (inp,))
    # Replaced: the newest record is the one the pointer holds.
    h2 = records.write(r, tid, records.Record("failed", "e2", (inp,), records.now(), records.now(), exit_code=3))
    s = records.summary(r, tid)
    assert (s.record_hash, s.kind, s.output_hash) == (h2, "failed", None)
    assert records.read(r, s).exit_code == 3 and _objects(r) == before


def test_a_record_longer_than_one_read_is_read_whole(repo):
    r = open_repository(repo)
    tid = task_id("l" * 64, [])
    h = records.write(r, tid, _success(r, message_len=3 * records.READ))
    s = records.summary(r, tid)
    assert s.record_hash == h and records.read(r, s).message == "m" * 3 * records.READ


def test_an_execution_creates_its_output_and_its_pointer_only(tmp_path):
    zip_path = tmp_path / "pkg.zip"
    sdk.export(packages.diamond(), zip_path)
    repo = deployed(tmp_path, zip_path, "diamond@1.0.0")
    r = open_repository(repo)
    before = _objects(r)
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"ran"}
    pointers = os.listdir(r.path("tasks"))
    assert len(pointers) == 4
    new = _objects(r) - before
    outputs = {records.summary(r, t).output_hash for t in pointers}
    assert new == outputs  # nothing but the outputs: no record objects
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}


def test_a_pointer_written_before_records_were_embedded_still_reads_and_is_kept(repo, e3):
    """The line alone, its record an object in the store: readers, gc and fsck all take it."""
    r = open_repository(repo)
    inp, out = _value(r, "in"), _value(r, "out")
    rec = _success(r, [inp], out)
    h = records.store(r, rec)
    tid = task_id("o" * 64, [inp])
    os.makedirs(r.path("tasks"), exist_ok=True)
    Path(records.pointer_path(r, tid)).write_bytes(f"{h} success {out}\n".encode())
    s = records.summary(r, tid)
    assert (s.record_hash, s.kind, s.output_hash, s.embedded) == (h, "success", out, None)
    assert records.latest(r, tid) == records.load(r, h)
    assert records.latest(r, tid).input_hashes == (inp,)
    for x in (h, inp, out):
        _age(r, x)
    e3("repo", "gc", repo, "--prune=now")
    assert all(r.objects.exists(x) for x in (h, inp, out))
    assert run("e3-fsck", "--repo", repo).out == ""
    os.unlink(r.objects.path(h))
    assert f"missing objects/{h[:2]}/{h[2:]}.beast2: execution record {h} is missing, named by tasks/{tid}" in run(
        "e3-fsck", "--repo", repo, expect=1
    ).out


def test_a_torn_line_is_no_record(repo):
    r = open_repository(repo)
    tid = task_id("n" * 64, [])
    h = records.write(r, tid, _success(r, output="f" * 64))
    Path(records.pointer_path(r, tid)).write_bytes(f"{h} success {'f' * 30}".encode())  # cut before its newline
    assert records.summary(r, tid) is None


def _flip(path: str, offset_from_end: int) -> None:
    data = bytearray(Path(path).read_bytes())
    data[-offset_from_end] ^= 0x01
    Path(path).write_bytes(bytes(data))


def test_a_flipped_byte_in_an_embedded_record_is_never_read_as_a_record(repo, e3):
    r = open_repository(repo)
    inp, out = _value(r, "in"), _value(r, "out")
    tid = task_id("f" * 64, [inp])
    h = records.write(r, tid, _success(r, [inp], out))
    _flip(records.pointer_path(r, tid), 20)
    s = records.summary(r, tid)  # the line is whole: the memo may still use it
    assert (s.record_hash, s.kind, s.output_hash) == (h, "success", out)
    with pytest.raises(CorruptObject, match=f"tasks/{tid}: its execution record is damaged"):
        records.read(r, s)
    with pytest.raises(CorruptObject):
        records.latest(r, tid)
    fsck = run("e3-fsck", "--repo", repo, expect=1)
    [line] = [x for x in fsck.out.splitlines() if not x.startswith("dangling")]
    assert line.startswith(f"corrupt tasks/{tid}: its execution record is damaged (its bytes hash to ")
    for x in (inp, out):
        _age(r, x)
    gc = e3("repo", "gc", repo, "--prune=now", expect=None)
    assert gc.returncode != 0
    assert_one_line_error(gc, f"tasks/{tid}", "refusing")
    assert r.objects.exists(inp) and r.objects.exists(out)


def test_a_line_that_disagrees_with_its_record_is_caught(repo):
    r = open_repository(repo)
    out = _value(r, "out")
    tid = task_id("d" * 64, [])
    h = records.write(r, tid, _success(r, output=out))
    path = records.pointer_path(r, tid)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data.replace(f"{h} success".encode(), f"{h} failed ".encode(), 1))
    s = records.summary(r, tid)
    assert s.kind == "failed"
    with pytest.raises(CorruptObject, match="its line does not match its execution record"):
        records.read(r, s)
    assert f"corrupt tasks/{tid}: its line does not match its execution record" in run("e3-fsck", "--repo", repo, expect=1).out


def test_gc_keeps_what_an_embedded_record_names_and_fsck_finds_it_clean(repo, e3):
    r = open_repository(repo)
    inp, out, garbage = _value(r, "in"), _value(r, "out"), _value(r, "garbage")
    tid = task_id("g" * 64, [inp])
    h = records.write(r, tid, _success(r, [inp], out))
    for x in (inp, out, garbage):
        _age(r, x)
    assert run("e3-fsck", "--repo", repo).out == ""  # the record's hash is no object, and not missing
    assert "Removed 1 unreachable object(s)" in e3("repo", "gc", repo, "--prune=now").out
    assert r.objects.exists(inp) and r.objects.exists(out) and not r.objects.exists(garbage)
    assert records.latest(r, tid).input_hashes == (inp,) and records.summary(r, tid).record_hash == h


def test_gc_keeps_an_input_only_the_embedded_record_names(repo, e3):
    """The line names the output; the inputs are in the record's bytes alone."""
    r = open_repository(repo)
    inp = _value(r, "only the record names me")
    tid = task_id("i" * 64, [inp])
    records.write(r, tid, records.Record("failed", "e1", (inp,), records.now(), records.now(), exit_code=1))
    _age(r, inp)
    e3("repo", "gc", repo, "--prune=now")
    assert r.objects.exists(inp)


def test_record_objects_setting_also_stores_every_record_as_an_object(repo, e3):
    subprocess.run(["git", "--git-dir", str(repo / ".e3"), "config", "e3.recordObjects", "true"], check=True)
    r = open_repository(repo)
    tid = task_id("k" * 64, [])
    first = records.write(r, tid, _success(r, output=_value(r, "out")))
    second = records.write(r, tid, records.Record("failed", "e2", (), records.now(), records.now(), exit_code=2))
    assert r.objects.exists(first) and r.objects.exists(second)
    assert records.load(r, first).kind == "success" and records.latest(r, tid).kind == "failed"
    assert run("e3-fsck", "--repo", repo).out == ""


def test_a_bad_record_objects_setting_is_one_line_error(repo):
    subprocess.run(["git", "--git-dir", str(repo / ".e3"), "config", "e3.recordObjects", "maybe"], check=True)
    with pytest.raises(FormatError, match="bad boolean config value 'maybe' for e3.recordObjects"):
        records.write(open_repository(repo), task_id("b" * 64, []), _success(None, output="f" * 64))


def test_cat_object_does_not_know_an_embedded_record(repo):
    r = open_repository(repo)
    h = records.write(r, task_id("c" * 64, []), _success(r, output="f" * 64))
    res = run("e3-cat-object", "--repo", repo, "-e", h, expect=1)
    assert res.out == "" and res.err == ""


def test_a_torn_replacement_left_in_tasks_is_no_damage(repo, e3):
    """`<TASK_ID>.<pid>.<ns>.tmp`, cut short by a crash before its rename: not a record, not corruption."""
    r = open_repository(repo)
    out = _value(r, "out")
    tid = task_id("r" * 64, [])
    records.write(r, tid, _success(r, output=out))
    data = Path(records.pointer_path(r, tid)).read_bytes()
    Path(records.pointer_path(r, tid) + ".123.456.tmp").write_bytes(data[:-10])
    assert run("e3-fsck", "--repo", repo).out == ""
    e3("repo", "gc", repo, "--prune=now")
    assert r.objects.exists(out)
