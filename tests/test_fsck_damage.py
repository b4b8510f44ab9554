"""e3-fsck and e3 repo gc on damage they must name, and on leftovers they must only list.

A damaged git pack is reported (the pack, and each object that cannot be read
from it) while the check goes on; gc refuses to remove anything. Files a killed
writer left behind are warnings: listed, exit 0. Damage is an error: exit 1.
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from e3_testing.commands import assert_one_line_error, deployed, run

from e3_testing.packages import chain_zip


@pytest.fixture
def packed(tmp_path) -> Path:
    """A repository whose history is all in one git pack (a run of a 20-task chain, then gc)."""
    repo = deployed(tmp_path, chain_zip(tmp_path, 20), "chain@1.0.0")
    run("e3", "start", repo, "dev", "-q")
    run("e3", "repo", "gc", repo, "--prune=now")
    return repo


def _pack(repo: Path) -> Path:
    (pack,) = (repo / ".e3" / "objects" / "pack").glob("pack-*.pack")
    return pack


def _damage(path: Path, every: int = 97) -> None:
    """Invert bytes through the body of a file (past the pack header, before its checksum)."""
    data = bytearray(path.read_bytes())
    for i in range(200, len(data) - 40, every):
        data[i] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def _flip(path: Path) -> str:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return hashlib.sha256(data).hexdigest()


def test_fsck_reports_a_damaged_pack_and_its_unreadable_objects_and_goes_on(packed):
    pack = _pack(packed)
    # An e3 object damaged too: found only if the check goes on past the pack.
    value = run("e3-rev-parse", "--repo", packed, "dev.tasks.t00005.output").out.strip()
    _flip(packed / ".e3" / "objects" / value[:2] / f"{value[2:]}.beast2")
    _damage(pack)
    r = run("e3-fsck", "--repo", packed, expect=1)
    lines = r.out.splitlines()
    assert f"corrupt objects/pack/{pack.name}: damaged: its checksum does not match its contents" in lines, r.out
    unreadable = [line for line in lines if "is unreadable" in line]
    assert unreadable and all(pack.name in line for line in unreadable), r.out
    assert any(line.startswith(f"corrupt objects/{value[:2]}/{value[2:]}.beast2: bytes hash to") for line in lines), r.out
    assert r.err == ""


def test_gc_refuses_to_prune_with_a_damaged_pack_and_removes_nothing(packed):
    from e3 import east
    from e3.storage.repository import open_repository

    r = open_repository(packed)
    garbage = r.objects.write(east.encode("garbage", east.StringType))
    old = time.time() - 30 * 86400
    os.utime(r.objects.path(garbage), (old, old))
    pack = _pack(packed)
    _damage(pack)
    before = sorted(p.name for p in pack.parent.iterdir())
    g = run("e3", "repo", "gc", packed, expect=128)
    assert_one_line_error(g, "refusing to collect garbage", pack.name, "damaged", "e3-fsck", "nothing was removed")
    assert r.objects.exists(garbage)
    assert sorted(p.name for p in pack.parent.iterdir()) == before


def test_gc_refuses_when_history_cannot_be_read_from_a_pack(packed):
    """The pack's checksum is sound but one object in it does not inflate: found by the walk."""
    pack = _pack(packed)
    data = bytearray(pack.read_bytes())
    # Damage one compressed record, then write the pack's checksum over again: only reading the object tells.
    data[len(data) // 2] ^= 0xFF
    data[-20:] = hashlib.sha1(bytes(data[:-20])).digest()
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    idx = pack.with_suffix(".idx")
    idata = bytearray(idx.read_bytes())
    idata[-40:-20] = data[-20:]
    idata[-20:] = hashlib.sha1(bytes(idata[:-20])).digest()
    idx.chmod(0o644)
    idx.write_bytes(bytes(idata))
    f = run("e3-fsck", "--repo", packed, expect=None)
    assert f.returncode == 1 and f"is unreadable (in {pack.name}: " in f.out and f.err == "", (f.out, f.err)
    g = run("e3", "repo", "gc", packed, expect=128)
    assert_one_line_error(g, "refusing to collect garbage: corrupt ", f"in {pack.name}: ", "nothing was removed")


def test_fsck_lists_leftovers_of_a_killed_writer_as_warnings_and_exits_0(packed):
    tmp = packed / ".e3" / "tmp"
    tmp.mkdir(exist_ok=True)
    (tmp / "obj-0123456789ab.tmp").write_bytes(b"partial")
    (tmp / "run-999999999-0-abcd").mkdir()
    lock = packed / ".e3" / "refs" / "workspaces" / "dev.lock"
    lock.write_text("")
    old = time.time() - 7200
    os.utime(lock, (old, old))
    r = run("e3-fsck", "--repo", packed)
    lines = r.out.splitlines()
    assert "temp tmp/obj-0123456789ab.tmp: partial object left behind (7 bytes)" in lines
    assert any(line.startswith("temp tmp/run-999999999-0-abcd:") for line in lines)
    assert any(line.startswith("temp refs/workspaces/dev.lock: ref lock left by a writer that died") for line in lines)
    assert "3 leftovers" in run("e3-fsck", "--repo", packed, "-v").err
    # Damage beside them is an error.
    value = run("e3-rev-parse", "--repo", packed, "dev.tasks.t00001.output").out.strip()
    _flip(packed / ".e3" / "objects" / value[:2] / f"{value[2:]}.beast2")
    assert run("e3-fsck", "--repo", packed, expect=1).out.count("temp ") == 3


def test_fsck_lists_a_damaged_cache_entry_as_a_warning_and_the_next_run_rebuilds_it(packed):
    (plan,) = (packed / ".e3" / "cache" / "plans").glob("*.cbor")
    _flip(plan)
    r = run("e3-fsck", "--repo", packed, "-v")
    assert r.out.splitlines() == [f"cache cache/plans/{plan.name}: damaged: its checksum does not match (never used; rebuilt when next needed)"]
    assert "1 damaged cache entries" in r.err and "cache entries" in r.err
    run("e3", "start", packed, "dev", "--force", "-q")  # plans from the package, and caches the plan again
    assert run("e3-fsck", "--repo", packed).out == ""
