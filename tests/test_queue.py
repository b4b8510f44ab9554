"""The durable queue (e3.storage.queue): whole entries, one claimer each, dead claims requeued at once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from e3_testing.commands import command_env

from e3.errors import UsageError
from e3.storage import queue
from e3.storage.repository import open_repository

H = "ab" * 32


def entry(n: int = 0, **kw) -> queue.Entry:
    fields = dict(
        execution_id=queue.new_execution_id(), workspace="dev", task=f"t{n}", task_hash=H,
        task_id=f"{n:064x}", input_hashes=(H,), output=("tasks", f"t{n}", "output"),
    )
    fields.update(kw)
    return queue.Entry(**fields)


def child(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, env=command_env())


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


CLAIM_AND_WAIT = """
import sys, time
from e3.storage.repository import open_repository
from e3.storage import queue
c = queue.claim(open_repository(sys.argv[1]), "local")
print(c.execution_id if c else "none", flush=True)
time.sleep(60)
"""

CLAIM_ALL = """
import sys
from e3.storage.repository import open_repository
from e3.storage import queue
claimer = queue.Claimer(open_repository(sys.argv[1]), "local")
while (c := claimer.claim()) is not None:
    print(c.execution_id, flush=True)
    c.complete()
"""


def test_execution_ids_are_uuid7_and_time_ordered():
    ids = [queue.new_execution_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(queue.ID_RE.fullmatch(i) for i in ids)


def test_enqueued_entry_round_trips_and_claims_are_first_in_first_out(repo):
    r = open_repository(repo)
    entries = [entry(i) for i in range(3)]
    for e in entries:
        queue.enqueue(r, "local", e)
    assert sorted(os.listdir(r.path("queue", "local"))) == sorted([e.execution_id + ".cbor" for e in entries] + ["claimed"])
    got = []
    while (c := queue.claim(r, "local")) is not None:
        got.append(c.entry)
        c.complete()
    assert got == entries
    assert os.listdir(r.path("queue", "local", "claimed")) == []
    assert queue.flush_deletions(timeout=30)
    assert os.listdir(r.path("queue", "local", "done")) == []


def test_batch_enqueue_leaves_no_temporary_files(repo):
    r = open_repository(repo)
    ids = queue.enqueue_many(r, "local", [entry(i) for i in range(50)])
    names = os.listdir(r.path("queue", "local"))
    assert sorted(names) == sorted([i + ".cbor" for i in ids] + ["claimed"])
    assert [q.entry.execution_id for q in queue.list_entries(r)] == ids


def test_claim_records_its_holder_and_complete_removes_the_entry(repo):
    r = open_repository(repo)
    e = entry()
    queue.enqueue(r, "local", e)
    c = queue.claim(r, "local")
    [q] = queue.list_entries(r)
    assert q.state == "claimed" and q.entry == e
    assert q.holder.pid == os.getpid() and q.holder.boot_id and q.holder.start_time > 0
    c.complete()
    assert list(queue.list_entries(r)) == []
    assert queue.find(r, e.execution_id) is None


def test_each_entry_is_claimed_by_exactly_one_of_several_worker_processes(repo):
    r = open_repository(repo)
    ids = queue.enqueue_many(r, "local", [entry(i) for i in range(300)])
    procs = [child(CLAIM_ALL, repo) for _ in range(4)]
    claimed = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        claimed += out.decode().split()
    assert sorted(claimed) == sorted(ids)  # none lost, none claimed twice


def test_claim_of_a_killed_worker_is_requeued_at_once(repo):
    r = open_repository(repo)
    e = entry()
    queue.enqueue(r, "local", e)
    p = child(CLAIM_AND_WAIT, repo)
    assert p.stdout.readline().decode().strip() == e.execution_id
    assert queue.requeue_dead(r) == []  # alive: left alone
    assert queue.find(r, e.execution_id).state == "claimed"
    kill(p)
    assert queue.find(r, e.execution_id).state == "dead"
    [back] = queue.requeue_dead(r)
    assert back.entry == e and back.holder.pid == p.pid
    assert queue.find(r, e.execution_id).state == "pending"
    c = queue.claim(r, "local")
    assert c.entry == e  # the holder record was trimmed off: the entry decodes as before
    c.complete()


CLAIM_HALFWAY = """
import fcntl, os, sys, time
d = os.path.join(sys.argv[1], ".e3", "queue", "local")
name = sys.argv[2] + ".cbor"
fd = os.open(os.path.join(d, name), os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
os.rename(os.path.join(d, name), os.path.join(d, "claimed", name))
print("renamed", flush=True)  # killed here: claimed, but no holder written
time.sleep(60)
"""


def test_worker_killed_between_rename_and_holder_write_is_detected_as_dead(repo):
    r = open_repository(repo)
    e = entry()
    queue.enqueue(r, "local", e)
    p = child(CLAIM_HALFWAY, repo, e.execution_id)
    assert p.stdout.readline() == b"renamed\n"
    assert queue.requeue_dead(r) == []
    kill(p)
    [back] = queue.requeue_dead(r)
    assert back.entry == e and back.holder is None


ENQUEUE_CLAIMED_AND_WAIT = """
import sys, time
from e3.storage import files
from e3.storage.repository import open_repository
from e3.storage import queue
files._unnamed_files = sys.argv[2] == "unnamed"
e = queue.Entry(queue.new_execution_id(), "dev", "t", "ab" * 32, "0" * 64, ("ab" * 32,), ("tasks", "t", "output"))
c = queue.enqueue_claimed(open_repository(sys.argv[1]), "local", e)
print(c.execution_id, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["unnamed", "temporary-name"])
def test_an_entry_enqueued_claimed_is_a_live_claim_and_is_requeued_when_its_process_dies(repo, how):
    r = open_repository(repo)
    p = child(ENQUEUE_CLAIMED_AND_WAIT, repo, how)
    eid = p.stdout.readline().decode().strip()
    found = queue.find(r, eid)
    assert found.state == "claimed" and found.holder.pid == p.pid
    assert queue.claim(r, "local") is None and queue.requeue_dead(r) == []
    kill(p)
    [back] = queue.requeue_dead(r)
    assert back.entry.execution_id == eid and queue.claim(r, "local").entry == back.entry
    assert not [n for n in os.listdir(queue.claimed_dir(r, "local")) if n.endswith(".tmp")]


def test_sweep_removes_entries_a_crash_left_half_written_but_not_one_being_written(repo):
    import fcntl

    r = open_repository(repo)
    queue.enqueue(r, "local", entry())
    claimed = queue.claimed_dir(r, "local")
    os.makedirs(claimed, exist_ok=True)
    dead = [os.path.join(queue.runner_dir(r, "local"), ".dead.tmp"), os.path.join(claimed, ".dead.tmp")]
    live = os.path.join(claimed, ".live.tmp")
    for path in dead + [live]:
        with open(path, "wb") as f:
            f.write(b"\xa1")
        os.utime(path, (0, 0))  # old
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # its writer is alive
    try:
        assert queue.sweep_temporaries(r) == 2
        assert not any(os.path.exists(p) for p in dead) and os.path.exists(live)
    finally:
        os.close(fd)
    assert len(queue.pending_names(r, "local")) == 1  # the whole entry stays


def test_release_returns_a_claim_to_the_queue(repo):
    r = open_repository(repo)
    e = entry()
    queue.enqueue(r, "local", e)
    c = queue.claim(r, "local")
    assert queue.claim(r, "local") is None
    c.release()
    assert queue.find(r, e.execution_id).state == "pending"
    assert queue.claim(r, "local").entry == e


def test_a_claim_in_this_process_is_alive_for_requeue_dead_in_this_process(repo):
    r = open_repository(repo)
    queue.enqueue(r, "local", entry())
    c = queue.claim(r, "local")
    assert queue.requeue_dead(r) == []
    c.abandon()  # as if its worker died
    assert len(queue.requeue_dead(r)) == 1


def test_torn_holder_record_is_ignored(repo):
    r = open_repository(repo)
    e = entry()
    queue.enqueue(r, "local", e)
    c = queue.claim(r, "local")
    c.abandon()
    with open(c.path, "r+b") as f:  # a crash halfway through appending the holder
        size = f.seek(0, 2)
        f.truncate(size - 3)
    [q] = queue.list_entries(r)
    assert q.state == "dead" and q.entry == e and q.holder is None
    [back] = queue.requeue_dead(r)
    assert back.entry == e


def test_unreadable_entry_is_set_aside_not_claimed(repo):
    r = open_repository(repo)
    d = r.path("queue", "local")
    queue.enqueue(r, "local", entry())
    bad = queue.new_execution_id()
    (d / f"{bad}.cbor").write_bytes(b"\xff\x00 not cbor")
    got = []
    while (c := queue.claim(r, "local")) is not None:
        got.append(c)
        c.complete()
    assert len(got) == 1
    assert (d / f".{bad}.cbor.corrupt").exists()


def test_counts_per_runner(repo):
    r = open_repository(repo)
    queue.enqueue_many(r, "local", [entry(i) for i in range(3)])
    queue.enqueue(r, "gpu", entry())
    c = queue.claim(r, "local")
    assert queue.counts(r) == {"gpu": (1, 0), "local": (2, 1)}
    c.complete()


@pytest.mark.parametrize("bad", ["", "../x", ".x", "a/b"])
def test_runner_names_that_could_escape_the_queue_are_refused(repo, bad):
    with pytest.raises(UsageError):
        queue.enqueue(open_repository(repo), bad, entry())


def test_e3_starts_claims_write_over_completed_entries_instead_of_creating_files(repo):
    r = open_repository(repo)
    long = entry(1, input_hashes=(H,) * 40)  # a longer entry first: the reuse must trim it
    c = queue.enqueue_claimed(r, "local", long)
    inode = os.stat(c.path).st_ino
    c.complete()
    done = os.path.join(queue.runner_dir(r, "local"), "done")
    assert os.listdir(done)  # kept, not deleted: the next claimed entry is written over it
    short = entry(2)
    c2 = queue.enqueue_claimed(r, "local", short)
    assert os.stat(c2.path).st_ino == inode and not os.listdir(done)
    with open(c2.path, "rb") as f:
        got, _, holder = queue.decode_claim_file(f.read())
    assert got == short and holder.pid == os.getpid()
    assert queue.find(r, short.execution_id).state == "claimed" and queue.requeue_dead(r) == []
    c2.abandon()  # as if this process died: a reused file is requeued like any claim
    [back] = queue.requeue_dead(r)
    assert back.entry == short


def test_a_queue_directory_removed_under_a_running_process_is_made_again(repo):
    # This process remembers the directories it made (e3 start enqueues one entry per
    # task); one removed meanwhile is made again rather than failing the write.
    import shutil

    r = open_repository(repo)
    queue.enqueue_claimed(r, "local", entry(1)).complete()
    shutil.rmtree(queue.queue_dir(r))
    second, third = entry(2), entry(3)
    c = queue.enqueue_claimed(r, "local", second)
    assert queue.find(r, second.execution_id).state == "claimed"
    c.complete()
    shutil.rmtree(queue.queue_dir(r))
    queue.enqueue_many(r, "local", [third], durable=False)
    assert queue.claim(r, "local").entry == third


def test_a_claim_whose_spare_entry_was_deleted_meanwhile_takes_the_next_or_a_new_file(repo):
    # Another process (its reaper) may delete a completed entry this one meant to write over.
    r = open_repository(repo)
    for n in range(3):
        queue.enqueue_claimed(r, "local", entry(n)).complete()
    done = os.path.join(queue.runner_dir(r, "local"), "done")
    for name in os.listdir(done):
        os.unlink(os.path.join(done, name))  # every spare this process knows of is gone
    e = entry(9)
    c = queue.enqueue_claimed(r, "local", e)
    assert queue.find(r, e.execution_id).state == "claimed"
    with open(c.path, "rb") as f:
        assert queue.decode_claim_file(f.read())[0] == e
    assert not [n for n in os.listdir(queue.claimed_dir(r, "local")) if n.endswith(".tmp")]


SPARES_CHILD = r"""
import os, sys
from e3.exec.scheduler import MAX_UNCOMMITTED
from e3.storage import queue
from e3.storage.repository import open_repository
r = open_repository(sys.argv[1])
H = "0" * 64
def entry(n):
    return queue.Entry(execution_id=queue.new_execution_id(), workspace="dev", task=f"t{n}", task_hash=H,
                       task_id=f"{n:064x}", input_hashes=(H,), output=("tasks", f"t{n}", "output"))
claimed = queue.claimed_dir(r, "local")
def batch(first):
    # As e3 start does: up to MAX_UNCOMMITTED claims held until one commit, then completed together.
    claims = [queue.enqueue_claimed(r, "local", entry(first + n)) for n in range(MAX_UNCOMMITTED)]
    inodes = {os.stat(c.path).st_ino for c in claims}
    for c in claims:
        c.complete()
    queue._reaper.flush()
    return inodes
first = batch(0)
done = os.path.join(queue.runner_dir(r, "local"), "done")
kept = len(os.listdir(done))
second = batch(MAX_UNCOMMITTED)
print(MAX_UNCOMMITTED, kept, len(second - first))
"""


def test_a_whole_batch_of_completed_claims_is_written_over_by_the_next_batch(repo):
    # Every file deleted makes the next file creations slower on ext4 without a journal (the
    # inode allocator steps over recently freed inodes): e3 start, which completes up to
    # MAX_UNCOMMITTED claims at each commit, keeps them all to write the next ones over.
    proc = child(SPARES_CHILD, repo)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    batch, kept, new_files = map(int, out.split())
    assert kept == batch and new_files == 0
