"""e3 repo gc / status / remove, and the reachability walk they share with fsck."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from e3_testing.commands import LIB, assert_one_line_error, command_env, run

from e3 import east
from e3.storage import refs
from e3.storage import queue, records
from e3.model.package import DatasetRef, DatasetSpec, Package, store_package
from e3.model.task import TaskObject, store_task
from e3.model.types import WorkspaceStateType
from e3.storage.repository import open_repository

MONTH = 30 * 86400


def value(r, text: str) -> str:
    return r.objects.write(east.encode(text, east.StringType))


def age(r, h: str, seconds: float = MONTH) -> None:
    t = time.time() - seconds
    os.utime(r.objects.path(h), (t, t))


def build_world(repo_dir) -> tuple[dict[str, str], dict[str, str]]:
    """A repository using every kind of root; returns (reachable objects, garbage objects) by name."""
    r = open_repository(repo_dir)
    k: dict[str, str] = {}
    for name in ("cmd_ir", "cmd_ir2", "init", "old_x", "x", "fir", "out", "reflog_only", "rec_in", "rec_out",
                 "queue_in", "hist_out", "hist_in"):
        k[name] = value(r, name)
    k["task"] = store_task(r.objects, TaskObject(k["cmd_ir"], (("tasks", "t", "function_ir"), ("inputs", "x")), ("tasks", "t", "output")))
    k["queued_task"] = store_task(r.objects, TaskObject(k["cmd_ir2"], (("inputs", "x"),), ("tasks", "u", "output")))
    structure = {"inputs": {"x": DatasetSpec(east.StringType, True)}}
    k["package"] = store_package(r.objects, Package({"t": k["task"]}, structure, {("inputs", "x"): DatasetRef("value", k["init"])}))
    ws_state = east.struct({"packageName": "demo", "packageVersion": "1.0.0", "packageHash": k["package"],
                            "deployedAt": datetime.now(timezone.utc), "currentRunId": east.none})
    k["ws_state"] = r.objects.write(east.encode(ws_state, WorkspaceStateType))

    refs.update(r, "refs/packages/demo/1.0.0", refs.write_state(r, {("package",): k["package"]}, None, "import"))
    c1 = refs.write_state(r, {(".workspace",): k["ws_state"], ("inputs", "x"): k["old_x"]}, None, "deploy")
    c2 = refs.write_state(r, {(".workspace",): k["ws_state"], ("inputs", "x"): k["x"], ("tasks", "t", "function_ir"): k["fir"],
                              ("tasks", "t", "output"): k["out"]}, c1, "run")
    lost = refs.write_state(r, {("inputs", "x"): k["reflog_only"]}, c2, "mistake")
    refs.update(r, "refs/workspaces/dev", c2)
    refs.update(r, "refs/workspaces/dev", lost)
    refs.update(r, "refs/workspaces/dev", c2, lost, "undo")  # `lost` now only in the reflog

    now = records.now()
    # Embedded in its pointer, not an object: its inputs and output are what must be kept.
    records.write(r, "a" * 64, records.Record("success", "e1", (k["rec_in"],), now, now, k["rec_out"]))
    k["hist_record"] = records.store(r, records.Record("success", "e0", (k["hist_in"],), now, now, k["hist_out"]))
    refs.update(r, "refs/tasks/dev/t", refs.write_state(r, {("execution",): k["hist_record"]}, None, "ran"))
    queue.enqueue(r, "local", queue.Entry(queue.new_execution_id(), "dev", "u", k["queued_task"], "b" * 64, (k["queue_in"],), ("tasks", "u", "output")))

    garbage = {name: value(r, name) for name in ("g1", "g2", "g3")}
    for h in list(k.values()) + list(garbage.values()):
        age(r, h)  # everything is old: only reachability keeps it
    return k, garbage


def present(repo_dir, h: str) -> bool:
    return open_repository(repo_dir).objects.exists(h)


def test_gc_keeps_everything_reachable_and_removes_old_garbage(repo, e3):
    keep, garbage = build_world(repo)
    out = e3("repo", "gc", repo).out
    assert "Removed 3 unreachable object(s)" in out
    assert [n for n, h in keep.items() if not present(repo, h)] == []
    assert [n for n, h in garbage.items() if present(repo, h)] == []
    run("e3-rev-parse", "--repo", repo, "dev.tasks.t.output", "dev@{1}.inputs.x", "dev~1.inputs.x")


def test_gc_keeps_unreachable_objects_inside_the_grace_period(repo, e3):
    r = open_repository(repo)
    fresh, week_old, old = value(r, "fresh"), value(r, "week"), value(r, "old")
    age(r, week_old, 7 * 86400)
    age(r, old)
    assert "Removed 1 unreachable object(s)" in e3("repo", "gc", repo).out
    assert present(repo, fresh) and present(repo, week_old) and not present(repo, old)
    e3("repo", "gc", repo, "--prune=3.days.ago")
    assert present(repo, fresh) and not present(repo, week_old)
    e3("repo", "gc", repo, "--prune=now")
    assert not present(repo, fresh)


def test_gc_never_removes_an_object_newer_than_its_start(repo, e3):
    r = open_repository(repo)
    future = value(r, "written while gc runs")
    t = time.time() + 60
    os.utime(r.objects.path(future), (t, t))
    e3("repo", "gc", repo, "--prune=now")
    assert present(repo, future)


def test_gc_prune_never_removes_nothing(repo, e3):
    r = open_repository(repo)
    old = value(r, "old")
    age(r, old, 10 * 365 * 86400)
    e3("repo", "gc", repo, "--prune=never")
    assert present(repo, old)


def test_gc_dry_run_lists_and_removes_nothing(repo, e3):
    _, garbage = build_world(repo)
    before = sorted(p for p in (repo / ".e3" / "objects").rglob("*") if p.is_file())
    out = e3("repo", "gc", repo, "--dry-run", "-v").out
    assert "Would remove 3 unreachable object(s)" in out
    assert sorted(line.split()[-1] for line in out.splitlines() if line.startswith("would remove")) == sorted(garbage.values())
    assert sorted(p for p in (repo / ".e3" / "objects").rglob("*") if p.is_file()) == before


def test_gc_removes_old_temporary_files_only(repo, e3):
    tmp = repo / ".e3" / "tmp"
    old, new = tmp / "obj-old.tmp", tmp / "obj-new.tmp"
    old.write_text("x")
    new.write_text("y")
    t = time.time() - MONTH
    os.utime(old, (t, t))
    assert "Removed 1 temporary file(s)" in e3("repo", "gc", repo).out
    assert not old.exists() and new.exists()
    e3("repo", "gc", repo, "--prune=now")
    assert new.exists(), "a temporary file younger than an hour may be a write in progress"


def test_gc_packs_git_objects_and_refs_and_prunes_unreachable_loose_ones(repo, e3):
    keep, _ = build_world(repo)
    r = open_repository(repo)
    stray = str(r.git.create_blob(b"unreachable git blob"))
    stray_path = repo / ".e3" / "objects" / stray[:2] / stray[2:]
    t = time.time() - MONTH
    os.utime(stray_path, (t, t))
    e3("repo", "gc", repo)
    loose = [p for p in (repo / ".e3" / "objects").glob("??/*") if len(p.name) == 38]
    assert loose == []
    assert list((repo / ".e3" / "objects" / "pack").glob("*.pack"))
    assert (repo / ".e3" / "packed-refs").exists()
    assert "refs/workspaces/dev" in run("e3-show-ref", "--repo", repo).out
    run("e3-rev-parse", "--repo", repo, "dev.tasks.t.output", "dev@{1}.inputs.x")
    c = run("e3-rev-parse", "--repo", repo, "dev~1").out.strip()
    run("e3-update-ref", "--repo", repo, "refs/workspaces/dev", c, "dev")
    run("e3-update-ref", "--repo", repo, "-d", "refs/packages/demo/1.0.0")
    assert "refs/packages" not in run("e3-show-ref", "--repo", repo).out
    subprocess.run(["git", f"--git-dir={repo}/.e3", "fsck", "--no-dangling"], check=True, capture_output=True)
    assert [n for n, h in keep.items() if not present(repo, h)] == []


def test_gc_refuses_to_remove_anything_when_a_package_object_is_missing(repo, e3):
    keep, garbage = build_world(repo)
    os.unlink(open_repository(repo).objects.path(keep["package"]))
    r = e3("repo", "gc", repo, "--prune=now", expect=128)
    assert_one_line_error(r, "refusing to collect garbage", "missing package", keep["package"], "e3-fsck")
    assert all(present(repo, h) for h in garbage.values())


def test_gc_refuses_while_another_gc_runs(repo, e3):
    holder = subprocess.Popen(
        [sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {str(LIB)!r})
from e3.storage.repository import open_repository
from e3.storage.locks import Lock
l = Lock(open_repository({str(repo)!r}), "gc", "gc").acquire()
print("held", flush=True)
time.sleep(30)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_one_line_error(e3("repo", "gc", repo, expect=128), "lock gc is held")
    finally:
        holder.kill()
        holder.wait()


def test_gc_rejects_a_bad_prune_age(repo, e3):
    assert_one_line_error(e3("repo", "gc", repo, "--prune=soonish", expect=2), "invalid prune expiry")


def test_gc_of_a_missing_repository_is_fatal(tmp_path, e3):
    assert_one_line_error(e3("repo", "gc", tmp_path / "nope", expect=128), "not an e3 repository")


# ---------------------------------------------------------------- gc racing writers

_WRITER = """
import os, sys, time
sys.path.insert(0, {lib!r})
from e3.storage.repository import open_repository
from e3.storage import refs
from e3.errors import RefMoved
r = open_repository({repo!r})
n, stop = int(sys.argv[1]), sys.argv[2]
old_garbage = sys.argv[3:]
name = f"refs/workspaces/w{{n}}"
i = 0
with open({log!r} + str(n), "w") as log:
    while not os.path.exists(stop) or i < 5:
        h = r.objects.write(f"writer {{n}} value {{i}}".encode())
        entries = {{("inputs", "v"): h}}
        if i < len(old_garbage):  # re-store an old unreachable object and reference it: freshening must save it
            entries[("inputs", "revived")] = r.objects.write(bytes.fromhex(old_garbage[i]))
        cur = refs.read(r, name)
        refs.update(r, name, refs.write_state(r, entries, cur, f"step {{i}}"), cur or refs.ZERO, "write")
        log.write(h + "\\n")
        log.flush()
        r.objects.write(f"writer {{n}} unreferenced {{i}}".encode())  # new garbage: newer than gc, kept
        i += 1
"""


def test_gc_racing_eight_writers_removes_nothing_reachable_or_new(repo, tmp_path):
    r = open_repository(repo)
    old_garbage_payloads = [f"old garbage {i}".encode() for i in range(16)]
    old_garbage = [r.objects.write(p) for p in old_garbage_payloads]
    for h in old_garbage:
        age(r, h)
    log = str(tmp_path / "written-")
    script = _WRITER.format(lib=str(LIB), repo=str(repo), log=log)
    stop = tmp_path / "stop"  # the writers go on until two gcs have run alongside them, however slow the machine
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(n), str(stop),
                          *[p.hex() for p in old_garbage_payloads[2 * n: 2 * n + 2]]])
        for n in range(8)
    ]
    gcs = 0
    while any(w.poll() is None for w in writers):
        run("e3", "repo", "gc", repo, timeout=120)
        gcs += 1
        if gcs == 2:
            stop.touch()
    assert all(w.wait() == 0 for w in writers)
    assert gcs >= 2
    written = [h for n in range(8) for h in open(log + str(n)).read().split()]
    assert len(written) >= 40
    missing = [h for h in written if not present(repo, h)]
    assert missing == []
    import hashlib

    for n in range(8):
        count = len(open(log + str(n)).read().split())
        new_garbage = [hashlib.sha256(f"writer {n} unreferenced {i}".encode()).hexdigest() for i in range(count)]
        assert all(present(repo, h) for h in new_garbage), "unreachable but written after gc started"
    reach = __import__("e3.repo.reachability").repo.reachability.reachable(open_repository(repo), check_objects=True)
    assert reach.problems == []
    assert all(present(repo, h) for h in old_garbage), "revived objects are referenced now"
    for n in range(8):
        assert len(list(refs.history(r, refs.read(r, f"refs/workspaces/w{n}")))) >= 5


# ---------------------------------------------------------------- status


def test_status_counts_objects_refs_workspaces_queue_and_executions(repo, e3):
    keep, _ = build_world(repo)
    r = open_repository(repo)
    now = records.now()
    me = __import__("e3.process").process.Holder.me()
    records.write(r, "c" * 64, records.Record("running", "e2", (), now, pid=me.pid, pid_start_time=me.start_time, boot_id=me.boot_id))
    records.write(r, "d" * 64, records.Record("running", "e3", (), now, pid=me.pid, pid_start_time=me.start_time + 1, boot_id=me.boot_id))
    out = e3("repo", "status", repo).out
    n_objects = len(list(r.objects))
    assert f"objects:     {n_objects} (" in out
    assert "packages:    1 (demo@1.0.0)" in out
    assert "workspaces:  1\n  dev: deployed demo@1.0.0, 3 dataset value(s)" in out
    assert "task histories: 1" in out
    assert "queued:      1 pending, 0 claimed\n  local: 1 pending, 0 claimed" in out
    assert "executions:  3 task ids (1 dead, 1 running, 1 success)" in out
    assert f"running:     1\n  {'c' * 64}" in out


def test_status_of_an_empty_repository_tolerates_missing_directories(repo, e3):
    for d in ("queue", "tasks", "tmp"):
        os.rmdir(repo / ".e3" / d)
    out = e3("repo", "status", repo).out
    assert "objects:     0 (0 B)" in out and "queued:      0 pending, 0 claimed" in out and "running:     0" in out


def test_status_of_a_missing_repository_is_fatal(tmp_path, e3):
    assert_one_line_error(e3("repo", "status", tmp_path, expect=128), "not an e3 repository")


# ---------------------------------------------------------------- remove


def test_remove_without_a_terminal_or_force_refuses(repo, e3):
    r = e3("repo", "remove", repo, expect=128)
    assert_one_line_error(r, "refusing to remove", "--force")
    assert (repo / ".e3").is_dir()


def test_remove_force_deletes_only_the_repository(repo, e3):
    (repo / "notes.txt").write_text("mine")
    assert "Removed e3 repository" in e3("repo", "remove", "--force", repo).out
    assert not (repo / ".e3").exists() and (repo / "notes.txt").read_text() == "mine"
    assert [p.name for p in repo.iterdir()] == ["notes.txt"]


def test_remove_asks_on_a_terminal_and_keeps_the_repository_on_no(repo):
    import pty

    def ask(answer: bytes) -> bytes:
        pid, fd = pty.fork()
        if pid == 0:
            env = command_env()
            os.execvpe("e3", ["e3", "repo", "remove", str(repo)], env)
        out = b""
        while b"[y/N]" not in out:
            out += os.read(fd, 1024)
        os.write(fd, answer)
        while True:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.waitpid(pid, 0)
        return out

    assert b"not removed" in ask(b"n\n")
    assert (repo / ".e3").is_dir()
    assert b"Removed e3 repository" in ask(b"y\n")
    assert not (repo / ".e3").exists()


def test_remove_refuses_a_repository_in_use_unless_forced(repo, e3):
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {str(LIB)!r})
from e3.storage.repository import open_repository
from e3.storage.locks import Lock
l = Lock(open_repository({str(repo)!r}), "dataflow-dev", "dataflow").acquire()
print("held", flush=True)
time.sleep(30)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_one_line_error(e3("repo", "remove", repo, expect=128), "in use", "dataflow-dev")
        assert (repo / ".e3").is_dir()
        e3("repo", "remove", "--force", repo)
        assert not (repo / ".e3").exists()
    finally:
        holder.kill()
        holder.wait()


def test_remove_of_a_directory_that_is_not_a_repository_is_fatal(tmp_path, e3):
    (tmp_path / "x").mkdir()
    assert_one_line_error(e3("repo", "remove", "--force", tmp_path / "x", expect=128), "not an e3 repository")
    assert (tmp_path / "x").is_dir()
