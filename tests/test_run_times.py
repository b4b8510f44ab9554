"""e3 start remembers how long each task ran (e3.repo.run_times) and hands out the longest work first."""
from __future__ import annotations

import json
from pathlib import Path

from e3_testing import commands
from e3_testing.commands import run
from e3_testing.packages import script

from e3 import sdk
from e3.east import IntegerType
from e3.repo import run_times, snapshot
from e3.storage.repository import open_repository

LONG = 0.6


def deployed(tmp_path: Path) -> Path:
    """Three independent tasks: a and b copy x at once, z sleeps first (graph order: a, b, z)."""
    x = sdk.input("x", IntegerType, 1)
    tasks = [sdk.custom_task(n, [x], IntegerType, script("cp {in0} {out}")) for n in ("a", "b")]
    tasks.append(sdk.custom_task("z", [x], IntegerType, script(f"sleep {LONG}; cp {{in0}} {{out}}")))
    zip_path = tmp_path / "pkg.zip"
    sdk.export(sdk.package("times", "1.0.0", *tasks), zip_path)
    return commands.deployed(tmp_path, zip_path, "times@1.0.0")


def started_and_seconds(*args) -> tuple[list[str], dict[str, float]]:
    """The order in which e3 start --json started tasks, and the seconds it reported for each."""
    events = [json.loads(line) for line in run("e3", "start", *args, "--json").out.splitlines()]
    order = [e["task"] for e in events if e["event"] == "task_started"]
    seconds = {e["task"]: e["seconds"] for e in events if e["event"] == "task_finished"}
    return order, seconds


def test_a_run_hands_out_the_task_that_ran_longest_last_time_first(tmp_path):
    repo = deployed(tmp_path)
    order, _ = started_and_seconds(repo, "dev", "-j", "1")
    assert order == ["a", "b", "z"]  # nothing known yet: the graph's order
    known = run_times.load(open_repository(repo), "dev")
    assert set(known) == {"a", "b", "z"} and known["z"] >= LONG > known["a"]

    order, seconds = started_and_seconds(repo, "dev", "-j", "1", "--force")
    assert order[0] == "z"
    # a and b waited behind z for the one worker: their time counts from when it began them
    assert seconds["z"] >= LONG and seconds["a"] < LONG and seconds["b"] < LONG


def test_a_damaged_times_entry_leaves_the_graph_order_and_is_written_anew(tmp_path):
    repo = deployed(tmp_path)
    run("e3", "start", repo, "dev", "-j", "1")
    entry = repo / ".e3" / "cache" / "times" / "dev.cbor"
    entry.write_bytes(entry.read_bytes()[:-1] + b"\0")
    assert "cache/times/dev.cbor: damaged" in run("e3-fsck", "--repo", repo, expect=None).out
    order, _ = started_and_seconds(repo, "dev", "-j", "1", "--force")
    assert order == ["a", "b", "z"]
    assert snapshot.decode_entry(entry.read_bytes()) is not None
    assert set(run_times.load(open_repository(repo), "dev")) == {"a", "b", "z"}


def test_times_of_tasks_the_workspace_no_longer_has_are_dropped(tmp_path):
    r = open_repository(deployed(tmp_path))
    run_times.save(r, "dev", {"a": 1.0, "gone": 2.0}, ["a", "gone"])
    run_times.save(r, "dev", {"b": 3.0}, ["a", "b"])
    assert run_times.load(r, "dev") == {"a": 1.0, "b": 3.0}
    run_times.save(r, "../escape", {"a": 1.0}, ["a"])  # a name that is no file name keeps nothing
    assert not list((r.root / "cache").glob("**/escape*"))
