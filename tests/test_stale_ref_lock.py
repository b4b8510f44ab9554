"""A ref lock file left by a writer killed between creating and renaming it must not block e3 forever."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from conftest import assert_one_line_error, command_env, run


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
