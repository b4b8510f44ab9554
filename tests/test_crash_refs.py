"""Kill -9 in the middle of a workspace ref update: no torn ref, and the next update goes through."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

from e3_testing.packages import chain_zip

from e3_testing.commands import command_env, run
from e3.storage import refs
from e3.repo import workspace
from e3.storage.repository import open_repository

SETTER = """
import sys
from e3 import east
from e3.repo import workspace
from e3.storage.repository import open_repository
r = open_repository(sys.argv[1])
print("go", flush=True)
i = 0
while True:
    h = r.objects.write(east.encode(i, east.IntegerType))
    workspace.set_dataset(r, "dev", ("inputs", "x"), h)
    i += 1
"""

# Dies holding the ref's lock: between git's `<ref>.lock` being taken and renamed over the ref.
DIE_LOCKED = """
import sys, time
from e3.storage import refs
from e3.storage.repository import open_repository
lock = refs._Lock.acquire(open_repository(sys.argv[1]), "refs/workspaces/dev")
lock.write_bytes(b"0" * 20)  # half a new value
print("locked", flush=True)
time.sleep(60)
"""


def _setup(repo, tmp_path, e3):
    e3("workspace", "import", repo, "dev", chain_zip(tmp_path, 1))
    return open_repository(repo)


def _set_and_check(repo, tmp_path, e3, value: int) -> None:
    (tmp_path / "x.east").write_text(str(value))
    t0 = time.monotonic()
    e3("set", repo, "dev.inputs.x", tmp_path / "x.east")
    assert time.monotonic() - t0 < 10
    assert e3("get", repo, "dev.inputs.x").out.strip() == str(value)
    fsck = run("e3-fsck", "--repo", repo, expect=None)
    assert [line for line in fsck.out.splitlines() if not line.startswith("temp ")] == []


def test_kill_at_random_moments_of_ref_updates_leaves_a_whole_ref(repo, tmp_path, e3):
    r = _setup(repo, tmp_path, e3)
    rng = random.Random(7)
    for _ in range(8):
        p = subprocess.Popen([sys.executable, "-c", SETTER, str(repo)], stdout=subprocess.PIPE, env=command_env())
        assert p.stdout.readline() == b"go\n"
        time.sleep(rng.uniform(0.05, 0.3))
        p.send_signal(signal.SIGKILL)
        p.wait()
        commit = refs.read(r, "refs/workspaces/dev")
        assert r.git[commit].type_str == "commit"  # never torn
        assert ("inputs", "x") in workspace.read(r, "dev").datasets
    _set_and_check(repo, tmp_path, e3, 41)


def test_a_writer_killed_holding_the_ref_lock_does_not_block_the_next_update(repo, tmp_path, e3):
    r = _setup(repo, tmp_path, e3)
    before = refs.read(r, "refs/workspaces/dev")
    p = subprocess.Popen([sys.executable, "-c", DIE_LOCKED, str(repo)], stdout=subprocess.PIPE, env=command_env())
    assert p.stdout.readline() == b"locked\n"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert r.path("refs", "workspaces", "dev.lock").exists()
    assert refs.read(r, "refs/workspaces/dev") == before  # the half-written value never became the ref
    _set_and_check(repo, tmp_path, e3, 42)


def test_a_git_temporary_object_left_by_a_kill_is_reported_as_temp_and_swept(repo):
    import os

    r = open_repository(repo)
    left = r.path("objects", "tmp_object_git2_AbCdEf")  # what libgit2 leaves when killed mid commit write
    left.write_bytes(b"x\x9c partial")
    os.utime(left, (time.time() - 10, time.time() - 10))
    fsck = run("e3-fsck", "--repo", repo)  # a leftover is a warning: listed, exit 0
    assert fsck.out.startswith("temp objects/tmp_object_git2_AbCdEf: git temporary object left behind")
    assert r.objects.sweep_temporaries() == 1 and not left.exists()
    run("e3-fsck", "--repo", repo)
