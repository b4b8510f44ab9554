"""Execution logs: append-only CBOR records, torn tails ignored, followed while written; e3-log-tail."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from e3_testing.commands import LIB, assert_one_line_error, command_env, run
from e3_testing.commands import write as write_file

from e3.storage import logs
from e3.storage.repository import open_repository

TID = "ab" * 32


@pytest.fixture
def r(repo):
    return open_repository(repo)


def write_log(r, *entries, tid=TID):
    with logs.open_log(r, tid, "e1") as log:
        for stream, data in entries:
            log.write(stream, data)
        log.end("success")
    return logs.log_path(r, tid)


def test_records_read_back_in_order_with_start_and_end(r):
    path = write_log(r, ("stdout", b"a\n"), ("stderr", b"b\n"))
    recs = logs.read_records(path)
    assert [(x["stream"], x.get("bytes")) for x in recs] == [("start", None), ("stdout", b"a\n"), ("stderr", b"b\n"), ("end", None)]
    assert recs[0]["executionId"] == "e1" and recs[-1]["status"] == "success"
    assert all(isinstance(x["time"], float) for x in recs)


def test_large_output_is_split_into_bounded_records(r):
    path = write_log(r, ("stdout", b"x" * (logs.MAX_RECORD_BYTES * 2 + 5)))
    sizes = [len(x["bytes"]) for x in logs.read_records(path) if x["stream"] == "stdout"]
    assert sizes == [logs.MAX_RECORD_BYTES, logs.MAX_RECORD_BYTES, 5]


def test_torn_tail_is_ignored_and_earlier_records_survive(r):
    path = write_log(r, ("stdout", b"kept\n"))
    whole = path.read_bytes()
    with open(path, "ab") as f:
        import cbor2

        f.write(cbor2.dumps({"time": 1.0, "stream": "stdout", "bytes": b"torn" * 10})[:-7])
    recs = logs.read_records(path)
    assert [x["stream"] for x in recs] == ["start", "stdout", "end"]
    # the next writer cuts the torn bytes off before appending
    with logs.open_log(r, TID, "e2") as log:
        log.write("stdout", b"again\n")
    assert path.read_bytes().startswith(whole)
    assert [x.get("bytes") for x in logs.read_records(path)][-1] == b"again\n"


def test_log_tail_prints_the_newest_execution_to_the_tasks_streams(r, repo):
    write_log(r, ("stdout", b"old\n"))
    with logs.open_log(r, TID, "e2") as log:
        log.write("stdout", b"new out\n")
        log.write("stderr", b"new err\n")
        log.end("failed")
    res = run("e3-log-tail", "--repo", repo, TID)
    assert (res.out, res.err) == ("new out\n", "new err\n")
    assert run("e3-log-tail", "--repo", repo, "--all", TID[:6]).out == "old\nnew out\n"
    assert run("e3", "log-tail", "--repo", repo, TID).out == "new out\n"


@pytest.mark.parametrize(
    "arg,needle",
    [("cd" * 32, "no log"), ("xyz", "invalid task_id"), ("abcd", "no log")],
)
def test_log_tail_refuses_missing_or_invalid_task_ids(repo, arg, needle):
    assert_one_line_error(run("e3-log-tail", "--repo", repo, arg, expect=128), needle)


def test_log_tail_refuses_an_ambiguous_prefix(r, repo):
    write_log(r, tid="ab" * 32)
    write_log(r, tid="abab" + "cd" * 30)
    assert_one_line_error(run("e3-log-tail", "--repo", repo, "abab", expect=128), "ambiguous")
    assert_one_line_error(run("e3-log-tail", "--repo", repo, "ab", expect=128), "invalid")


def test_log_tail_follow_sees_records_written_by_another_process(r, repo):
    """A follower started before the log exists prints each record as the writer appends it, and ends at 'end'."""
    follower = subprocess.Popen(
        ["e3-log-tail", "--follow", "--repo", str(repo), TID], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env()
    )
    writer = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(LIB)!r})\n"
        "from e3.storage import logs\nfrom e3.storage.repository import open_repository\n"
        f"log = logs.open_log(open_repository({str(repo)!r}), {TID!r}, 'e1')\n"
        "for i in range(3):\n"
        "    log.write('stdout', b'line %d\\n' % i)\n"
        "    sys.stdout.write('wrote\\n'); sys.stdout.flush(); sys.stdin.readline()\n"
        "log.end('success')\n"
    )
    w = subprocess.Popen([sys.executable, "-c", writer], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=command_env())
    try:
        for i in range(3):
            assert w.stdout.readline() == b"wrote\n"
            # the follower prints the record before the writer goes on
            assert follower.stdout.readline() == b"line %d\n" % i
            w.stdin.write(b"\n")
            w.stdin.flush()
        assert follower.wait(timeout=10) == 0
        assert follower.stdout.read() == b"" and b"Traceback" not in follower.stderr.read()
    finally:
        for p in (w, follower):
            if p.poll() is None:
                p.kill()
        w.wait()


def test_follow_of_an_ended_execution_returns_at_once(r, repo):
    write_log(r, ("stdout", b"done\n"))
    started = time.monotonic()
    assert run("e3-log-tail", "-f", "--repo", repo, TID).out == "done\n"
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------- e3 logs WS.TASK


@pytest.fixture
def dev(repo, runpkg_zip):
    """Workspace dev with runpkg deployed and every input assigned (library calls: quicker than five commands)."""
    from e3.repo import datasets, package, workspace

    r = open_repository(repo)
    package.import_zip(r, runpkg_zip)
    workspace.create(r, "dev")
    workspace.deploy(r, "dev", "runpkg", "1.0.0")
    datasets.set_value(r, "dev.inputs.name", b'"World"', "east")
    return repo


def current_task_id(repo, ws, task):
    from e3.repo import workspace
    from e3.storage.identity import task_id
    from e3.model.task import load_task

    r = open_repository(repo)
    view = workspace.read(r, ws)
    th = view.package.tasks[task]
    return task_id(th, [view.datasets[p] for p in load_task(r.objects, th).inputs])


def test_logs_prints_the_execution_for_the_tasks_current_inputs(dev):
    r = open_repository(dev)
    write_log(r, ("stdout", b"hello from greet\n"), ("stderr", b"careful\n"), tid=current_task_id(dev, "dev", "greet"))
    res = run("e3", "logs", dev, "dev.greet")
    assert (res.out, res.err) == ("hello from greet\n", "careful\n")


def test_logs_falls_back_to_the_newest_recorded_execution(dev):
    from e3.storage import refs
    from e3.storage import records

    r = open_repository(dev)
    tid = current_task_id(dev, "dev", "noisy")
    write_log(r, ("stdout", b"ran on 2\n"), tid=tid)
    from e3.repo import workspace

    view = workspace.read(r, "dev")
    ins = tuple(view.datasets[p] for p in [("tasks", "noisy", "function_ir"), ("inputs", "times")])
    rec = records.Record("success", "e1", ins, records.now(), records.now(), output_hash=ins[1])
    records.write(r, tid, rec)
    commit = refs.write_state(r, {("execution",): records.store(r, rec)}, None, "noisy ran")
    refs.update(r, "refs/tasks/dev/noisy", commit)
    from e3.repo import datasets

    datasets.set_value(r, "dev.inputs.times", b"3", "east")  # now the current inputs have no log
    assert run("e3", "logs", dev, "dev.noisy").out == "ran on 2\n"


def test_logs_follow_waits_for_the_execution_to_start(dev):
    tid = current_task_id(dev, "dev", "greet")
    follower = subprocess.Popen(["e3", "logs", str(dev), "dev.greet", "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
    try:
        time.sleep(0.5)
        assert follower.poll() is None
        write_log(open_repository(dev), ("stdout", b"late\n"), tid=tid)
        assert follower.wait(timeout=10) == 0 and follower.stdout.read() == b"late\n"
    finally:
        if follower.poll() is None:
            follower.kill()


@pytest.mark.parametrize(
    "target,code,needle",
    [
        ("dev.greet", 128, "has not run"),
        ("dev.nosuch", 128, "task 'nosuch' not found"),
        ("nows.greet", 128, "workspace nows does not exist"),
        ("dev.a.b", 2, "expected ws.task"),
    ],
)
def test_logs_refuses_with_one_line(dev, target, code, needle):
    assert_one_line_error(run("e3", "logs", dev, target, expect=code), needle)


def test_logs_names_an_unassigned_input_and_follow_waits_for_it(dev):
    from e3.repo import datasets

    datasets.unset(open_repository(dev), "dev.inputs.name")
    assert_one_line_error(run("e3", "logs", dev, "dev.greet", expect=128), "unassigned")
    follower = subprocess.Popen(["e3", "logs", str(dev), "dev.greet", "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
    try:
        time.sleep(0.5)
        assert follower.poll() is None  # waiting, not "no log … an input is unassigned"
        datasets.set_value(open_repository(dev), "dev.inputs.name", b'"You"', "east")
        write_log(open_repository(dev), ("stdout", b"hello you\n"), tid=current_task_id(dev, "dev", "greet"))
        out, err = follower.communicate(timeout=20)
        assert (follower.returncode, out, err) == (0, b"hello you\n", b"")
    finally:
        if follower.poll() is None:
            follower.kill()


def test_follow_during_a_forced_run_follows_the_new_execution_not_the_old(tmp_path):
    from e3 import sdk
    from e3.east import East, IntegerType

    count = tmp_path / "count"

    def script(b, ins, out):
        return East.str(
            f"n=$(( $(cat '{count}' 2>/dev/null || echo 0) + 1 )); echo $n > '{count}'; echo run $n; sleep 1; cp ",
            sdk.quote(ins.get(0)), " ", sdk.quote(out),
        )

    x = sdk.input("x", IntegerType, 1)
    sdk.export(sdk.package("counted", "1.0.0", sdk.custom_task("t", [x], IntegerType, script)), tmp_path / "p.zip")
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    run("e3", "workspace", "import", repo, "dev", tmp_path / "p.zip")
    run("e3", "start", repo, "dev")
    assert run("e3", "logs", repo, "dev.t", "--follow").out == "run 1\n"  # no run going: the ended one, at once
    start = subprocess.Popen(["e3", "start", str(repo), "dev", "--force"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
    try:
        deadline = time.monotonic() + 30
        while "Running: e3 start" not in run("e3", "workspace", "status", repo, "dev").out:
            assert time.monotonic() < deadline and start.poll() is None
        assert run("e3", "logs", repo, "dev.t", "--follow").out == "run 2\n"
        assert start.wait(timeout=30) == 0
    finally:
        if start.poll() is None:
            start.kill()
    out = run("e3", "logs", repo, "dev.t", "--all").out.splitlines()
    assert [line for line in out if not line.startswith("==>")] == ["run 1", "run 2"]
    assert len([line for line in out if line.startswith("==> execution ") and line.endswith(" <==") and ": success after " in line]) == 2


def test_logs_all_puts_a_header_with_id_start_and_outcome_before_each_execution(dev):
    r, tid = open_repository(dev), current_task_id(dev, "dev", "greet")
    with logs.open_log(r, tid, "exec-one") as log:
        log.write("stdout", b"first\n")
        log.end("failed")
    with logs.open_log(r, tid, "exec-two") as log:
        log.write("stdout", b"second\n")
    out = run("e3", "logs", dev, "dev.greet", "--all").out.splitlines()
    assert out[0].startswith("==> execution exec-one, started ") and out[0].endswith(": failed after 0.00s <==")
    assert out[1] == "first"
    assert out[2].startswith("==> execution exec-two, started ") and out[2].endswith(": running <==")
    assert out[3:] == ["second"]
    assert run("e3", "logs", dev, "dev.greet").out == "second\n"  # without --all: the newest, no header


def test_logs_of_a_workspace_lists_its_tasks_and_how_they_last_ran(tmp_path):
    from e3_testing.runner_tasks import run_package

    from e3 import sdk

    sdk.export(run_package(), tmp_path / "p.zip")
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    run("e3", "workspace", "import", repo, "dev", tmp_path / "p.zip")
    run("e3", "set", repo, "dev.inputs.name", write_file(tmp_path, "n.east", '"World"'))
    run("e3", "start", repo, "dev", "--filter", "noisy")
    run("e3", "start", repo, "dev", "--filter", "broken", expect=1)
    lines = run("e3", "logs", repo, "dev").out.splitlines()
    assert lines[0].split() == ["TASK", "LAST", "RUN", "TOOK", "OUTCOME"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["noisy"].endswith("  success") and rows["broken"].endswith("  failed (exit code 1)")
    assert rows["greet"].endswith("never run")
    import json

    listed = {t["task"]: t for t in json.loads(run("e3", "logs", repo, "dev", "--json").out)}
    assert listed["noisy"]["last"]["status"] == "success" and listed["greet"]["last"] is None


def test_logs_all_into_a_closed_pipe_prints_nothing_more(dev):
    # A cancelled execution's log holds e3's own stderr line `e3: cancelled`: the task's
    # stderr, shown on a terminal; once stdout's reader has gone, nothing more is printed.
    from test_frame import run_into_closed_pipe

    r, tid = open_repository(dev), current_task_id(dev, "dev", "greet")
    with logs.open_log(r, tid, "e1") as log:
        log.write("stderr", b"e3: cancelled\n")
        log.end("cancelled")
    write_log(r, ("stdout", b"second run\n"), tid=tid)
    res = run_into_closed_pipe("e3", "logs", dev, "dev.greet", "--all")
    assert (res.returncode, res.stderr) == (0, b"")


def test_logs_as_json_lines(dev):
    import json

    r = open_repository(dev)
    write_log(r, ("stdout", b"hello\n"), ("stderr", b"careful\n"), tid=current_task_id(dev, "dev", "greet"))
    lines = [json.loads(line) for line in run("e3", "logs", dev, "dev.greet", "--json").out.splitlines()]
    assert [(c["stream"], c["data"]) for c in lines] == [("stdout", "hello\n"), ("stderr", "careful\n")]
    assert lines[0]["offset"] < lines[1]["offset"]


# ---------------------------------------------------------------- a silent execution's log is its record


def _silent_repo(tmp_path):
    """A workspace whose one task, an East function run in e3's warm pool, prints nothing."""
    from e3 import sdk
    from e3.east import East, IntegerType

    x = sdk.input("x", IntegerType, 1)
    t = sdk.task("t", [x], East.function([IntegerType], IntegerType, lambda b, v: v + 1))
    sdk.export(sdk.package("quiet", "1.0.0", t), tmp_path / "p.zip")
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    run("e3", "workspace", "import", repo, "dev", tmp_path / "p.zip")
    return repo


def test_a_silent_task_leaves_no_log_file_and_its_log_reads_as_its_record(tmp_path):
    from e3.storage import records

    repo = _silent_repo(tmp_path)
    run("e3", "start", repo, "dev")
    r = open_repository(repo)
    tid = current_task_id(repo, "dev", "t")
    path = logs.log_path(r, tid)
    assert not path.exists()  # no inode made for two records its execution record says
    rec = records.latest(r, tid)
    assert logs.exists(path)
    got = logs.read_records(path)
    assert [(x["stream"], x.get("executionId"), x.get("status")) for x in got] == [
        ("start", rec.execution_id, None), ("end", None, "success")]
    assert (got[0]["time"], got[1]["time"]) == (rec.started_at.timestamp(), rec.completed_at.timestamp())
    # every reader prints what it printed of the file a silent execution used to leave
    res = run("e3", "logs", repo, "dev.t")
    assert (res.out, res.err) == ("", "")
    assert run("e3", "logs", repo, "dev.t", "--follow").out == ""  # ended: at once
    assert run("e3", "logs", repo, "dev.t", "--json").out == ""
    out = run("e3", "logs", repo, "dev.t", "--all").out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"==> execution {rec.execution_id}, started ") and ": success after " in out[0]
    assert run("e3-log-tail", "--repo", repo, tid[:8]).out == ""
    assert run("e3-log-tail", "--repo", repo, tid, "--follow").out == ""
    # The next execution makes the file, the first execution's records first: --all shows both.
    first = logs.recorded_bounds(path)
    run("e3", "start", repo, "dev", "--force")
    assert path.read_bytes().startswith(first)
    out = run("e3", "logs", repo, "dev.t", "--all").out.splitlines()
    assert [line.split(",")[0] for line in out] == [f"==> execution {rec.execution_id}", f"==> execution {records.latest(r, tid).execution_id}"]


def test_a_task_that_never_ran_still_has_no_log(tmp_path):
    repo = _silent_repo(tmp_path)
    assert_one_line_error(run("e3", "logs", repo, "dev.t", expect=128), "has not run")
    assert not logs.exists(logs.log_path(open_repository(repo), current_task_id(repo, "dev", "t")))


def _record(r, tid, eid, kind="success"):
    from e3.storage import records

    rec = records.Record(kind, eid, (), records.now(), records.now(), output_hash="cd" * 32 if kind == "success" else None,
                         exit_code=1 if kind == "failed" else None)
    records.write(r, tid, rec)
    return rec


def test_a_recorded_writer_leaves_no_file_only_for_a_silent_first_execution(r):
    path = logs.log_path(r, TID)
    with logs.open_log(r, TID, "e1", deferred=True, recorded=True) as log:
        log.end("success")
    assert not path.exists()
    _record(r, TID, "e1")
    silent = logs.recorded_bounds(path)
    # The task_id has a recorded execution now: a second silent one makes the file, with both.
    with logs.open_log(r, TID, "e2", deferred=True, recorded=True) as log:
        log.end("failed")
    assert path.read_bytes().startswith(silent)
    assert [(x["stream"], x.get("executionId"), x.get("status")) for x in logs.read_records(path)] == [
        ("start", "e1", None), ("end", None, "success"), ("start", "e2", None), ("end", None, "failed")]


def test_a_writer_closed_before_its_record_lets_the_record_say_whether_it_is_the_first(r):
    """close_before_record: a silent execution's file is made by records.write, only when the
    record it writes replaces one (the pointer's creation tells), before replacing it."""
    from e3.storage import records

    path = logs.log_path(r, TID)

    def silent(eid: str, status: str) -> records.Record:
        log = logs.open_log(r, TID, eid, deferred=True, recorded=True)
        log.end(status)
        held = log.close_before_record()
        assert held is not None and not path.exists()
        rec = records.Record(status, eid, (), records.now(), records.now(), output_hash="cd" * 32 if status == "success" else None,
                             exit_code=1 if status == "failed" else None)
        seen = []

        def make():
            seen.append(records.summary(r, TID))  # the record it replaces is still the newest
            held()

        records.write(r, TID, rec, before_replace=make)
        return seen

    assert silent("e1", "success") == [] and not path.exists()
    first = logs.recorded_bounds(path)
    seen = silent("e2", "failed")
    assert len(seen) == 1 and seen[0].kind == "success"
    assert path.read_bytes().startswith(first)
    assert [(x["stream"], x.get("executionId"), x.get("status")) for x in logs.read_records(path)] == [
        ("start", "e1", None), ("end", None, "success"), ("start", "e2", None), ("end", None, "failed")]
    # A log file there already: appended at close, nothing waits for the record.
    log = logs.open_log(r, TID, "e3", deferred=True, recorded=True)
    log.end("success")
    assert log.close_before_record() is None
    assert [x.get("executionId") for x in logs.read_records(path) if x["stream"] == "start"] == ["e1", "e2", "e3"]


def test_a_recorded_writer_that_printed_or_was_cancelled_makes_its_file(r):
    with logs.open_log(r, TID, "e1", deferred=True, recorded=True) as log:
        log.write("stdout", b"said\n")
        log.end("success")
    assert [x.get("bytes") for x in logs.read_records(logs.log_path(r, TID))] == [None, b"said\n", None]
    other = "cd" * 32
    with logs.open_log(r, other, "e1", deferred=True, recorded=True) as log:
        log.end("cancelled")  # recorded as an error: the record would not say it
    assert logs.log_path(r, other).exists()


def test_following_past_a_silent_execution_reads_on_in_the_file_made_later(r):
    import threading

    path = logs.log_path(r, TID)
    with logs.open_log(r, TID, "e1", deferred=True, recorded=True) as log:
        log.end("success")
    _record(r, TID, "e1")
    offset = len(logs.recorded_bounds(path))
    got = []
    follower = threading.Thread(target=lambda: got.extend(rec for rec, _ in logs.follow_from(path, offset, all_executions=True)))
    follower.start()
    time.sleep(0.2)
    with logs.open_log(r, TID, "e2") as log:
        log.write("stdout", b"later\n")
        log.end("success")
    follower.join(timeout=10)
    assert [(x["stream"], x.get("bytes")) for x in got] == [("start", None), ("stdout", b"later\n"), ("end", None)]
