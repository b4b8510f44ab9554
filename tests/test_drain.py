"""A run that completes leaves nothing of its workspace on the queue that it did not decide on.

A killed `e3 start` (and `e3-enqueue` without a worker) leaves entries on the
queue. The next `e3 start` of that workspace runs those still current (their
own entries, under their execution ids) and drops the superseded ones with an
`error` record saying why, so no later worker runs them on old inputs.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from e3_testing.commands import command_env, deployed, run, write

from e3 import sdk
from e3.east import East, IntegerType


def _hold(marker: Path, name: str, source):
    """A shell task that copies its input once `marker` is gone (and waits while it exists)."""
    script = f"while [ -e '{marker}' ]; do sleep 0.05; done; cp "
    return sdk.custom_task(name, [source], IntegerType, lambda b, inputs, output: East.str(script, sdk.quote(inputs.get(0)), " ", sdk.quote(output)))


def _package(marker: Path):
    """x -> a (x + 1) -> held (waits on `marker`) -> b (+ 1); x -> side (x * 2)."""
    x = sdk.input("x", IntegerType, 1)
    a = sdk.task("a", [x], East.function([IntegerType], IntegerType, lambda blk, v: v + 1))
    held = _hold(marker, "held", a.output)
    b = sdk.task("b", [held.output], East.function([IntegerType], IntegerType, lambda blk, v: v + 1))
    side = sdk.task("side", [x], East.function([IntegerType], IntegerType, lambda blk, v: v * 2))
    return sdk.package("drain", "1.0.0", b, side)


def _deploy(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "hold"
    zip_path = tmp_path / "drain.zip"
    sdk.export(_package(marker), zip_path)
    return deployed(tmp_path, zip_path, "drain@1.0.0"), marker


def _entries(repo: Path) -> list[Path]:
    """Queue entries, pending or claimed, of every runner."""
    q = repo / ".e3" / "queue"
    return sorted(p for p in q.glob("*/*.cbor")) + sorted(q.glob("*/claimed/*.cbor"))


def _kill_start_while_held(repo: Path, marker: Path) -> None:
    """Start a run, wait until `held` is claimed, then kill -9 the run with its workers."""
    marker.touch()
    proc = subprocess.Popen(
        ["e3", "start", str(repo), "dev"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=command_env(), start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not any(_entry_task(p) == "held" for p in _entries(repo)):
            assert time.monotonic() < deadline, "held was never claimed"
            assert proc.poll() is None, "e3 start ended before held was claimed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _entry_task(path: Path) -> str | None:
    from e3.storage.queue import decode_claim_file
    from e3.errors import FormatError

    try:
        return decode_claim_file(path.read_bytes())[0].task
    except (FormatError, FileNotFoundError):
        return None


def _entry(path: Path):
    from e3.storage.queue import decode_claim_file

    return decode_claim_file(path.read_bytes())[0]


def _record(repo: Path, task_id: str):
    from e3.storage import records
    from e3.storage.repository import open_repository

    return records.latest(open_repository(repo), task_id)


def _nothing_left_for_a_worker(repo: Path) -> None:
    assert _entries(repo) == []
    assert run("e3-run-task", repo, "--once").out == ""  # a later worker finds nothing to run


def test_a_start_after_a_killed_one_runs_its_current_entry_under_its_own_execution_id(tmp_path):
    repo, marker = _deploy(tmp_path)
    _kill_start_while_held(repo, marker)
    (left,) = [_entry(p) for p in _entries(repo) if _entry_task(p) == "held"]
    marker.unlink()
    out = run("e3", "start", repo, "dev").out
    assert "ran held" in out and "dropped" not in out, out
    _nothing_left_for_a_worker(repo)
    rec = _record(repo, left.task_id)
    assert rec.kind == "success" and rec.execution_id == left.execution_id  # the entry itself ran
    assert run("e3", "get", repo, "dev.tasks.b.output").out == "3\n"


def test_a_start_after_a_killed_one_drops_superseded_entries_with_a_record_saying_why(tmp_path):
    repo, marker = _deploy(tmp_path)
    _kill_start_while_held(repo, marker)
    (left,) = [_entry(p) for p in _entries(repo) if _entry_task(p) == "held"]
    marker.unlink()
    run("e3", "set", repo, "dev.inputs.x", write(tmp_path, "x.east", "10"))
    r = run("e3", "start", repo, "dev")
    assert "ran held" in r.out and f"dropped: held: {left.execution_id}: its inputs changed since it was queued" in r.out, r.out
    _nothing_left_for_a_worker(repo)
    rec = _record(repo, left.task_id)
    assert rec.kind == "error" and rec.execution_id == left.execution_id
    assert "dropped from the queue by e3 start: its inputs changed since it was queued" in rec.message
    assert run("e3", "get", repo, "dev.tasks.b.output").out == "12\n"
    run("e3-fsck", "--repo", repo)


def test_a_start_drains_entries_queued_by_hand_that_no_worker_took(tmp_path):
    repo, marker = _deploy(tmp_path)
    queued = dict(line.split()[::-1] for line in run("e3-enqueue", repo, "dev", "-v").out.splitlines())
    assert set(queued) == {"a", "side"}
    run("e3", "set", repo, "dev.inputs.x", write(tmp_path, "x.east", "5"))
    r = run("e3", "start", repo, "dev")
    assert "dropped: a:" in r.out and "dropped: side:" in r.out, r.out
    _nothing_left_for_a_worker(repo)
    assert run("e3", "get", repo, "dev.tasks.b.output").out == "7\n"
    # Queued again on the inputs the workspace holds now, then started: the entry is run, not dropped.
    run("e3", "set", repo, "dev.inputs.x", write(tmp_path, "x.east", "6"))
    queued = dict(line.split()[::-1] for line in run("e3-enqueue", repo, "dev", "-v").out.splitlines())
    r = run("e3", "start", repo, "dev")
    assert "dropped" not in r.out and "ran a" in r.out and "ran side" in r.out, r.out
    _nothing_left_for_a_worker(repo)
    from e3.storage import queue  # noqa: F401 - the records name the queued executions

    assert {_record(repo, _task_id(repo, t)).execution_id for t in ("a", "side")} == {queued["a"], queued["side"]}


def _task_id(repo: Path, task: str) -> str:
    """The task_id of `task` on the workspace's current inputs."""
    from e3.repo import workspace
    from e3.storage.identity import task_id
    from e3.model.task import load_task
    from e3.storage.repository import open_repository

    r = open_repository(repo)
    view = workspace.read(r, "dev")
    h = view.package.tasks[task]
    return task_id(h, [view.datasets[p] for p in load_task(r.objects, h).inputs])


def test_a_filtered_start_leaves_other_tasks_entries_for_a_run_that_decides_on_them(tmp_path):
    repo, marker = _deploy(tmp_path)
    run("e3-enqueue", repo, "dev")
    r = run("e3", "start", repo, "dev", "--filter", "side")
    assert "dropped" not in r.out
    assert [_entry_task(p) for p in _entries(repo)] == ["a"]
    run("e3", "start", repo, "dev")
    _nothing_left_for_a_worker(repo)


def test_a_start_after_a_killed_one_tries_again_a_task_whose_failure_that_run_recorded(tmp_path):
    # The killed run's worker recorded `held`'s failure (a full disk, say) and the run died
    # before completing its claim: that execution has ended. The next run retries the task
    # under a new execution, as any run retries a failure; the old entry is only completed.
    from e3.exec.invocation import Outcome
    from e3.exec.queue_worker import record_outcome
    from e3.storage import records
    from e3.storage.repository import open_repository

    repo, marker = _deploy(tmp_path)
    _kill_start_while_held(repo, marker)
    (left,) = [_entry(p) for p in _entries(repo) if _entry_task(p) == "held"]
    record_outcome(open_repository(repo), left, Outcome("failed", exit_code=1, message="exited with status 1"), records.now())
    marker.unlink()
    r = run("e3", "start", repo, "dev")
    assert "ran held" in r.out and "failed" not in r.out and "dropped" not in r.out, r.out
    _nothing_left_for_a_worker(repo)
    rec = _record(repo, left.task_id)
    assert rec.kind == "success" and rec.execution_id != left.execution_id
    assert run("e3", "get", repo, "dev.tasks.b.output").out == "3\n"
    run("e3-fsck", "--repo", repo)
