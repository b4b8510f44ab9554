"""e3-fsck's connectivity pass: every hash named by refs, history, records, the queue and values exists."""
from __future__ import annotations

import os
import time

from e3_testing.commands import run
from test_gc import build_world

from e3.storage.repository import open_repository


def fsck(repo, *args, expect=0):
    return run("e3-fsck", "--repo", repo, *args, expect=expect)


def obj_path(repo, h):
    return open_repository(repo).objects.path(h)


def test_fsck_of_a_repository_using_every_root_is_clean(repo):
    build_world(repo)
    r = fsck(repo, "-v")
    assert r.out == ""
    assert "3 dangling e3 objects" in r.err and "3 refs" in r.err and "; 0 problems" in r.err


def test_fsck_reports_a_missing_dataset_value_and_who_names_it(repo):
    keep, _ = build_world(repo)
    os.unlink(obj_path(repo, keep["x"]))
    out = fsck(repo, expect=1).out
    assert f"missing objects/{keep['x'][:2]}/{keep['x'][2:]}.beast2: object {keep['x']} is missing, named by commit" in out
    assert ":inputs/x" in out


def test_fsck_reports_objects_missing_behind_packages_records_and_the_queue(repo):
    keep, _ = build_world(repo)
    for name in ("cmd_ir", "rec_out", "rec_in", "queue_in", "hist_out", "init"):
        os.unlink(obj_path(repo, keep[name]))
    out = fsck(repo, expect=1).out
    assert f"{keep['cmd_ir']} is missing, named by task {keep['task'][:12]}" in out
    assert f"{keep['rec_out']} is missing, named by tasks/{'a' * 64}" in out  # the pointer names the output too
    assert f"{keep['rec_in']} is missing, named by tasks/{'a' * 64}" in out  # its embedded record names it
    assert f"{keep['queue_in']} is missing, named by queue/local/" in out
    assert f"{keep['hist_out']} is missing, named by execution record {keep['hist_record'][:12]}" in out
    assert f"{keep['init']} is missing, named by package {keep['package'][:12]}" in out


def test_fsck_reports_a_missing_commit_in_history(repo):
    build_world(repo)
    first = run("e3-rev-parse", "--repo", repo, "dev~1").out.strip()
    os.unlink(repo / ".e3" / "objects" / first[:2] / first[2:])
    out = fsck(repo, expect=1).out
    assert f"missing objects/{first[:2]}/{first[2:]}: commit {first} is missing, named by commit" in out


def test_fsck_dangling_lists_unreachable_objects_without_failing(repo):
    _, garbage = build_world(repo)
    out = fsck(repo, "--dangling").out
    listed = sorted(line.split()[1] for line in out.splitlines() if line.startswith("dangling "))
    assert listed == sorted(f"objects/{h[:2]}/{h[2:]}.beast2:" for h in garbage.values())


def test_fsck_reports_a_ref_file_that_is_not_a_ref_and_a_dead_writers_ref_lock(repo):
    build_world(repo)
    (repo / ".e3" / "refs" / "workspaces" / "junk").write_text("not a commit\n")
    lock = repo / ".e3" / "refs" / "workspaces" / "dev.lock"
    lock.write_text("")
    out = fsck(repo, expect=1).out
    assert "corrupt refs/workspaces/junk: not a ref" in out
    assert "dev.lock" not in out, "a fresh lock may belong to a live writer"
    t = time.time() - 7200
    os.utime(lock, (t, t))
    assert "temp refs/workspaces/dev.lock: ref lock left by a writer that died" in fsck(repo, expect=1).out
    run("e3-update-ref", "--repo", repo, "refs/workspaces/dev", "dev~1")  # breaks the dead lock
    assert not lock.exists()
