"""The worker (e3.exec.queue_worker): memo first, outcome recorded once, claims completed last, timeouts."""
from __future__ import annotations

import sys

from e3_testing.runner_tasks import Integer, bash_command, east_task, function, make_task, value

from e3_testing.commands import run_workers
from e3.storage import logs, queue, records
from e3.exec import queue_worker
from e3.storage.identity import task_id
from e3.storage.repository import open_repository

import east
from east import East


def inc_task(r, x: int = 1):
    fn = function([Integer], Integer, lambda b, a: a.add(East.value(1, Integer)))
    return east_task(r.objects, fn, [value(x, Integer)])


def entry_for(th, ins, n=0, **kw):
    return queue.Entry(queue.new_execution_id(), "dev", f"t{n}", th, task_id(th, ins), tuple(ins), ("tasks", f"t{n}", "output"), **kw)


def starts(r, tid) -> int:
    return sum(1 for rec in logs.read_records(logs.log_path(r, tid)) if rec["stream"] == "start")


def run_all(r, **kw):
    return queue_worker.run_queue(r, write_output=False, **kw)


def test_worker_runs_a_queued_execution_records_success_and_completes_the_claim(repo):
    r = open_repository(repo)
    th, ins = inc_task(r, 41)
    e = entry_for(th, ins)
    queue.enqueue(r, "local", e)
    [res] = run_all(r)
    assert (res.how, res.status) == ("ran", "success")
    rec = records.latest(r, e.task_id)
    assert rec.kind == "success" and rec.execution_id == e.execution_id and rec.output_hash == res.output_hash
    assert r.objects.read(res.output_hash) == value(42, Integer)
    assert list(queue.list_entries(r)) == []


def test_a_succeeded_task_id_is_reused_not_run_again(repo):
    r = open_repository(repo)
    th, ins = inc_task(r)
    queue.enqueue(r, "local", entry_for(th, ins))
    run_all(r)
    queue.enqueue(r, "local", entry_for(th, ins))
    [res] = run_all(r)
    assert (res.how, res.status) == ("cached", "success")
    assert starts(r, task_id(th, ins)) == 1


def test_force_runs_a_succeeded_task_again(repo):
    r = open_repository(repo)
    th, ins = inc_task(r)
    queue.enqueue(r, "local", entry_for(th, ins))
    run_all(r)
    queue.enqueue(r, "local", entry_for(th, ins, force=True))
    [res] = run_all(r)
    assert res.how == "ran" and starts(r, task_id(th, ins)) == 2


def test_an_outcome_recorded_before_a_crash_is_not_run_again_when_requeued(repo):
    r = open_repository(repo)
    th, ins = inc_task(r)
    e = entry_for(th, ins, force=True)
    queue.enqueue(r, "local", e)
    c = queue.claim(r, "local")
    queue_worker.run_execution(r, e)  # recorded, then "crashed" before completing the claim
    c.abandon()
    [res] = run_all(r)
    assert res.how == "recorded" and res.status == "success"
    assert starts(r, e.task_id) == 1


def test_a_running_record_of_a_crashed_attempt_is_run_again(repo):
    r = open_repository(repo)
    th, ins = inc_task(r)
    e = entry_for(th, ins)
    queue.enqueue(r, "local", e)
    records.write(r, e.task_id, records.Record("running", e.execution_id, e.input_hashes, records.now(), pid=1, pid_start_time=1, boot_id="x"))
    [res] = run_all(r)
    assert res.how == "ran" and records.latest(r, e.task_id).kind == "success"


def test_a_hanging_task_times_out_as_an_error_and_the_others_go_on(repo):
    r = open_repository(repo)
    hang = make_task(r.objects, bash_command("sleep 30"), 0)
    ok_th, ok_ins = inc_task(r)
    queue.enqueue(r, "local", entry_for(hang, [], 0))
    queue.enqueue(r, "local", entry_for(ok_th, ok_ins, 1))
    results = {res.entry.task: res for res in run_all(r, timeout=0.5)}
    assert results["t0"].status == "error" and "timed out" in results["t0"].message
    assert records.latest(r, task_id(hang, [])).kind == "error"
    assert results["t1"].status == "success"


def test_a_failing_task_is_recorded_failed_with_its_exit_code(repo):
    r = open_repository(repo)
    th = make_task(r.objects, bash_command("exit 3"), 0)
    queue.enqueue(r, "local", entry_for(th, []))
    [res] = run_all(r)
    assert res.status == "failed"
    rec = records.latest(r, task_id(th, []))
    assert rec.kind == "failed" and rec.exit_code == 3


def test_several_worker_processes_run_each_execution_exactly_once(repo):
    import pytest

    pytest.importorskip("e3.repo.workspace")  # until the workspaces module lands
    r = open_repository(repo)
    fn = function([Integer], Integer, lambda b, a: a.add(East.value(1, Integer)))
    entries = []
    for i in range(40):
        th, ins = east_task(r.objects, fn, [value(i, Integer)])
        entries.append(entry_for(th, ins, i))
    queue.enqueue_many(r, "local", entries)
    lines = run_workers(repo, 3)
    assert sorted(line.split()[0] for line in lines) == sorted(e.execution_id for e in entries)
    for e in entries:
        assert starts(r, e.task_id) == 1
        assert records.latest(r, e.task_id).kind == "success"
