"""`e3 start`: dataflow order, memoization, failures, filters, reactivity, cancellation."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from e3_testing.commands import assert_one_line_error, command_env, deployed, run, start_states as _states
from e3_testing import packages
from e3_testing.packages import script as _script

from e3 import sdk
from e3.east import East, IntegerType, StringType


def _deploy(tmp_path: Path, pkg) -> Path:
    """A repository with `pkg` deployed in workspace dev."""
    zip_path = tmp_path / "pkg.zip"
    sdk.export(pkg, zip_path)
    return deployed(tmp_path, zip_path, f"{pkg.name}@{pkg.version}")


def _add(name, source, n=1):
    return sdk.task(name, [source], East.function([IntegerType], IntegerType, lambda b, x: x + n))


def _diamond():
    return packages.diamond()


def test_tasks_run_in_dataflow_order_and_outputs_land_in_the_workspace(tmp_path):
    repo = _deploy(tmp_path, _diamond())
    out = run("e3", "start", repo, "dev").out
    assert _states(out) == {"a": "ran", "b": "ran", "c": "ran", "d": "ran"}
    lines = [line.split()[1] for line in out.splitlines() if line.startswith("ran ")]
    assert lines.index("a") < lines.index("b") and lines.index("a") < lines.index("c") < lines.index("d")
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"  # (1+1+10) + (1+1+100)


def test_a_result_computed_in_one_workspace_is_reused_in_another(tmp_path):
    repo = _deploy(tmp_path, _diamond())
    run("e3", "start", repo, "dev")
    run("e3", "workspace", "create", repo, "prod")
    run("e3", "workspace", "deploy", repo, "prod", "diamond@1.0.0")
    assert set(_states(run("e3", "start", repo, "prod").out).values()) == {"cached"}
    assert run("e3", "get", repo, "prod.tasks.d.output").out.strip() == "114"


def test_import_deploy_and_set_cache_what_the_next_start_plans_from(tmp_path):
    from e3.exec import plan
    from e3.repo import snapshot
    from e3.model.package import load_package
    from e3.storage.repository import open_repository

    repo = _deploy(tmp_path, _diamond())
    r = open_repository(repo)
    commit = run("e3-rev-parse", "--repo", repo, "dev").out.strip()
    [package_hash] = [p.name[: -len(".cbor")] for p in (repo / ".e3" / "cache" / "plans").iterdir()]
    built = plan.build(r.objects, load_package(r.objects, package_hash))
    cached = plan.graph_of(r, package_hash)  # from the file `e3 package import` wrote
    assert {n: (x.task_hash, x.task) for n, x in cached.nodes.items()} == {n: (x.task_hash, x.task) for n, x in built.nodes.items()}
    assert (repo / ".e3" / "cache" / "views" / f"{commit}.cbor").exists()  # written by deploy
    (tmp_path / "x.east").write_text("5")
    run("e3", "set", repo, "dev.inputs.x", tmp_path / "x.east")
    commit = run("e3-rev-parse", "--repo", repo, "dev").out.strip()
    assert (repo / ".e3" / "cache" / "views" / f"{commit}.cbor").exists()  # written by set
    from e3.repo import workspace

    truth = workspace.read(r, "dev")
    assert workspace.read_snapshot(r, "dev") == snapshot.Snapshot(commit, truth.package_hash, dict(truth.datasets))
    run("e3", "start", repo, "dev")
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "122"  # (5+1+10) + (5+1+100)


def test_a_damaged_plan_or_view_in_the_cache_is_rebuilt_from_the_repository_never_used(tmp_path):
    """The cache feeds tasks (their inputs' paths, the datasets' hashes) but is named by a key,
    not by its bytes: it carries a checksum, and an entry that fails it is rebuilt."""
    repo = _deploy(tmp_path, _diamond())
    run("e3", "start", repo, "dev")
    [plan_file] = (repo / ".e3" / "cache" / "plans").iterdir()
    data = plan_file.read_bytes()
    b_output = b"\x83\x65tasks\x61b\x66output"  # ["tasks", "b", "output"]: last in d's inputs (rows go a, b, c, d)
    at = data.rindex(b_output) + 8
    plan_file.write_bytes(data[:at] + b"c" + data[at + 1 :])  # one bit: d would read c's output twice
    (tmp_path / "x.east").write_text("5")
    run("e3", "set", repo, "dev.inputs.x", tmp_path / "x.east")
    commit = run("e3-rev-parse", "--repo", repo, "dev").out.strip()
    view = repo / ".e3" / "cache" / "views" / f"{commit}.cbor"
    data = view.read_bytes()
    x = run("e3-rev-parse", "--repo", repo, "dev.inputs.x").out.strip().encode()
    view.write_bytes(data.replace(x, x[:-1] + (b"0" if x[-1:] != b"0" else b"1")))  # x's hash, one digit off
    run("e3", "start", repo, "dev")
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "122"  # (5+1+10) + (5+1+100)


def test_a_recorded_output_whose_bytes_were_lost_is_computed_again(tmp_path):
    repo = _deploy(tmp_path, _diamond())
    run("e3", "start", repo, "dev")
    obj = run("e3-rev-parse", "--repo", repo, "dev.tasks.b.output").out.strip()
    path = repo / ".e3" / "objects" / obj[:2] / f"{obj[2:]}.beast2"
    os.chmod(path, 0o644)
    path.write_bytes(b"")  # as a power loss can leave a value written without fsync
    states = _states(run("e3", "start", repo, "dev").out)
    assert states["b"] == "ran" and states["a"] == states["c"] == "cached"
    assert path.stat().st_size > 0 and run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"


def test_force_runs_cached_tasks_again(tmp_path):
    repo = _deploy(tmp_path, _diamond())
    run("e3", "start", repo, "dev")
    assert set(_states(run("e3", "start", repo, "dev", "--force").out).values()) == {"ran"}


def test_filter_runs_the_task_and_what_it_needs_first(tmp_path):
    repo = _deploy(tmp_path, _diamond())
    assert _states(run("e3", "start", repo, "dev", "--filter", "b").out) == {"a": "ran", "b": "ran"}
    assert _states(run("e3", "start", repo, "dev", "--filter", "[cd]").out) == {"a": "cached", "b": "cached", "c": "ran", "d": "ran"}
    r = run("e3", "start", repo, "dev", "--filter", "nope", expect=128)
    assert_one_line_error(r, "nope", "tasks: a, b, c, d")


def test_filter_with_only_runs_the_task_alone_and_force_forces_only_it(tmp_path):
    repo = _deploy(tmp_path, _diamond())
    r = run("e3", "start", repo, "dev", "--filter", "b", "--only", expect=1)
    assert _states(r.out) == {"b": "stuck"}  # a has not run: b's input has no value
    run("e3", "start", repo, "dev", "--filter", "b")
    assert _states(run("e3", "start", repo, "dev", "--filter", "b", "--force").out) == {"a": "cached", "b": "ran"}
    assert _states(run("e3", "start", repo, "dev", "--filter", "b", "--only", "--force").out) == {"b": "ran"}
    assert "--only needs --filter" in run("e3", "start", repo, "dev", "--only", expect=2).err


def test_dry_run_says_what_would_run_what_is_cached_and_what_waits_and_runs_nothing(tmp_path):
    repo = _deploy(tmp_path, _diamond())
    before = run("e3-rev-parse", repo, "dev").out
    out = run("e3", "start", repo, "dev", "--dry-run").out.splitlines()
    assert out[0].split()[:2] == ["a", "run"] and "no result for its current inputs" in out[0]
    assert out[1].split()[:2] == ["b", "waits"] and "after a" in out[1]
    assert out[-1] == "4 tasks: 1 to run, 3 waiting (dry run: nothing was run)"
    assert run("e3-rev-parse", repo, "dev").out == before  # nothing ran, nothing committed
    run("e3", "start", repo, "dev", "--filter", "b")
    out = run("e3", "start", repo, "dev", "-n").out.splitlines()
    assert [line.split()[:2] for line in out[:4]] == [["a", "up-to-date"], ["b", "up-to-date"], ["c", "run"], ["d", "waits"]]
    import json

    plan = json.loads(run("e3", "start", repo, "dev", "--dry-run", "--json", "--filter", "b", "--force").out)
    assert [(t["task"], t["action"]) for t in plan["tasks"]] == [("a", "up-to-date"), ("b", "run")]
    assert plan["tasks"][1]["reason"] == "--force"


def test_a_failed_task_skips_its_dependents_and_the_others_go_on(tmp_path):
    x = sdk.input("x", IntegerType, 1)
    bad = sdk.custom_task("bad", [x], IntegerType, _script("echo about to fail >&2; exit 3"))
    after = _add("after-bad", bad.output)
    good = _add("good", x)
    repo = _deploy(tmp_path, sdk.package("fails", "1.0.0", after, good))
    r = run("e3", "start", repo, "dev", expect=1)
    assert _states(r.out) == {"bad": "failed", "after-bad": "skipped", "good": "ran"}
    assert f"e3 logs {repo} dev.bad" in r.out
    assert run("e3", "get", repo, "dev.tasks.good.output").out.strip() == "2"


def test_an_unassigned_input_leaves_its_task_stuck(tmp_path):
    x = sdk.input("x", IntegerType)
    repo = _deploy(tmp_path, sdk.package("stuck", "1.0.0", _add("a", x)))
    r = run("e3", "start", repo, "dev", expect=1)
    assert _states(r.out) == {"a": "stuck"}
    assert ".inputs.x" in r.out


def _slow_package(marker: Path, name: str = "slow"):
    """x -> slow (sleeps while `marker` exists, then copies x) -> after."""
    x = sdk.input("x", IntegerType, 1)
    slow = sdk.custom_task(
        "slow", [x], IntegerType, _script(f"while [ -e '{marker}' ]; do sleep 0.05; done; cp {{in0}} {{out}}")
    )
    return sdk.package(name, "1.0.0", _add("after", slow.output))


def _popen_start(repo: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["e3", "start", str(repo), "dev", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env()
    )


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _running(repo: Path) -> bool:
    return any(p.suffix == ".cbor" for p in (repo / ".e3" / "queue" / "local" / "claimed").glob("*"))


def test_a_second_start_on_the_same_workspace_is_refused(tmp_path):
    marker = tmp_path / "hold"
    marker.touch()
    repo = _deploy(tmp_path, _slow_package(marker))
    first = _popen_start(repo)
    try:
        _wait_for(lambda: _running(repo))
        second = run("e3", "start", repo, "dev", expect=128)
        assert_one_line_error(second, "already running")
    finally:
        marker.unlink()
        first.communicate(timeout=60)
    assert first.returncode == 0


def test_an_input_set_during_the_run_reruns_its_downstream(tmp_path):
    marker = tmp_path / "hold"
    marker.touch()
    repo = _deploy(tmp_path, _slow_package(marker))
    proc = _popen_start(repo)
    try:
        _wait_for(lambda: _running(repo))
        (tmp_path / "x.east").write_text("41")
        run("e3", "set", repo, "dev.inputs.x", tmp_path / "x.east")
    finally:
        marker.unlink()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # the output computed from x=1 was never written; the run went again with x=41
    assert run("e3", "get", repo, "dev.tasks.after.output").out.strip() == "42"
    log = run("e3", "workspace", "log", repo, "dev").out
    assert "set" in log


def test_ctrl_c_cancels_running_tasks_and_the_next_start_finishes(tmp_path):
    marker = tmp_path / "hold"
    marker.touch()
    repo = _deploy(tmp_path, _slow_package(marker))
    proc = _popen_start(repo)
    _wait_for(lambda: _running(repo))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    assert b"cancelled" in err
    assert not _running(repo)
    marker.unlink()
    again = run("e3", "start", repo, "dev")
    assert _states(again.out) == {"slow": "ran", "after": "ran"}


def _start_claiming_after(repo: Path, seconds: float, *extra: str, **popen) -> subprocess.Popen:
    """`e3 start` whose running executions get their claimed queue entry after `seconds`
    (e3.exec.queue_executor.CLAIM_AFTER), in its own process group."""
    import sys

    code = (
        "import sys; from e3.exec import queue_executor; queue_executor.CLAIM_AFTER = float(sys.argv[1]); "
        "from e3.cli._dispatch import main; sys.exit(main(sys.argv[2:]))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(seconds), "start", str(repo), "dev", *extra],
        env=command_env(), start_new_session=True, **popen,
    )


def _children(pid: int) -> list[int]:
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def _state(pid: int) -> str:
    """The process's state letter ('Z': a zombie, dead), or 'Z' if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _queue_files(repo: Path) -> list[Path]:
    """Every queue entry, pending, claimed or completed (done/)."""
    return sorted(p for p in (repo / ".e3" / "queue").rglob("*") if p.is_file())


def test_a_run_whose_tasks_end_before_their_claims_are_due_writes_nothing_on_the_queue(tmp_path):
    repo = _deploy(tmp_path, _diamond())
    proc = _start_claiming_after(repo, 3600, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert _states(out.decode()) == {"a": "ran", "b": "ran", "c": "ran", "d": "ran"}
    assert _queue_files(repo) == []  # no entry written, so none claimed, completed or kept for reuse
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"
    assert set(_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}


@pytest.mark.parametrize("how", ["kill -9", "Ctrl-C"])
def test_a_run_stopped_while_a_task_has_no_claimed_entry_yet_loses_nothing(tmp_path, how):
    """The task runs in a worker of the run, with no entry on the queue (its claim is not due):
    what the run leaves is decided on from the dataflow by the next run, as if it never began."""
    marker, began = tmp_path / "hold", tmp_path / "began"
    marker.touch()
    x = sdk.input("x", IntegerType, 1)
    slow = sdk.custom_task(
        "slow", [x], IntegerType, _script(f"touch '{began}'; while [ -e '{marker}' ]; do sleep 0.05; done; cp {{in0}} {{out}}")
    )
    repo = _deploy(tmp_path, sdk.package("slow", "1.0.0", _add("after", slow.output), _add("quick", x, 10)))
    proc = _start_claiming_after(repo, 3600, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: began.exists() or proc.poll() is not None)
        assert proc.poll() is None and _queue_files(repo) == []
        status = run("e3", "workspace", "status", repo, "dev").out
        assert "slow: running" not in status and f"pid {proc.pid}" in status  # the run is, its task not yet said to be
        if how == "kill -9":
            workers = _children(proc.pid)
            assert workers, "the run has no warm worker"
            os.killpg(proc.pid, signal.SIGKILL)
            # Its warm workers (in sessions of their own, out of reach of that kill) die with it:
            # none of them goes on to record anything for an execution that has no entry.
            _wait_for(lambda: all(_state(w) == "Z" for w in workers))
        else:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if how == "Ctrl-C":
        assert proc.returncode == 130 and b"cancelled" in err and b"Traceback" not in err, err
    marker.unlink()
    assert _queue_files(repo) == []
    states = _states(run("e3", "start", repo, "dev").out)
    assert states["slow"] == "ran" and states["after"] == "ran" and states["quick"] in ("ran", "cached")
    assert run("e3", "get", repo, "dev.tasks.after.output").out.strip() == "2"
    assert run("e3", "get", repo, "dev.tasks.quick.output").out.strip() == "11"
    run("e3-fsck", "--repo", repo)
    assert set(_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}


def test_timeout_fails_only_the_slow_task(tmp_path):
    marker = tmp_path / "hold"
    marker.touch()
    x = sdk.input("x", IntegerType, 1)
    slow = sdk.custom_task("slow", [x], IntegerType, _script(f"while [ -e '{marker}' ]; do sleep 0.05; done; cp {{in0}} {{out}}"))
    repo = _deploy(tmp_path, sdk.package("t", "1.0.0", slow, _add("quick", x)))
    r = run("e3", "start", repo, "dev", "--timeout", "1", expect=1)
    assert _states(r.out) == {"slow": "failed", "quick": "ran"}


def test_unknown_workspace_and_undeployed_workspace_are_clear_errors(tmp_path):
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    assert_one_line_error(run("e3", "start", repo, "nope", expect=128), "nope")
    run("e3", "workspace", "create", repo, "empty")
    assert_one_line_error(run("e3", "start", repo, "empty", expect=128), "deploy")


def test_workers_started_by_hand_share_the_work_of_a_start(tmp_path):
    pids = tmp_path / "pids"
    x = sdk.input("x", IntegerType, 1)
    tasks = [
        sdk.custom_task(f"t{i:02d}", [x], IntegerType, _script(f"echo $PPID >> '{pids}'; sleep 0.05; cp {{in0}} {{out}}"))
        for i in range(12)
    ]
    repo = _deploy(tmp_path, sdk.package("fan", "1.0.0", *tasks))
    worker = subprocess.Popen(["e3-run-task", str(repo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
    try:
        time.sleep(0.5)  # the worker is polling the queue
        out = run("e3", "start", repo, "dev", "--concurrency", "1").out
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()  # never leave a worker behind, whatever went wrong
            worker.communicate()
    assert set(_states(out).values()) == {"ran"} and len(_states(out)) == 12
    spawners = set(pids.read_text().split())
    assert len(spawners) >= 2, "every task ran in one process: the hand-started worker took none"
    for i in (0, 11):
        assert run("e3", "get", repo, f"dev.tasks.t{i:02d}.output").out.strip() == "1"


def test_on_a_terminal_progress_is_live_on_stderr_and_the_summary_on_stdout(tmp_path):
    import pty

    repo = _deploy(tmp_path, _diamond())
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        ["e3", "start", str(repo), "dev"], stdout=subprocess.PIPE, stderr=slave, env={**command_env(), "TERM": "xterm"}
    )
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.returncode == 0
    assert b"Traceback" not in shown
    text = shown.decode(errors="replace")
    assert "4 tasks: " in text and " done (" in text  # the live lines, drawn on the terminal
    # left behind: the summary table, slowest first
    assert "dev: 4 tasks in" in text and "state" in text and "ran " in text and " 4 " in text
    assert out.decode().splitlines()[-1].startswith("4 tasks: 4 ran")
    assert "ran a" not in out.decode()  # per-task lines are for pipes only


def test_a_task_is_reported_started_when_a_worker_starts_it_never_more_than_concurrency(tmp_path):
    # The executor hands a worker its next task while it runs one, so that none idles: a task
    # handed over is not running yet. "running 291 with a limit of 4" was counting those.
    import json

    x = sdk.input("x", IntegerType, 1)
    repo = _deploy(tmp_path, sdk.package("wide", "1.0.0", *[_add(f"t{i}", x, i) for i in range(10)]))
    events = [json.loads(line) for line in run("e3", "start", repo, "dev", "-j", "2", "--json").out.splitlines()]
    running, most = set(), 0
    for e in events:
        if e["event"] == "task_started":
            running.add(e["task"])
            most = max(most, len(running))
        elif e["event"] == "task_finished":
            assert e["task"] in running, f"{e['task']} ended without starting"
            running.discard(e["task"])
    assert 1 <= most <= 2 and not running
    assert sum(e["event"] == "task_finished" for e in events) == 10


def test_json_prints_the_runs_events_as_lines_and_the_summary_last(tmp_path):
    import json

    repo = _deploy(tmp_path, _diamond())
    events = [json.loads(line) for line in run("e3", "start", repo, "dev", "--json").out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "run_finished" and kinds.count("task_finished") == 4
    assert kinds.index("task_started") < kinds.index("task_finished")
    summary = events[-1]["summary"]
    assert summary["workspace"] == "dev" and sorted((t["task"], t["state"]) for t in summary["tasks"]) == [
        ("a", "ran"), ("b", "ran"), ("c", "ran"), ("d", "ran")
    ]
    again = [json.loads(line) for line in run("e3", "start", repo, "dev", "--json").out.splitlines()]
    assert {e["state"] for e in again if e["event"] == "task_finished"} == {"cached"}


def test_a_path_that_is_not_a_repository_is_one_line_error(tmp_path):
    assert_one_line_error(run("e3", "start", tmp_path / "nowhere", "dev", expect=128), "not an e3 repository")


def test_a_concurrency_below_one_or_a_timeout_not_above_zero_is_a_usage_error(tmp_path):
    repo = _deploy(tmp_path, _diamond())
    before = run("e3-rev-parse", "--repo", repo, "dev").out
    r = run("e3", "start", repo, "dev", "--concurrency", "0", expect=2)
    assert "must be at least 1" in r.err
    for bad in ("0", "-1", "soon"):  # as e3-run-task --timeout: a bound that could never be met
        r = run("e3", "start", repo, "dev", "--timeout", bad, expect=2)
        assert "--timeout" in r.err and bad in r.err
    assert run("e3-rev-parse", "--repo", repo, "dev").out == before  # nothing ran, nothing committed


def test_a_batch_is_committed_once_it_holds_its_most_finished_tasks_however_recent_the_last_commit(tmp_path, monkeypatch):
    """Each finished task holds its claim (an open file) until its commit: a run whose commits had
    grown slow (or that was stopped a while) once held 20,000 and ran out of files."""
    from e3 import api
    from e3.exec import scheduler
    from e3.repo import workspace
    from e3.storage.repository import open_repository

    x = sdk.input("x", IntegerType, 1)
    pkg = sdk.package("wide", "1.0.0", *[_add(f"t{i:02d}", x, i) for i in range(40)])
    repo = _deploy(tmp_path, pkg)
    before = len(list(workspace.history(open_repository(repo), "dev")))
    monkeypatch.setattr(scheduler, "FLUSH_INTERVAL", 3600.0)  # no commit for time's sake alone
    monkeypatch.setattr(scheduler, "MAX_UNCOMMITTED", 8)
    assert scheduler.uncommitted_limit() == 8
    run_ = api.open(str(repo)).dataflow_start("dev", concurrency=2)
    states = [e.state for e in run_.events() if type(e).__name__ == "TaskFinished"]
    assert states == ["ran"] * 40
    commits = len(list(workspace.history(open_repository(repo), "dev"))) - before
    assert commits >= 40 // 8
    assert run("e3", "get", repo, "dev.tasks.t39.output").out.strip() == "40"


# ------------------------------------------------------------ pipelined chains (e3.exec.scheduler._pipeline)


def _chain_package(marker: Path, *, middle: str = "cp {in0} {out}", first=None):
    """x -> a -> b -> c (a shell task: appends to `marker`, then runs `middle`) -> d -> e."""
    x = sdk.input("x", IntegerType, 1)
    a = sdk.task("a", [x], East.function([IntegerType], IntegerType, first or (lambda b, v: v + 1)))
    b = _add("b", a.output)
    c = sdk.custom_task("c", [b.output], IntegerType, _script(f"echo c >> '{marker}'; {middle}"))
    return sdk.package("piped", "1.0.0", _add("e", _add("d", c.output).output))


def _run_holding(repo: Path, marker: Path, lines: int, **kw):
    """Run dev in this process; when a ends, this process holds (as it may while committing)
    until `marker` has `lines` lines: c, two tasks on, must run meanwhile, without this process
    (b was handed over before the hold, as always). The summary, and whether c ran while held."""
    from e3.exec import start
    from e3.storage.repository import open_repository

    started = start.WorkspaceRun(open_repository(repo), "dev", concurrency=1, **kw)
    held = {}

    def observer(kind, report):
        if kind == "end" and report.name == "a":
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (not marker.exists() or len(marker.read_text().split()) < lines):
                time.sleep(0.02)
            held["c ran"] = marker.exists() and len(marker.read_text().split()) >= lines

    for _ in started.steps(observer):
        pass
    return started.summary, held.get("c ran")


def test_a_chain_runs_on_while_start_is_busy_and_gives_the_same_outputs(tmp_path):
    marker = tmp_path / "c-ran"
    repo = _deploy(tmp_path, _chain_package(marker))
    summary, c_ran = _run_holding(repo, marker, 1)
    assert c_ran  # two tasks on from a ran before this process took in a's answer
    assert {n: r.state for n, r in summary.reports.items()} == dict.fromkeys("abcde", "ran")
    assert run("e3", "get", repo, "dev.tasks.e.output").out.strip() == "5"
    assert set(_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}
    # --force: every task runs again, pipelined ones too (their worker does not look at the memo)
    summary, c_ran = _run_holding(repo, marker, 2, force=True)
    assert c_ran and {r.state for r in summary.reports.values()} == {"ran"}
    assert marker.read_text().split() == ["c", "c"]


def test_a_failure_in_a_pipelined_chain_skips_what_follows_as_a_failure_always_did(tmp_path):
    marker = tmp_path / "c-ran"
    repo = _deploy(tmp_path, _chain_package(marker, middle="exit 3"))
    summary, c_ran = _run_holding(repo, marker, 1)
    assert c_ran
    reports = summary.reports
    assert {n: r.state for n, r in reports.items()} == {"a": "ran", "b": "ran", "c": "failed", "d": "skipped", "e": "skipped"}
    assert reports["d"].message == "upstream task c failed" and reports["e"].message == "upstream task d did not finish"
    assert not list((repo / ".e3" / "queue").rglob("*.cbor"))
    r = run("e3", "start", repo, "dev", expect=1)  # as the command reports it
    assert _states(r.out) == {"a": "cached", "b": "cached", "c": "failed", "d": "skipped", "e": "skipped"}


def test_a_memo_hit_in_the_middle_of_a_pipelined_chain_is_reused_not_run_or_recorded_again(tmp_path):
    from e3.storage import records
    from e3.storage.repository import open_repository

    marker = tmp_path / "c-ran"
    # a gives 0 whatever x is: after x changes, a runs again and b finds its result in the memo
    repo = _deploy(tmp_path, _chain_package(marker, first=lambda b, v: v - v))
    assert set(_states(run("e3", "start", repo, "dev").out).values()) == {"ran"}
    r = open_repository(repo)
    pointers = {p: p.read_bytes() for p in (repo / ".e3" / "tasks").rglob("*") if p.is_file()}
    run("e3", "set", repo, "dev.inputs.x", _write_int(tmp_path, 7))
    summary, _ = _run_holding(repo, marker, 2)
    assert {n: rep.state for n, rep in summary.reports.items()} == {"a": "ran", **dict.fromkeys("bcde", "cached")}
    assert marker.read_text().split() == ["c"]  # c ran once, in the first run
    changed = [p for p in (repo / ".e3" / "tasks").rglob("*") if p.is_file() and pointers.get(p) != p.read_bytes()]
    assert len(changed) == 1  # a's new task_id alone: the cached tasks' records stand as they were
    assert records.summary(r, summary.reports["b"].task_id).kind == "success"
    assert run("e3", "get", repo, "dev.tasks.e.output").out.strip() == "3"


def _write_int(tmp_path: Path, n: int) -> Path:
    p = tmp_path / f"{n}.east"
    p.write_text(str(n))
    return p


def test_cancel_while_a_chain_is_pipelined_runs_nothing_behind_and_reports_as_before(tmp_path):
    from e3.exec import start
    from e3.storage.repository import open_repository

    hold = tmp_path / "hold"
    hold.touch()
    x = sdk.input("x", IntegerType, 1)
    slow = sdk.custom_task("slow", [x], IntegerType, _script(f"while [ -e '{hold}' ]; do sleep 0.05; done; cp {{in0}} {{out}}"))
    marker = tmp_path / "after-ran"
    after = sdk.custom_task("after", [slow.output], IntegerType, _script(f"echo after >> '{marker}'; cp {{in0}} {{out}}"))
    repo = _deploy(tmp_path, sdk.package("held", "1.0.0", _add("last", after.output)))
    started = start.WorkspaceRun(open_repository(repo), "dev", concurrency=1)

    def observer(kind, report):
        if kind == "start" and report.name == "slow":
            started.cancel()

    for _ in started.steps(observer):
        pass
    reports = started.summary.reports
    assert {n: r.state for n, r in reports.items()} == {"slow": "cancelled", "after": "skipped", "last": "skipped"}
    assert reports["after"].message == "upstream task slow did not finish"
    assert not marker.exists()
    hold.unlink()
    assert _states(run("e3", "start", repo, "dev").out) == {"slow": "ran", "after": "ran", "last": "ran"}


def test_a_run_whose_plan_fails_leaves_no_worker_behind(tmp_path):
    """The local pool's first worker starts while the task graph is read: a package that turns
    out damaged is one clear error, and that worker does not outlive it (a server lives on)."""
    from e3.errors import E3Error
    from e3.exec.start import WorkspaceRun
    from e3.repo import workspace
    from e3.storage.repository import open_repository

    # A package no other test deploys: a process keeps the graphs it built, by package hash.
    x = sdk.input("x", IntegerType, 1)
    repo = _deploy(tmp_path, sdk.package("plan-fails", "1.0.0", _add("a", x, 7)))
    package = workspace.read_snapshot(open_repository(repo), "dev").package_hash
    path = repo / ".e3" / "objects" / package[:2] / f"{package[2:]}.beast2"
    os.chmod(path, 0o644)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    for cached in (repo / ".e3" / "cache").rglob("*"):  # the plan deploy made: read again, from the package
        if cached.is_file():
            cached.unlink()

    def workers() -> list[int]:
        pids = []
        for pid in os.listdir("/proc"):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"e3.exec.pool_worker" in cmdline and " Z " not in stat:
                pids.append(int(pid))
        return pids

    assert workers() == []
    for _ in range(2):  # the second: the workspace was released, not "already running"
        with pytest.raises(E3Error, match=package[:12]):
            WorkspaceRun(open_repository(repo), "dev")
        assert workers() == []
