"""The warm worker pool: real worker processes; a crash or hang fails only its own task."""
from __future__ import annotations

import os
import time

import pytest

from e3_testing.commands import ROOT
from e3_testing.runner_tasks import (
    East,
    Integer,
    bash_command,
    east_command,
    east_task,
    function,
    make_task,
    value,
)

from e3 import east as e3east
from e3.storage import logs
from e3.storage.identity import task_id
from e3.exec.pool import TaskRequest, WorkerPool
from e3.storage.repository import open_repository

TEST_PLATFORM = "e3-test-platform"


@pytest.fixture
def r(repo):
    return open_repository(repo)


def worker_env() -> dict[str, str]:
    """Workers that can import this directory's test platform (e3_test_platform)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(2, env=worker_env()) as p:
        yield p


def inc_task(r, x: int):
    fn = function([Integer], Integer, lambda b, v: v + 1)
    return east_task(r.objects, fn, [value(x, Integer)])


def breaking_task(r, name: str, arg: int):
    """A task whose function calls a test platform function that kills or stalls its process."""
    from e3_test_platform import e3_test_exit, e3_test_segfault, e3_test_sleep

    call = {"exit": e3_test_exit, "sleep": e3_test_sleep, "segfault": e3_test_segfault}[name]
    fn = function([Integer], Integer, lambda b, v: call(v))
    cmd = east_command(prefix=("east-py", "run", "-p", "east-py-std", "-p", TEST_PLATFORM))
    return east_task(r.objects, fn, [value(arg, Integer)], cmd)


def result(r, outcome):
    assert outcome.status == "success", outcome
    return e3east.decode(r.objects.read(outcome.output_hash))[1]


def test_pool_runs_east_tasks_in_its_workers(r, pool):
    futures = [pool.submit(TaskRequest(str(r.root), *inc_task(r, x))) for x in range(10)]
    assert [result(r, f.result()) for f in futures] == list(range(1, 11))


def test_workers_start_as_requests_need_them(r):
    """One task loads East once, not once per slot; a chain of tasks needs at most two (the next
    task runs while the one before records); independent requests each get a worker of their own."""
    from concurrent.futures import Future

    from e3.storage import records

    with WorkerPool(4, env=worker_env()) as p:
        assert p.workers == 0
        assert result(r, p.run(TaskRequest(str(r.root), *inc_task(r, 90)))) == 91
        assert p.workers == 1
        x = 100
        for _ in range(5):  # each waits on the one before, which records after answering
            recorded = Future()
            x = result(r, p.run(TaskRequest(str(r.root), *inc_task(r, x), record_started=records.now(), recorded=recorded)))
        assert x == 105 and recorded.result(timeout=60) is not None
        assert p.workers <= 2
        futures = [p.submit(TaskRequest(str(r.root), *inc_task(r, 200 + i))) for i in range(3)]
        assert [result(r, f.result(timeout=60)) for f in futures] == [201, 202, 203]
        assert p.workers == 3


def test_pool_writes_the_task_log_from_start_to_end(r, pool):
    th, ins = inc_task(r, 5)
    out = pool.run(TaskRequest(str(r.root), th, ins, execution_id="exec-1"))
    recs = logs.read_records(logs.log_path(r, task_id(th, ins)))
    assert [x["stream"] for x in recs] == ["start", "end"]
    assert recs[0]["executionId"] == "exec-1" and recs[1]["status"] == out.status == "success"


def test_worker_writes_the_record_after_answering_when_asked(r, pool):
    from concurrent.futures import Future

    from e3.storage import records

    th, ins = inc_task(r, 41)
    recorded = Future()
    started = records.now()
    out = pool.run(TaskRequest(str(r.root), th, ins, execution_id="exec-rec", record_started=started, recorded=recorded))
    record_hash = recorded.result(timeout=60)
    summary = records.summary(r, task_id(th, ins))
    assert summary == records.Summary(record_hash, "success", out.output_hash)
    rec = records.read(r, summary)
    in_ms = started.replace(microsecond=started.microsecond // 1000 * 1000)  # East datetimes count milliseconds
    assert (rec.execution_id, rec.input_hashes, rec.started_at) == ("exec-rec", tuple(ins), in_ms)


def _unwritable_logs(r) -> None:
    import shutil

    logs_dir = r.path("logs")
    shutil.rmtree(logs_dir, ignore_errors=True)
    logs_dir.write_text("not a directory")  # every log open fails, as on a full disk


def test_a_log_that_cannot_be_opened_fails_the_task(r, pool):
    th, ins = inc_task(r, 9)
    _unwritable_logs(r)
    out = pool.run(TaskRequest(str(r.root), th, ins))
    assert out.status == "error"
    assert "logs" in out.message


def test_a_silent_task_whose_log_cannot_be_made_after_its_answer_keeps_its_outcome_and_record(r, pool):
    """With a record to write, the worker answers first and makes the log of a task that printed
    nothing after the answer: a log refused then loses only the start and end markers."""
    from concurrent.futures import Future

    from e3.storage import records

    th, ins = inc_task(r, 9)
    _unwritable_logs(r)
    recorded = Future()
    out = pool.run(TaskRequest(str(r.root), th, ins, execution_id="exec-nolog", record_started=records.now(), recorded=recorded))
    assert out.status == "success"
    record_hash = recorded.result(timeout=10)
    assert records.summary(r, task_id(th, ins)) == records.Summary(record_hash, "success", out.output_hash)


def test_a_silent_task_answered_before_its_record_has_its_log_written_before_the_record(r, pool):
    """The log of a task that printed nothing is made after the answer, but before the worker
    says the record is written: whoever waits for the record finds the whole log."""
    from concurrent.futures import Future

    from e3.storage import logs, records

    th, ins = inc_task(r, 10)
    recorded = Future()
    out = pool.run(TaskRequest(str(r.root), th, ins, execution_id="exec-log", record_started=records.now(), recorded=recorded))
    assert out.status == "success"
    recorded.result(timeout=10)
    found = logs.read_records(logs.log_path(r, task_id(th, ins)))
    assert [(x["stream"], x.get("executionId"), x.get("status")) for x in found] == [
        ("start", "exec-log", None),
        ("end", None, "success"),
    ]


def test_a_request_naming_the_command_runs_without_reading_the_task_object(r, pool):
    from e3.model.task import load_task

    # Three arguments: a task object no other test of this module's pool has seen (workers cache them).
    fn = function([Integer, Integer, Integer], Integer, lambda b, x, y, z: x + y + z)
    th, ins = east_task(r.objects, fn, [value(1, Integer), value(2, Integer), value(4, Integer)])
    command = load_task(r.objects, th).command_ir
    r.objects.remove(th)  # e3 start names the command from its plan; the worker must not need this object
    assert result(r, pool.run(TaskRequest(str(r.root), th, ins, command_ir=command))) == 7


def test_a_worker_that_dies_leaves_the_record_to_the_caller(r, pool):
    from concurrent.futures import Future

    from e3.storage import records

    th, ins = breaking_task(r, "exit", 3)
    recorded = Future()
    out = pool.run(TaskRequest(str(r.root), th, ins, record_started=records.now(), recorded=recorded))
    assert out.status == "error" and recorded.result(timeout=60) is None
    assert records.summary(r, task_id(th, ins)) is None


def test_worker_crash_fails_only_its_task_and_the_pool_goes_on(r, pool):
    th, ins = breaking_task(r, "exit", 7)
    crash = pool.submit(TaskRequest(str(r.root), th, ins))
    others = [pool.submit(TaskRequest(str(r.root), *inc_task(r, x))) for x in range(4)]
    out = crash.result(timeout=60)
    assert out.status == "error" and "exited with status 7" in out.message
    assert [result(r, f.result(timeout=60)) for f in others] == [1, 2, 3, 4]
    recs = logs.read_records(logs.log_path(r, task_id(th, ins)))
    assert recs[-1] == {**recs[-1], "stream": "end", "status": "error"}
    assert b"exited with status 7" in recs[-2]["bytes"]
    assert result(r, pool.run(TaskRequest(str(r.root), *inc_task(r, 100)))) == 101


def test_segfault_in_a_task_fails_it_with_the_signal_named(r, pool):
    th, ins = breaking_task(r, "segfault", 1)
    out = pool.run(TaskRequest(str(r.root), th, ins))
    assert out.status == "error" and "SIGSEGV" in out.message
    assert result(r, pool.run(TaskRequest(str(r.root), *inc_task(r, 9)))) == 10


def test_hung_task_times_out_and_the_pool_goes_on(r, pool):
    th, ins = breaking_task(r, "sleep", 60)
    started = time.monotonic()
    out = pool.run(TaskRequest(str(r.root), th, ins, timeout=0.5))
    assert out.status == "error" and "timed out" in out.message
    assert time.monotonic() - started < 10
    assert result(r, pool.run(TaskRequest(str(r.root), *inc_task(r, 1)))) == 2


def test_shell_task_runs_through_the_pool_with_its_output_logged(r, pool):
    th = make_task(r.objects, bash_command('echo out; cp "$1" "$2"'), 1)
    x = r.objects.write(value(3, Integer))
    out = pool.run(TaskRequest(str(r.root), th, [x]))
    assert out.status == "success" and out.output_hash == x
    recs = logs.read_records(logs.log_path(r, task_id(th, [x])))
    assert [(rec["stream"], rec.get("bytes")) for rec in recs[1:]] == [("stdout", b"out\n"), ("end", None)]


def test_cancel_kills_a_running_shell_task_and_its_process_group(r, pool, tmp_path):
    marker = tmp_path / "survived"
    th = make_task(r.objects, bash_command(f"(sleep 1; touch {marker}) & sleep 30"), 0)
    fut = pool.submit(TaskRequest(str(r.root), th, []))
    time.sleep(0.5)
    assert pool.cancel(fut)
    assert fut.result(timeout=30).status == "cancelled"
    time.sleep(1.0)
    assert not marker.exists()
    assert result(r, pool.run(TaskRequest(str(r.root), *inc_task(r, 2)))) == 3


def test_pool_of_zero_workers_is_refused():
    with pytest.raises(ValueError):
        WorkerPool(0)


def test_caller_may_write_the_logs_start_and_end_itself(r, pool):
    th = make_task(r.objects, bash_command("echo inside"), 0)
    tid = task_id(th, [])
    with logs.open_log(r, tid, "mine") as log:
        out = pool.run(TaskRequest(str(r.root), th, [], log_start_end=False))
        log.end("error" if out.status == "error" else out.status)
    recs = logs.read_records(logs.log_path(r, tid))
    assert [(x["stream"], x.get("bytes")) for x in recs] == [("start", None), ("stdout", b"inside\n"), ("stderr", b"e3: command exited 0 but wrote no output file\n"), ("end", None)]
    assert recs[0]["executionId"] == "mine"


@pytest.fixture(scope="module")
def one():
    """One worker: a second request is sent behind the first, to the same process."""
    with WorkerPool(1, env=worker_env()) as p:
        yield p


def test_requests_sent_behind_a_running_one_run_in_order_on_the_same_worker(r, one):
    futures = [one.submit(TaskRequest(str(r.root), *inc_task(r, 10 + x))) for x in range(6)]
    assert [result(r, f.result(timeout=60)) for f in futures] == list(range(11, 17))


@pytest.mark.parametrize("how", ["exit", "sleep"])
def test_a_request_sent_behind_a_task_that_kills_or_hangs_its_worker_runs_on_the_next(r, one, how):
    th, ins = breaking_task(r, how, 60 if how == "sleep" else 3)
    bad = one.submit(TaskRequest(str(r.root), th, ins, timeout=1.0))
    behind = one.submit(TaskRequest(str(r.root), *inc_task(r, 20)))
    out = bad.result(timeout=60)
    assert out.status == "error" and ("timed out" in out.message if how == "sleep" else "exited with status 3" in out.message)
    assert result(r, behind.result(timeout=60)) == 21


def test_cancelling_a_request_sent_behind_restarts_the_one_running_and_runs_nothing_else(r, one, tmp_path):
    marker = tmp_path / "ran"
    th = make_task(r.objects, bash_command(f'echo x >> {marker}; sleep 1; cp "$1" "$2"'), 1)
    x = r.objects.write(value(5, Integer))
    first = one.submit(TaskRequest(str(r.root), th, [x]))
    behind_th = make_task(r.objects, bash_command(f"touch {tmp_path / 'behind'}"), 0)
    behind = one.submit(TaskRequest(str(r.root), behind_th, []))
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:  # the first one is running
        one.pump(0.02)
    # The worker said it started before the marker was written: acting on that sends the second
    # request behind (a worker still starting at submit has nothing sent behind it yet).
    one.pump(0)
    one.pump(0)
    assert one.cancel(behind)
    assert behind.result(timeout=10).status == "cancelled"
    assert first.result(timeout=60).output_hash == x
    assert marker.read_text() == "x\nx\n"  # killed once, run again
    assert not (tmp_path / "behind").exists()


def test_a_request_behind_a_long_run_is_taken_back_when_another_worker_is_free(r, tmp_path):
    x = r.objects.write(value(1, Integer))
    long_run = make_task(r.objects, bash_command('sleep 3; cp "$1" "$2"'), 1)
    short_run = make_task(r.objects, bash_command('sleep 0.3; cp "$1" "$2"'), 1)
    ran = tmp_path / "ran"

    def marking(name: str):  # a task that says each time it runs
        return make_task(r.objects, bash_command(f'echo {name} >> {ran}; cp "$1" "$2"'), 1)

    with WorkerPool(2, env=worker_env()) as p:
        warm = [p.submit(TaskRequest(str(r.root), *inc_task(r, 50 + i))) for i in range(2)]
        assert [result(r, f.result(timeout=60)) for f in warm] == [51, 52]  # one on each worker: both ready
        first = p.submit(TaskRequest(str(r.root), long_run, [x]))
        second = p.submit(TaskRequest(str(r.root), short_run, [x]))
        behind = p.submit(TaskRequest(str(r.root), marking("behind"), [x]))  # no worker free: sent behind the first
        assert behind.result(timeout=60).status == "success"
        assert not first.done()  # it ran on the second worker once that was free, not after the first
        # The first worker has yet to read (and skip) the frame taken back: what comes next must
        # not go to it, or the byte sent with it would let it run the old request instead.
        blocker = p.submit(TaskRequest(str(r.root), make_task(r.objects, bash_command('sleep 4; cp "$1" "$2"'), 1), [x]))
        later = [p.submit(TaskRequest(str(r.root), marking(f"later{i}"), [x])) for i in range(2)]
        assert [f.result(timeout=60).status for f in later] == ["success"] * 2
        assert first.result(timeout=60).status == second.result(timeout=60).status == blocker.result(timeout=60).status == "success"
    assert sorted(ran.read_text().split()) == ["behind", "later0", "later1"]  # each once


def test_shutdown_with_cancel_runs_nothing_that_was_sent_behind(r, tmp_path):
    p = WorkerPool(1, env=worker_env())
    p.run(TaskRequest(str(r.root), *inc_task(r, 70)))
    running = p.submit(TaskRequest(str(r.root), make_task(r.objects, bash_command("sleep 30"), 0), []))
    behind = p.submit(TaskRequest(str(r.root), make_task(r.objects, bash_command(f"touch {tmp_path / 'behind'}"), 0), []))
    time.sleep(0.3)
    p.shutdown(cancel=True)
    assert running.result(timeout=10).status == behind.result(timeout=10).status == "cancelled"
    assert not (tmp_path / "behind").exists()


@pytest.mark.parametrize("how", ["exits", "slow"])
def test_a_worker_that_cannot_start_fails_the_task_with_one_line_and_a_log(r, how):
    env, start_timeout = worker_env(), 60.0
    if how == "exits":
        env["PYTHONHOME"] = "/nonexistent"  # the interpreter cannot even start
    else:
        start_timeout = 0.001  # no worker imports East that fast
    th, ins = inc_task(r, 80)
    with WorkerPool(1, env=env, start_timeout=start_timeout) as p:
        out = p.run(TaskRequest(str(r.root), th, ins))
    expected = "it exited at once" if how == "exits" else "not ready after 0.001s"
    assert out.status == "error" and out.message == f"cannot start a worker process: {expected}"
    recs = logs.read_records(logs.log_path(r, task_id(th, ins)))
    assert recs[-1]["stream"] == "end" and recs[-1]["status"] == "error"
    assert recs[-2]["bytes"] == f"e3: {out.message}\n".encode()


def test_a_pending_request_cancelled_through_its_future_stays_cancelled(r, tmp_path):
    # A new pool's only worker is still starting with the first request: the second waits in the
    # pool. A caller may cancel it through the Future itself; the pool's cancel and a shutdown
    # that cancels must leave it so, not fail setting an outcome on it.
    p = WorkerPool(1, env=worker_env())
    first = p.submit(TaskRequest(str(r.root), *inc_task(r, 80)))
    second = p.submit(TaskRequest(str(r.root), make_task(r.objects, bash_command(f"touch {tmp_path / 'second'}"), 0), []))
    assert second.cancel()
    assert p.cancel(second)
    third = p.submit(TaskRequest(str(r.root), make_task(r.objects, bash_command(f"touch {tmp_path / 'third'}"), 0), []))
    assert third.cancel()
    assert result(r, first.result(timeout=60)) == 81
    p.shutdown(cancel=True)
    assert second.cancelled() and third.cancelled()
    assert not (tmp_path / "second").exists() and not (tmp_path / "third").exists()


def test_a_worker_runs_a_direct_request_without_a_token_and_skips_one_whose_token_was_taken(r):
    """The protocol's tokens (e3.exec.pool_protocol): a request sent to an idle worker (`direct`)
    has no byte on the token pipe and runs; one sent behind, whose byte is gone, is skipped."""
    import subprocess
    import sys

    from e3.exec.pool import _worker_env
    from e3.exec.pool_protocol import FrameReader, write_frame

    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    tok_r, tok_w = os.pipe()
    os.set_blocking(tok_r, False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "e3.exec.pool_worker", str(req_r), str(resp_w), str(tok_r), "east-py-std"],
        pass_fds=(req_r, resp_w, tok_r), env=_worker_env(worker_env()),
    )
    for fd in (req_r, resp_w):
        os.close(fd)
    answers = FrameReader(resp_r)
    try:
        assert "ready" in answers.read()
        th, ins = inc_task(r, 41)
        base = {"repo": str(r.root), "task": th, "inputs": list(ins), "execution_id": "e-direct"}
        write_frame(req_w, {**base, "id": 1, "direct": True})  # no byte written
        outcome = answers.read()
        assert outcome["id"] == 1 and outcome["outcome"][0] == "success"
        write_frame(req_w, {**base, "id": 2, "execution_id": "e-behind"})  # its byte never written: taken back
        assert answers.read() == {"id": 2, "skipped": True}
    finally:
        os.close(req_w)
        proc.wait(timeout=30)
        for fd in (resp_r, tok_r, tok_w):
            os.close(fd)


# ------------------------------------------------------------ pipelined requests (TaskRequest.after)


INC = function([Integer], Integer, lambda b, v: v + 1)
CMD = east_command()  # made once: its IR differs from one call to the next


def _chain(r, p, first: str, n: int, *, memo: bool = True, fn=None, record: bool = False, **kw):
    """Submit `n` requests, each taking the output of the one before (`after`), the first on `first`;
    with `record`, each also writes its record (the request's `recorded` future is in `recorded`)."""
    from concurrent.futures import Future

    from e3.storage import records

    fn = fn or INC
    th = make_task(r.objects, CMD, 2)
    fh = r.objects.write(fn)
    futures: list = []
    for i in range(n):
        if record:
            kw.update(record_started=records.now(), recorded=Future())
        after = {"after": futures[-1], "memo": memo} if i else {}
        req = TaskRequest(str(r.root), th, [fh, None] if i else [fh, first], **after, **kw)
        futures.append(p.submit(req))
        futures[-1].recorded = req.recorded
    return th, fh, futures


def test_a_pipelined_chain_runs_each_request_on_the_output_of_the_one_before(r, one):
    x = r.objects.write(value(100, Integer))
    th, fh, futures = _chain(r, one, x, 6)
    outs = [f.result(timeout=60) for f in futures]
    assert [result(r, o) for o in outs] == list(range(101, 107))
    # Each ran under the task_id of its own inputs, and logged there (the worker computed it).
    prev = x
    for o in outs:
        recs = logs.read_records(logs.log_path(r, task_id(th, [fh, prev])))
        assert [x["stream"] for x in recs] == ["start", "end"]
        prev = o.output_hash


def test_a_pipelined_request_reuses_a_recorded_success_and_runs_again_without_memo(r, one):
    from concurrent.futures import Future

    from e3.storage import records

    x = r.objects.write(value(200, Integer))
    th, fh, futures = _chain(r, one, x, 4, record=True)
    first = [f.result(timeout=60) for f in futures]
    assert [o.status for o in first] == ["success"] * 4
    # The worker wrote each record: the chain run again finds each in the memo.
    for f in futures:
        one.wait([f.recorded], None)
    assert all(f.recorded.result() for f in futures)
    _, _, again = _chain(r, one, x, 4)
    assert [f.result(timeout=60).status for f in again] == ["success", "cached", "cached", "cached"]
    assert [f.result().output_hash for f in again] == [o.output_hash for o in first]
    _, _, forced = _chain(r, one, x, 4, memo=False)
    assert [f.result(timeout=60).status for f in forced] == ["success"] * 4


def test_a_pipelined_request_behind_a_failure_is_skipped_without_running_and_the_worker_goes_on(r, one):
    x = r.objects.write(value(300, Integer))
    th = make_task(r.objects, CMD, 2)
    inc, bad = r.objects.write(INC), r.objects.write(function([Integer], Integer, lambda b, v: East.error(East.str("no way"))))
    a = one.submit(TaskRequest(str(r.root), th, [inc, x]))
    b = one.submit(TaskRequest(str(r.root), th, [bad, None], after=a, memo=True))
    c = one.submit(TaskRequest(str(r.root), th, [inc, None], after=b, memo=True))
    d = one.submit(TaskRequest(str(r.root), th, [inc, None], after=c, memo=True))
    assert result(r, a.result(timeout=60)) == 301
    assert b.result(timeout=60).status == "failed"
    assert c.result(timeout=60).status == d.result(timeout=60).status == "skipped"
    assert result(r, one.run(TaskRequest(str(r.root), th, [inc, x]))) == 301


def _marking(r, ran, name: str):
    """A shell task that says each time it runs, and copies its input."""
    return make_task(r.objects, bash_command(f'echo {name} >> {ran}; cp "$1" "$2"'), 1)


@pytest.mark.parametrize("which", ["running", "pipelined", "shutdown"])
def test_cancel_stops_what_is_pipelined_behind(r, tmp_path, which):
    x = r.objects.write(value(1, Integer))
    ran = tmp_path / "ran"
    long_run = make_task(r.objects, bash_command(f'echo long >> {ran}; sleep 30; cp "$1" "$2"'), 1)
    with WorkerPool(1, env=worker_env()) as p:
        p.run(TaskRequest(str(r.root), *inc_task(r, 1)))  # the worker is ready: what follows is sent at once
        a = p.submit(TaskRequest(str(r.root), long_run, [x], timeout=60))
        b = p.submit(TaskRequest(str(r.root), _marking(r, ran, "b"), [None], after=a))
        c = p.submit(TaskRequest(str(r.root), _marking(r, ran, "c"), [None], after=b))
        deadline = time.monotonic() + 30
        while not ran.exists() and time.monotonic() < deadline:
            p.pump(0.02)
        if which == "running":
            assert p.cancel(a)
            assert [f.result(timeout=10).status for f in (a, b, c)] == ["cancelled", "skipped", "skipped"]
        elif which == "pipelined":
            assert p.cancel(b)
            assert [f.result(timeout=10).status for f in (b, c)] == ["cancelled", "skipped"]
            assert p.cancel(a)  # it was started again on a new worker
            assert a.result(timeout=10).status == "cancelled"
        else:
            p.shutdown(cancel=True)
            assert [f.result(timeout=10).status for f in (a, b, c)] == ["cancelled", "skipped", "skipped"]
    assert "b" not in ran.read_text().split() and "c" not in ran.read_text().split()


def test_a_request_taken_back_takes_back_the_chain_pipelined_behind_it(r, tmp_path):
    x = r.objects.write(value(1, Integer))
    ran = tmp_path / "ran"
    with WorkerPool(2, env=worker_env()) as p:
        warm = [p.submit(TaskRequest(str(r.root), *inc_task(r, 50 + i))) for i in range(2)]
        assert [result(r, f.result(timeout=60)) for f in warm] == [51, 52]  # both workers ready
        first = p.submit(TaskRequest(str(r.root), make_task(r.objects, bash_command('sleep 3; cp "$1" "$2"'), 1), [x]))
        second = p.submit(TaskRequest(str(r.root), make_task(r.objects, bash_command('sleep 0.3; cp "$1" "$2"'), 1), [x]))
        behind = p.submit(TaskRequest(str(r.root), _marking(r, ran, "behind"), [x]))  # behind the first
        b = p.submit(TaskRequest(str(r.root), _marking(r, ran, "b"), [None], after=behind))
        c = p.submit(TaskRequest(str(r.root), _marking(r, ran, "c"), [None], after=b))
        assert [f.result(timeout=60).status for f in (behind, b, c)] == ["success"] * 3
        assert not first.done()  # the chain ran on the second worker once that was free
        assert c.result().output_hash == x
        assert first.result(timeout=60).status == second.result(timeout=60).status == "success"
    assert ran.read_text().split() == ["behind", "b", "c"]  # each once, in order


def test_a_pipelined_request_that_times_out_fails_alone_and_what_follows_it_is_skipped(r, tmp_path):
    x = r.objects.write(value(1, Integer))
    ran = tmp_path / "ran"
    with WorkerPool(1, env=worker_env()) as p:
        a = p.submit(TaskRequest(str(r.root), _marking(r, ran, "a"), [x]))
        b = p.submit(TaskRequest(str(r.root), make_task(r.objects, bash_command('sleep 30; cp "$1" "$2"'), 1), [None], after=a, timeout=1.0))
        c = p.submit(TaskRequest(str(r.root), _marking(r, ran, "c"), [None], after=b))
        assert a.result(timeout=60).status == "success"
        out = b.result(timeout=60)
        assert out.status == "error" and "timed out after 1s" in out.message
        assert c.result(timeout=60).status == "skipped"
        assert p.run(TaskRequest(str(r.root), _marking(r, ran, "after"), [x])).status == "success"
    assert ran.read_text().split() == ["a", "after"]


def test_requests_queued_several_deep_behind_a_long_run_are_all_taken_back_when_another_worker_is_free(r, tmp_path):
    """With `behind`, several requests (and a chain pipelined behind one) wait behind a running
    one; once another worker is free, those behind a long run are all taken back and run there."""
    x = r.objects.write(value(1, Integer))
    ran = tmp_path / "ran"
    with WorkerPool(2, env=worker_env(), behind=3) as p:
        warm = p.submit_all([TaskRequest(str(r.root), *inc_task(r, 60 + i)) for i in range(2)])
        assert [result(r, f.result(timeout=60)) for f in warm] == [61, 62]  # both workers ready
        first, second = p.submit_all([
            TaskRequest(str(r.root), make_task(r.objects, bash_command('sleep 4; cp "$1" "$2"'), 1), [x]),
            TaskRequest(str(r.root), make_task(r.objects, bash_command('sleep 0.3; cp "$1" "$2"'), 1), [x]),
        ])
        # No worker free: sent behind the two running ones, the fewest behind each, in one write per worker.
        behind = p.submit_all([TaskRequest(str(r.root), _marking(r, ran, f"b{i}"), [x]) for i in range(4)])
        c = p.submit(TaskRequest(str(r.root), _marking(r, ran, "c"), [None], after=behind[2]))  # behind b2, on the first
        assert [f.result(timeout=60).status for f in [*behind, c]] == ["success"] * 5
        assert not first.done()  # all ran on the second worker once that was free, not after the first
        assert c.result().output_hash == x
        assert first.result(timeout=60).status == second.result(timeout=60).status == "success"
    assert sorted(ran.read_text().split()) == ["b0", "b1", "b2", "b3", "c"]  # each once
    assert ran.read_text().split().index("c") > ran.read_text().split().index("b2")
