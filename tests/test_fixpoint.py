"""The fixpoint entry (e3.repo.fixpoint): a run of every task right after a no-op run settles
them all cached from `cache/fixpoint/<WS>.cbor`, without planning; anything that moves the
workspace or `tasks/`, empties an output, or leaves an entry on the queue takes the long way."""
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
    """A repository whose dev ran, then ran again with nothing to do (which kept the fixpoint);
    and that no-op run's output."""
    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    run("e3", "start", repo, "dev")
    assert not _entry(repo).exists()  # tasks ran: nothing is known to be a fixpoint yet
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
    from e3.repo import workspace
    from e3.storage import identity, records
    from e3.storage.repository import open_repository

    r = open_repository(repo)
    view = workspace.read(r, "dev")
    from e3.exec.plan import graph_of

    node = graph_of(r, view.package_hash).nodes["b"]
    tid = identity.task_id(node.task_hash, [view.datasets[p] for p in node.task.inputs])
    mine = records.latest(r, tid)
    # What a worker that failed b's execution leaves: a newer record, renamed into tasks/.
    records.write(r, tid, records.Record("failed", "elsewhere", mine.input_hashes, records.now(), records.now(), exit_code=1))
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
