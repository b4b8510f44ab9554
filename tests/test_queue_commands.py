"""e3-enqueue and e3-run-task from the command line: output, exit codes, bad input."""
from __future__ import annotations

import signal
import subprocess
import time

from e3_testing.commands import assert_one_line_error, command_env, run

from e3.storage import queue
from e3.storage.repository import open_repository


def test_run_task_once_on_an_empty_queue_prints_nothing_and_exits_0(repo):
    r = run("e3-run-task", repo, "--once")
    assert r.out == "" and r.err == ""


def test_run_task_is_also_e3_run_task(repo):
    run("e3", "run-task", repo, "--once", "-q")


def test_run_task_on_a_missing_repository_is_fatal(tmp_path):
    r = run("e3-run-task", tmp_path / "nope", "--once", expect=128)
    assert_one_line_error(r, "not an e3 repository")


def test_run_task_refuses_a_runner_name_with_a_slash(repo):
    r = run("e3-run-task", repo, "--once", "--runner", "../x", expect=2)
    assert_one_line_error(r, "invalid runner name")


def test_run_task_refuses_zero_workers(repo):
    r = run("e3-run-task", repo, "--workers", "0", expect=2)
    assert "must be at least 1" in r.err


def test_run_task_refuses_a_non_positive_timeout(repo):
    r = run("e3-run-task", repo, "--timeout", "0", expect=2)
    assert "must be positive" in r.err


def test_enqueue_on_a_missing_repository_is_fatal(tmp_path):
    r = run("e3-enqueue", tmp_path / "nope", "dev", expect=128)
    assert_one_line_error(r, "not an e3 repository")


def test_a_running_run_task_tells_e3_start_it_serves_the_queue(repo):
    r = open_repository(repo)
    assert not queue.served(r, "local")
    worker = subprocess.Popen(["e3-run-task", str(repo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
    try:
        deadline = time.monotonic() + 30
        while not queue.served(r, "local"):
            assert worker.poll() is None and time.monotonic() < deadline, "e3-run-task never announced itself"
            time.sleep(0.05)
        assert not queue.served(r, "other")
    finally:
        worker.send_signal(signal.SIGINT)
        worker.communicate(timeout=15)
    assert not queue.served(r, "local")
