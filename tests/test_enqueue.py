"""e3-enqueue + e3-run-task on a deployed package: waves of ready tasks, memo, force, stale outputs."""
from __future__ import annotations


import pytest
from e3_testing.packages import chain_zip, fanout_zip, task_name

from e3_testing.commands import assert_one_line_error, run, run_workers
from e3.repo import workspace
from e3.storage import logs, queue, records
from e3.storage.repository import open_repository


def deploy(repo, zip_path, e3, ws="dev"):
    e3("workspace", "import", repo, ws, zip_path)


def output(e3, repo, task, ws="dev") -> str:
    return e3("get", repo, f"{ws}.tasks.{task}.output").out.strip()


def drain(repo) -> int:
    """Enqueue and run wave after wave until nothing is ready; return the number of waves."""
    waves = 0
    while run("e3-enqueue", repo, "dev").out:
        run("e3-run-task", repo, "--once", "-q")
        waves += 1
    return waves


@pytest.fixture
def chain3(repo, tmp_path, e3):
    deploy(repo, chain_zip(tmp_path, 3), e3)
    return repo


def test_enqueue_queues_only_tasks_whose_upstream_is_up_to_date(chain3, e3):
    ids = run("e3-enqueue", chain3, "dev", "-v").out.splitlines()
    assert [line.split()[1] for line in ids] == [task_name(0)]
    [q] = queue.list_entries(open_repository(chain3))
    assert q.entry.task == task_name(0) and q.entry.execution_id == ids[0].split()[0]


def test_verbose_enqueue_says_why_a_task_waits(chain3):
    r = run("e3-enqueue", chain3, "dev", "-v")
    assert f"{task_name(1)}: waiting on .tasks.{task_name(0)}.output (unassigned)" in r.err


def test_enqueue_twice_does_not_queue_a_task_twice(chain3):
    assert len(run("e3-enqueue", chain3, "dev").out.splitlines()) == 1
    assert run("e3-enqueue", chain3, "dev").out == ""


def test_waves_of_enqueue_and_run_task_compute_the_whole_chain(chain3, e3):
    assert drain(chain3) == 3
    assert output(e3, chain3, task_name(2)) == "3"
    assert run("e3-enqueue", chain3, "dev").out == ""  # everything up to date


def test_run_task_prints_execution_status_and_task(chain3):
    [eid] = run("e3-enqueue", chain3, "dev").out.split()
    assert run("e3-run-task", chain3, "--once").out == f"{eid} success dev.{task_name(0)}\n"


def test_a_memoised_output_missing_from_the_workspace_is_queued_and_reused(chain3, e3, tmp_path):
    drain(chain3)
    r = open_repository(chain3)
    workspace.set_dataset(r, "dev", ("tasks", task_name(2), "output"), None, check_type=False, force=True)
    [eid] = run("e3-enqueue", chain3, "dev").out.split()
    assert run("e3-run-task", chain3, "--once").out == f"{eid} cached dev.{task_name(2)}\n"
    assert output(e3, chain3, task_name(2)) == "3"


def test_force_runs_an_up_to_date_task_again(chain3):
    drain(chain3)
    [eid] = run("e3-enqueue", chain3, "dev", "--force", task_name(1)).out.split()
    assert run("e3-run-task", chain3, "--once").out == f"{eid} success dev.{task_name(1)}\n"
    r = open_repository(chain3)
    [tid] = [t for t in _task_ids(r) if records.latest(r, t).execution_id == eid]
    assert [x["stream"] for x in logs.read_records(logs.log_path(r, tid))].count("start") == 2


def _task_ids(r):
    import os

    return os.listdir(r.path("tasks"))


def test_an_output_computed_from_inputs_changed_meanwhile_is_not_written(chain3, e3, tmp_path):
    run("e3-enqueue", chain3, "dev")
    (tmp_path / "x.east").write_text("10")
    e3("set", chain3, "dev.inputs.x", tmp_path / "x.east")  # after queueing, before running
    out = run("e3-run-task", chain3, "--once").out
    assert " success " in out
    r = open_repository(chain3)
    assert ("tasks", task_name(0), "output") not in workspace.read(r, "dev").datasets
    drain(chain3)  # the next waves use the new input
    assert output(e3, chain3, task_name(2)) == "13"


def test_several_worker_processes_write_each_output_once(repo, tmp_path, e3):
    deploy(repo, fanout_zip(tmp_path, 30), e3)
    ids = run("e3-enqueue", repo, "dev").out.split()
    assert len(ids) == 30  # the fan-out; `sum` waits for two of them
    done = [line.split()[0] for line in run_workers(repo, 3)]
    assert sorted(done) == sorted(ids)
    r = open_repository(repo)
    assert all(len([x for x in logs.read_records(logs.log_path(r, t)) if x["stream"] == "start"]) == 1 for t in _task_ids(r))
    drain(repo)
    assert output(e3, repo, "sum") == "2"


def test_enqueue_of_an_unknown_task_is_one_line(chain3):
    r = run("e3-enqueue", chain3, "dev", "nope", expect=128)
    assert_one_line_error(r, "no task named 'nope'")


def test_enqueue_of_a_missing_workspace_is_one_line(repo):
    r = run("e3-enqueue", repo, "nope", expect=128)
    assert_one_line_error(r, "nope")


def test_enqueue_of_an_undeployed_workspace_is_one_line(repo, e3):
    e3("workspace", "create", repo, "dev")
    r = run("e3-enqueue", repo, "dev", expect=128)
    assert_one_line_error(r, "not deployed")
