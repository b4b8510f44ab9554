"""A ref lock file left by a writer killed between creating and renaming it must not block e3 forever."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from e3_testing.commands import assert_one_line_error, command_env, run


def _lock_file(repo) -> str:
    return str(repo / ".e3" / "refs" / "workspaces" / "dev.lock")


def test_a_dead_writers_ref_lock_is_broken_and_the_update_goes_through(repo, tmp_path):
    run("e3", "workspace", "create", repo, "dev")
    lock = _lock_file(repo)
    with open(lock, "w") as f:
        f.write("")  # what a writer killed mid-update leaves: nobody holds it
    past = time.time() - 10
    os.utime(lock, (past, past))
    run("e3", "update-ref", "-m", "after a crash", "refs/workspaces/dev", run("e3", "rev-parse", "dev", cwd=repo).out.strip(), cwd=repo)
    assert not os.path.exists(lock)


def test_a_live_writers_ref_lock_is_respected(repo, tmp_path):
    run("e3", "workspace", "create", repo, "dev")
    lock = _lock_file(repo)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import fcntl,os,sys,time; fd=os.open({lock!r}, os.O_CREAT|os.O_WRONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.utime(fd, (1, 1)); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, env=command_env(),
    )
    try:
        assert holder.stdout.readline().strip() == b"held"
        head = run("e3", "rev-parse", "dev", cwd=repo).out.strip()
        r = run("e3", "update-ref", "refs/workspaces/dev", head, cwd=repo, expect=None)
        assert r.returncode != 0
        assert_one_line_error(r, "cannot lock ref")
        assert os.path.exists(lock)
    finally:
        holder.kill()
        holder.wait()


# Takes the ref's lock, forks a child that outlives it, and waits to be killed.
LOCK_AND_FORK = """
import os, sys, time
from e3.storage import refs
from e3.storage.repository import open_repository
lock = refs._Lock.acquire(open_repository(sys.argv[1]), "refs/workspaces/dev")
child = os.fork()
if child == 0:
    os.write(1, b"child\\n")  # os.fork has returned here: the at-fork hooks have run (one write: lines never interleave)
    time.sleep(60)
    os._exit(0)
os.write(1, b"%d\\n" % child)
time.sleep(60)
"""


def test_a_forked_child_does_not_keep_its_dead_parents_ref_lock_alive(repo):
    run("e3", "workspace", "create", repo, "dev")
    head = run("e3", "rev-parse", "dev", cwd=repo).out.strip()
    parent = subprocess.Popen([sys.executable, "-c", LOCK_AND_FORK, str(repo)], stdout=subprocess.PIPE, env=command_env())
    lines = {parent.stdout.readline().strip(), parent.stdout.readline().strip()}
    lines.discard(b"child")
    child = int(lines.pop())
    try:
        parent.send_signal(signal.SIGKILL)  # the writer dies between taking the lock and renaming it
        parent.wait()
        lock = _lock_file(repo)
        past = time.time() - 10
        os.utime(lock, (past, past))
        # Its child lives on; had it kept the lock file's descriptor, the lock would look held.
        run("e3", "update-ref", "-m", "after a crash", "refs/workspaces/dev", head, cwd=repo)
        assert not os.path.exists(lock)
    finally:
        os.kill(child, signal.SIGKILL)
