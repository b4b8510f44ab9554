"""The fixpoint entry (e3.repo.fixpoint): a run of every task right after a complete run (one
that found every task cached, or one that executed them) settles them all cached from
`cache/fixpoint/<WS>.cbor`, without planning; anything that moves the workspace or `tasks/`,
empties an output, or leaves an entry on the queue takes the long way."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from e3_testing.commands import deployed, run, start_states, write
from e3_testing.packages import diamond_zip


def _entry(repo: Path) -> Path:
    return repo / ".e3" / "cache" / "fixpoint" / "dev.cbor"


def _at_fixpoint(tmp_path: Path) -> tuple[Path, str]:
    """A repository whose dev ran, then ran again with nothing to do, the long way (the entry
    the first run kept removed first), which kept the fixpoint; and that no-op run's output."""
    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    run("e3", "start", repo, "dev")
    _entry(repo).unlink()  # kept by that run (see the tests of a first run, below)
    noop = run("e3", "start", repo, "dev").out
    assert set(start_states(noop).values()) == {"cached"}
    assert _entry(repo).exists()
    return repo, noop


def _without_plan_and_view(repo: Path) -> tuple[Path, Path]:
    """Remove the task graph's and the dataset tree's caches: a run that plans writes them again."""
    plans, views = repo / ".e3" / "cache" / "plans", repo / ".e3" / "cache" / "views"
    shutil.rmtree(plans)
    shutil.rmtree(views)
    return plans, views


def _timeless(out: str) -> str:
    return re.sub(r"\d+\.\d+s", "Ns", out)


def test_a_run_after_a_no_op_run_settles_every_task_from_the_fixpoint_without_planning(tmp_path):
    repo, noop = _at_fixpoint(tmp_path)
    plans, views = _without_plan_and_view(repo)
    r = run("e3", "start", repo, "dev")
    assert _timeless(r.out) == _timeless(noop)  # the same report, task by task
    assert not plans.exists() and not views.exists()  # neither the graph nor the tree was read
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"
    # As JSON events (the API's), the same as a run that plans: a TaskFinished per task, with its id.
    short = _events(run("e3", "start", repo, "dev", "--json").out)
    _entry(repo).unlink()
    assert _events(run("e3", "start", repo, "dev", "--json").out) == short
    assert _entry(repo).exists() and plans.exists()  # the run that planned kept it again
    finished = [e for e in short if e["event"] == "task_finished"]
    assert [(e["task"], e["state"], len(e["task_id"])) for e in finished] == [(t, "cached", 64) for t in "abcd"]


def _events(out: str) -> list[dict]:
    """`e3 start --json`'s events, the run's seconds taken out; task events in name order."""
    import json

    events = [json.loads(line) for line in out.splitlines()]
    for e in events:
        e.pop("seconds", None)
        e.get("summary", {}).pop("seconds", None)
    return sorted(events, key=lambda e: (e["event"], e.get("task", "")))


def test_a_set_moves_the_commit_and_the_next_run_plans_and_runs_what_changed(tmp_path):
    repo, _ = _at_fixpoint(tmp_path)
    run("e3", "set", repo, "dev.inputs.x", write(tmp_path, "x.east", "5"))
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"ran"}
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "122"
    # That run ran tasks: the entry still names the old commit, which no run will trust again.
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}


def test_an_output_emptied_since_is_computed_again(tmp_path):
    repo, _ = _at_fixpoint(tmp_path)
    obj = run("e3-rev-parse", "--repo", repo, "dev.tasks.b.output").out.strip()
    path = repo / ".e3" / "objects" / obj[:2] / f"{obj[2:]}.beast2"
    os.chmod(path, 0o644)
    path.write_bytes(b"")
    states = start_states(run("e3", "start", repo, "dev").out)
    assert states["b"] == "ran" and states["a"] == states["c"] == states["d"] == "cached"
    assert path.stat().st_size > 0 and run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"


def test_a_record_written_since_by_another_worker_is_seen(tmp_path):
    repo, _ = _at_fixpoint(tmp_path)
    _fail(repo, "b")
    states = start_states(run("e3", "start", repo, "dev").out)
    assert states["b"] == "ran" and states["a"] == states["c"] == states["d"] == "cached"


def test_an_entry_left_on_the_queue_is_decided_on_as_without_the_fixpoint(tmp_path):
    repo, _ = _at_fixpoint(tmp_path)
    run("e3-enqueue", repo, "dev", "--force", "a")
    r = run("e3", "start", repo, "dev")
    assert "dropped: a:" in r.out, r.out  # the memo holds: that execution is not run, and not left
    assert not [p for p in (repo / ".e3" / "queue").rglob("*") if p.is_file() and "pending" in p.parts]
    assert set(start_states(r.out).values()) == {"cached"}


def test_filter_and_force_plan_as_ever(tmp_path):
    repo, _ = _at_fixpoint(tmp_path)
    plans, _views = _without_plan_and_view(repo)
    assert start_states(run("e3", "start", repo, "dev", "--filter", "b").out) == {"a": "cached", "b": "cached"}
    assert plans.exists()
    assert set(start_states(run("e3", "start", repo, "dev", "--force").out).values()) == {"ran"}


def test_a_damaged_entry_is_listed_by_fsck_and_ignored(tmp_path):
    repo, _ = _at_fixpoint(tmp_path)
    data = bytearray(_entry(repo).read_bytes())
    data[len(data) // 2] ^= 0x01
    _entry(repo).write_bytes(bytes(data))
    assert "cache/fixpoint/dev.cbor" in run("e3-fsck", "--repo", repo, expect=None).out
    plans, _views = _without_plan_and_view(repo)
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}
    assert plans.exists()  # planned: the entry was not used
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"


def test_an_entry_of_another_workspace_s_commit_is_not_used(tmp_path):
    """Keyed by the workspace's name, trusted only for the commit it names: a workspace removed
    and made again under the same name, with the same package deployed, plans again."""
    repo, _ = _at_fixpoint(tmp_path)
    run("e3", "workspace", "remove", repo, "dev")
    run("e3", "workspace", "create", repo, "dev")
    run("e3", "workspace", "deploy", repo, "dev", "diamond@1.0.0")
    plans, _views = _without_plan_and_view(repo)
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}
    assert plans.exists()


# A run that executed tasks keeps the entry too: the first no-op after it is as quick as later ones.


def _after_first_run(tmp_path: Path) -> Path:
    """A repository whose dev ran every task once (which kept the fixpoint)."""
    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"ran"}
    assert _entry(repo).exists()
    return repo


def _took_the_long_way(repo: Path, **states: str) -> None:
    """The next run planned (the caches of the graph and the tree removed first are back), each task
    ended as `states` says (the others cached), and d is what the long way computes."""
    plans, _views = _without_plan_and_view(repo)
    got = start_states(run("e3", "start", repo, "dev").out)
    assert got == {t: states.get(t, "cached") for t in "abcd"}, got
    assert plans.exists()


def test_the_first_no_op_after_a_run_that_executed_every_task_settles_from_the_fixpoint(tmp_path):
    repo = _after_first_run(tmp_path)
    plans, views = _without_plan_and_view(repo)
    r = run("e3", "start", repo, "dev")
    assert set(start_states(r.out).values()) == {"cached"} and len(start_states(r.out)) == 4
    assert not plans.exists() and not views.exists()  # neither the graph nor the tree was read
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"
    assert (repo / ".e3" / "cache" / "memo" / "dev.cbor").exists()  # and the memo index, for a run after a set


def test_a_set_after_a_first_run_runs_what_it_changed(tmp_path):
    repo = _after_first_run(tmp_path)
    run("e3", "set", repo, "dev.inputs.x", write(tmp_path, "x.east", "5"))
    _took_the_long_way(repo, a="ran", b="ran", c="ran", d="ran")
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "122"


def test_an_output_emptied_after_a_first_run_is_computed_again(tmp_path):
    repo = _after_first_run(tmp_path)
    obj = run("e3-rev-parse", "--repo", repo, "dev.tasks.c.output").out.strip()
    path = repo / ".e3" / "objects" / obj[:2] / f"{obj[2:]}.beast2"
    os.chmod(path, 0o644)
    path.write_bytes(b"")
    _took_the_long_way(repo, c="ran")
    assert path.stat().st_size > 0 and run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"


def _fail(repo: Path, task: str) -> None:
    """What a worker that failed `task`'s execution on its current inputs leaves (another
    workspace's run of the same task id, or one started by hand): a newer record, renamed into tasks/."""
    from e3.exec.plan import graph_of
    from e3.repo import workspace
    from e3.storage import identity, records
    from e3.storage.repository import open_repository

    r = open_repository(repo)
    view = workspace.read(r, "dev")
    node = graph_of(r, view.package_hash).nodes[task]
    tid = identity.task_id(node.task_hash, [view.datasets[p] for p in node.task.inputs])
    mine = records.latest(r, tid)
    records.write(r, tid, records.Record("failed", "elsewhere", mine.input_hashes, records.now(), records.now(), exit_code=1))


def test_a_record_another_writer_changed_after_a_first_run_is_seen(tmp_path):
    repo = _after_first_run(tmp_path)
    _fail(repo, "b")
    _took_the_long_way(repo, b="ran")


def _first_run_in_process(repo: Path, monkeypatch, before_stat=None, before_store=None) -> None:
    """Carry out dev's first run in this process, calling `before_stat()` when the run is over and
    about to take the stat of tasks/ its entry rests on, and `before_store()` once it has read every
    pointer again under that stat, just before it writes the entry."""
    from e3.exec import start
    from e3.repo import fixpoint, memo_index
    from e3.storage.repository import open_repository

    for module, name, hook in ((memo_index, "settled_signature", before_stat), (fixpoint, "store", before_store)):
        if hook is not None:
            monkeypatch.setattr(module, name, _after(hook, getattr(module, name)))
    started = start.WorkspaceRun(open_repository(repo), "dev", concurrency=2)
    for _ in started.steps():
        pass
    assert {r.state for r in started.summary.reports.values()} == {"ran"}
    monkeypatch.undo()


def _after(hook, fn):
    """`fn`, called once `hook()` has been."""

    def called(*args):
        hook()
        return fn(*args)

    return called


def test_a_record_another_writer_changed_during_a_first_run_is_seen(tmp_path, monkeypatch):
    """Changed before the stat the entry rests on (in the same clock tick, it would not show in the
    stat): the run reads every pointer again once the clock has passed that stat, and finds it."""
    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    _first_run_in_process(repo, monkeypatch, before_stat=lambda: _fail(repo, "b"))
    _took_the_long_way(repo, b="ran")


def test_a_record_another_writer_changed_as_the_first_run_keeps_its_entry_is_seen(tmp_path, monkeypatch):
    """Changed after the run read the pointers again, as it writes its entry: the clock had passed
    the stat the entry keeps, so the change moves tasks/ to another stat, in any tick."""
    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    _first_run_in_process(repo, monkeypatch, before_store=lambda: _fail(repo, "b"))
    assert _entry(repo).exists()
    _took_the_long_way(repo, b="ran")


def test_a_set_during_a_first_run_sends_the_next_run_the_long_way(tmp_path, monkeypatch):
    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    from e3.exec import start
    from e3.storage.repository import open_repository

    started = start.WorkspaceRun(open_repository(repo), "dev", concurrency=2)
    x = write(tmp_path, "x.east", "5")

    def observer(kind, report):
        if kind == "end" and report.name == "a" and report.task_id is not None and not observer.done:
            observer.done = True
            run("e3", "set", repo, "dev.inputs.x", x)

    observer.done = False
    for _ in started.steps(observer):
        pass
    assert observer.done and started.summary.ok
    assert not _entry(repo).exists()  # another writer moved the workspace: nothing is kept
    plans, _views = _without_plan_and_view(repo)
    states = start_states(run("e3", "start", repo, "dev").out)
    assert plans.exists() and set(states) == set("abcd") and "failed" not in states.values()
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "122"


def test_a_run_killed_after_a_first_run_sends_the_next_run_the_long_way(tmp_path):
    """A forced run killed while its task runs leaves the workspace at the entry's commit, and its
    execution on the queue (and maybe a record in tasks/): the next run plans."""
    import signal
    import subprocess
    import time

    from e3 import sdk
    from e3.east import East, IntegerType
    from e3_testing.commands import command_env
    from e3_testing.packages import script

    marker = tmp_path / "hold"
    x = sdk.input("x", IntegerType, 1)
    slow = sdk.custom_task("slow", [x], IntegerType, script(f"while [ -e '{marker}' ]; do sleep 0.05; done; cp {{in0}} {{out}}"))
    after = sdk.task("after", [slow.output], East.function([IntegerType], IntegerType, lambda b, v: v + 1))
    zip_path = tmp_path / "slow.zip"
    sdk.export(sdk.package("slow", "1.0.0", after), zip_path)
    repo = deployed(tmp_path, zip_path, "slow@1.0.0")
    assert start_states(run("e3", "start", repo, "dev").out) == {"slow": "ran", "after": "ran"}
    assert _entry(repo).exists()
    marker.touch()
    proc = subprocess.Popen(
        ["e3", "start", str(repo), "dev", "--force", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=command_env(), start_new_session=True,  # its own process group: the kill takes its workers too
    )
    claimed = repo / ".e3" / "queue" / "local" / "claimed"
    deadline = time.monotonic() + 60
    while not any(p.suffix == ".cbor" for p in claimed.glob("*")):
        assert time.monotonic() < deadline and proc.poll() is None, "the forced run never started its task"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    marker.unlink()
    plans, _views = _without_plan_and_view(repo)
    states = start_states(run("e3", "start", repo, "dev").out)
    assert plans.exists(), states  # planned: the entry was not used
    assert set(states) == {"slow", "after"} and "failed" not in states.values()
    assert run("e3", "get", repo, "dev.tasks.after.output").out.strip() == "2"
