"""Named repository locks (e3.storage.locks): held across processes, freed by death, naming their holder."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from e3_testing.commands import command_env

from e3.errors import Conflict, UsageError
from e3.storage.locks import Lock, LockHeld, holder, is_held
from e3.storage.repository import open_repository

HOLD = """
import sys, time
from e3.storage.repository import open_repository
from e3.storage.locks import Lock
lock = Lock(open_repository(sys.argv[1]), sys.argv[2], "dataflow", shared=sys.argv[3] == "shared").acquire()
print("held", flush=True)
time.sleep(60)
"""


def hold_in_child(repo, name, mode="exclusive") -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(repo), name, mode], stdout=subprocess.PIPE, env=command_env()
    )
    assert proc.stdout.readline() == b"held\n"
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_lock_held_by_another_process_refuses_without_waiting_and_names_it(repo):
    r = open_repository(repo)
    proc = hold_in_child(repo, "dataflow-dev")
    try:
        with pytest.raises(LockHeld) as e:
            Lock(r, "dataflow-dev", "deployment").acquire(wait=False)
        assert e.value.holder.pid == proc.pid
        assert e.value.holder.operation == "dataflow"
        assert f"pid {proc.pid}" in str(e.value)
        assert isinstance(e.value, Conflict)
    finally:
        kill(proc)


def test_holder_reports_pid_start_time_boot_id_and_command(repo):
    r = open_repository(repo)
    assert holder(r, "dataflow-dev") is None
    proc = hold_in_child(repo, "dataflow-dev")
    try:
        who = holder(r, "dataflow-dev")
        assert who.pid == proc.pid and who.alive()
        assert who.command.startswith("-c")
        assert f"pid {proc.pid}" in who.describe()
    finally:
        kill(proc)


def test_lock_of_a_killed_process_is_free_at_once(repo):
    r = open_repository(repo)
    proc = hold_in_child(repo, "workspace-dev")
    kill(proc)
    assert holder(r, "workspace-dev") is None  # its stale text is not reported
    assert not is_held(r, "workspace-dev")
    with Lock(r, "workspace-dev", "deployment") as lock:
        assert lock.held
        assert holder(r, "workspace-dev").pid == os.getpid()


def test_acquire_with_timeout_gives_up_after_the_timeout(repo):
    r = open_repository(repo)
    proc = hold_in_child(repo, "x")
    try:
        t0 = time.monotonic()
        with pytest.raises(LockHeld):
            Lock(r, "x", "test").acquire(wait=True, timeout=0.2)
        assert time.monotonic() - t0 >= 0.2
    finally:
        kill(proc)


def test_waiting_acquire_gets_the_lock_when_the_holder_dies(repo):
    r = open_repository(repo)
    proc = hold_in_child(repo, "x")
    lock = Lock(r, "x", "test")
    with pytest.raises(LockHeld):
        lock.acquire(wait=False)
    kill(proc)
    lock.acquire(wait=True, timeout=5)
    assert lock.held
    lock.release()
    assert not is_held(r, "x")


def test_shared_locks_coexist_and_exclude_an_exclusive_one(repo):
    r = open_repository(repo)
    proc = hold_in_child(repo, "workspace-dev", "shared")
    try:
        with Lock(r, "workspace-dev", "dataset_write", shared=True):
            pass
        with pytest.raises(LockHeld):
            Lock(r, "workspace-dev", "deployment").acquire(wait=False)
    finally:
        kill(proc)


def test_two_lock_objects_in_one_process_exclude_each_other(repo):
    r = open_repository(repo)
    with Lock(r, "x", "a"):
        with pytest.raises(LockHeld):
            Lock(r, "x", "b").acquire(wait=False)


FORK_AND_HOLD = """
import os, sys, time
from e3.storage.repository import open_repository
from e3.storage.locks import Lock
lock = Lock(open_repository(sys.argv[1]), "x", "dataflow").acquire()
child = os.fork()
if child == 0:  # by now the at-fork hook has closed the lock's descriptor here
    os.write(1, b"child\\n")  # one write each: the two processes share the pipe
    time.sleep(30)
    os._exit(0)
os.write(1, b"%d\\n" % child)
time.sleep(60)
"""


def test_a_forked_child_does_not_keep_its_dead_parents_lock(repo):
    r = open_repository(repo)
    proc = subprocess.Popen([sys.executable, "-c", FORK_AND_HOLD, str(repo)], stdout=subprocess.PIPE, env=command_env())
    lines = {proc.stdout.readline().strip(), proc.stdout.readline().strip()}
    lines.discard(b"child")
    child = int(lines.pop())
    try:
        assert is_held(r, "x")
        kill(proc)  # the parent dies; its forked child lives on
        # the child drops the lock in its at-fork hook, which may not have run yet on a loaded machine
        deadline = time.monotonic() + 5
        while is_held(r, "x") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not is_held(r, "x")
    finally:
        os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "a..b"])
def test_lock_names_that_could_escape_locks_dir_are_refused(repo, bad):
    with pytest.raises(UsageError):
        Lock(open_repository(repo), bad, "test")


CHURN = """
import sys
from e3.storage.repository import open_repository
from e3.storage.locks import Lock
r = open_repository(sys.argv[1])
print("go", flush=True)
while True:
    with Lock(r, "x", "deployment"):
        pass
"""


def test_a_refused_acquire_names_the_holder_even_while_holders_come_and_go(repo):
    # Holders write their text just after taking the lock and clear it just before leaving:
    # a refusal in between must still name the holder (callers decide by its operation).
    r = open_repository(repo)
    p = subprocess.Popen([sys.executable, "-c", CHURN, str(repo)], stdout=subprocess.PIPE, env=command_env())
    assert p.stdout.readline() == b"go\n"
    try:
        refusals = 0
        for _ in range(300):
            try:
                Lock(r, "x", "test").acquire(wait=False).release()
            except LockHeld as e:
                refusals += 1
                assert e.holder is not None and e.holder.operation == "deployment"
    finally:
        kill(p)
