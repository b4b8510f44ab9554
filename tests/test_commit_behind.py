"""e3 start makes each batch of finished outputs durable in the background
(Scheduler.flush_behind): tasks go on running while the file system syncs, the batch is
committed once that is done, and a failed sync still ends the run with its error, keeping
what was committed before."""
from __future__ import annotations

import threading
import time

import pytest
from e3_testing.commands import deployed, run

from e3 import sdk
from e3.east import East, IntegerType

HELD = 30.0
"""Most seconds the first sync is held back: a run that waits for it stands still that long."""


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


def _run(repo, first_sync, observe=lambda kind, report: None):
    """Carry out `e3 start`'s run in this process, its first sync of the object store done by
    `first_sync(real_sync, finished)` (`finished`: tasks settled so far, read from another thread)."""
    from e3.exec import start
    from e3.storage.repository import open_repository

    finished = [0]
    started = start.WorkspaceRun(open_repository(repo), "dev", concurrency=2)
    objects = started.repo.objects
    real, calls = objects.sync, [0]

    def sync():
        calls[0] += 1
        return first_sync(real, finished) if calls[0] == 1 else real()

    def observer(kind, report):
        if kind == "end":
            finished[0] += 1
        observe(kind, report)

    objects.sync = sync
    for _ in started.steps(observer):
        pass
    return started.summary


def test_tasks_go_on_running_while_a_batch_is_made_durable(tmp_path):
    repo = _slow_then_chain(tmp_path, 20)
    during = []

    def held(sync, finished):
        # The chain goes on only if this run does not wait for the sync.
        at = finished[0]
        deadline = time.monotonic() + HELD
        while finished[0] < at + 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        during.append(finished[0] - at)
        return sync()

    summary = _run(repo, held)
    assert during and during[0] >= 10, during
    assert {r.state for r in summary.reports.values()} == {"ran"}
    assert run("e3", "get", repo, "dev.tasks.step19.output").out.strip() == "1"
    assert summary.commits >= 2  # the held batch, then the rest
    run("e3-fsck", "--repo", repo)


def test_a_sync_that_fails_in_the_background_ends_the_run_with_its_error(tmp_path):
    from e3.errors import StorageError

    repo = _slow_then_chain(tmp_path, 5)

    def failing(sync, finished):
        raise StorageError("input/output error syncing the object store (a test's)")

    with pytest.raises(StorageError, match="input/output error"):
        _run(repo, failing)
    # Nothing half-done: the run's lock is free, and the next run finishes the work.
    out = run("e3", "start", repo, "dev").out
    assert "6 tasks" in out, out
    assert run("e3", "get", repo, "dev.tasks.step04.output").out.strip() == "1"
    run("e3-fsck", "--repo", repo)


def test_no_thread_of_a_run_outlives_it_when_it_ends_by_another_error(tmp_path):
    repo = _slow_then_chain(tmp_path, 20)
    order: list[str] = []
    syncing = threading.Event()

    def slow(sync, finished):
        syncing.set()
        time.sleep(1.0)
        sync()
        order.append("synced")

    def observe(kind, report):
        if syncing.is_set():
            raise RuntimeError("an observer's error")

    with pytest.raises(RuntimeError, match="an observer's error"):
        _run(repo, slow, observe)
    assert order == ["synced"]  # done before the error reached us
    assert not [t for t in threading.enumerate() if t.name.startswith("e3-sync")]
    out = run("e3", "start", repo, "dev").out
    assert "21 tasks" in out, out
    assert run("e3", "get", repo, "dev.tasks.step19.output").out.strip() == "1"
    run("e3-fsck", "--repo", repo)
