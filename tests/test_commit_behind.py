"""e3 start commits finished outputs in the background (Scheduler.flush_behind): tasks go on
running while a commit waits on the disk, and a commit's failure still ends the run with its
error, keeping what was committed before."""
from __future__ import annotations

import threading
import time

import pytest
from e3_testing.commands import deployed, run

from e3 import sdk
from e3.east import East, IntegerType

HELD = 30.0
"""Most seconds the first commit is held back: a run that waits for it stands still that long."""


def _slow_then_chain(tmp_path, n: int):
    """A shell task of half a second (so that a flush falls after it), then a chain of `n`
    shell tasks of 50 ms each, all passing on x (1)."""
    x = sdk.input("x", IntegerType, 1)

    def copy(seconds: float):
        return lambda b, inputs, output: East.str(f"sleep {seconds}; cp ", sdk.quote(inputs.get(0)), " ", sdk.quote(output))

    tasks = [sdk.custom_task("slow", [x], IntegerType, copy(0.5))]
    for i in range(n):
        tasks.append(sdk.custom_task(f"step{i:02d}", [tasks[-1].output], IntegerType, copy(0.05)))
    zip_path = tmp_path / "p.zip"
    sdk.export(sdk.package("behind", "1.0.0", *tasks), zip_path)
    return deployed(tmp_path, zip_path, "behind@1.0.0")


def _run_with_first_commit(repo, commit_first):
    """Carry out `e3 start`'s run in this process, the first commit made by `commit_first(real,
    finished)` (`finished`: the number of tasks settled so far, read from another thread)."""
    from e3.exec import start
    from e3.storage.repository import open_repository

    finished = [0]
    real = start._commit
    calls = [0]

    def commit(repo_, ws, fn, message):
        calls[0] += 1
        if calls[0] == 1:
            return commit_first(lambda: real(repo_, ws, fn, message), finished)
        return real(repo_, ws, fn, message)

    def observe(kind, report):
        if kind == "end":
            finished[0] += 1

    start._commit = commit
    try:
        started = start.WorkspaceRun(open_repository(repo), "dev", concurrency=2)
        for _ in started.steps(observe):
            pass
    finally:
        start._commit = real
    return started.summary


def test_tasks_go_on_running_while_a_commit_waits(tmp_path):
    repo = _slow_then_chain(tmp_path, 20)
    during = []

    def held(commit, finished):
        # The chain goes on only if this run does not wait for its commit.
        at = finished[0]
        deadline = time.monotonic() + HELD
        while finished[0] < at + 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        during.append(finished[0] - at)
        return commit()

    summary = _run_with_first_commit(repo, held)
    assert during and during[0] >= 10, during
    assert {r.state for r in summary.reports.values()} == {"ran"}
    assert run("e3", "get", repo, "dev.tasks.step19.output").out.strip() == "1"
    # Each output is in the workspace's history: one commit's worth, then the rest.
    assert summary.commits >= 2


def test_a_commit_that_fails_in_the_background_ends_the_run_with_its_error(tmp_path):
    from e3.errors import StorageError

    repo = _slow_then_chain(tmp_path, 5)

    def failing(commit, finished):
        raise StorageError("no space left on device writing a pack (a test's)")

    with pytest.raises(StorageError, match="no space left on device"):
        _run_with_first_commit(repo, failing)
    # Nothing half-done: the run's lock is free, and the next run finishes the work.
    out = run("e3", "start", repo, "dev").out
    assert "6 tasks" in out, out
    assert run("e3", "get", repo, "dev.tasks.step04.output").out.strip() == "1"
    run("e3-fsck", "--repo", repo)


def test_a_run_ended_by_another_error_lets_its_background_commit_finish_first(tmp_path):
    """No commit is ever made after the run let go of the workspace: an error in this thread
    waits for the commit running in the background (it holds the workspace's lock)."""
    repo = _slow_then_chain(tmp_path, 20)
    order: list[str] = []
    committing = threading.Event()

    def slow(commit, finished):
        committing.set()
        time.sleep(1.0)
        result = commit()
        order.append("committed")
        return result

    from e3.exec import start
    from e3.storage.repository import open_repository

    real = start._commit
    calls = [0]

    def commit(repo_, ws, fn, message):
        calls[0] += 1
        if calls[0] == 1:
            return slow(lambda: real(repo_, ws, fn, message), None)
        return real(repo_, ws, fn, message)

    def observe(kind, report):
        if committing.is_set():
            raise RuntimeError("an observer's error")

    start._commit = commit
    try:
        started = start.WorkspaceRun(open_repository(repo), "dev", concurrency=2)
        with pytest.raises(RuntimeError, match="an observer's error"):
            for _ in started.steps(observe):
                pass
        assert order == ["committed"]  # done before the error reached us
    finally:
        start._commit = real
    out = run("e3", "start", repo, "dev").out
    assert "21 tasks" in out, out
    assert run("e3", "get", repo, "dev.tasks.step19.output").out.strip() == "1"
    run("e3-fsck", "--repo", repo)
