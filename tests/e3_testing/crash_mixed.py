"""Kill -9 trials of `e3 start` together with workers started by hand (`e3-run-task`).

Shared by tests/test_crash_mixed.py and bench/soak.py (`--mode start`). A
trial changes the workspace's input, then runs `e3 start` and two polling
`e3-run-task` workers on the same repository, SIGKILLs one of them (a start
with its warm pool, or a worker) at random moments and starts it again, then
lets the last `e3 start` finish. It counts, like crash_harness:

- lost: a task whose current execution (task and current inputs) has no
  success record, or whose output is not its chain's expected value;
- completed twice: an execution with two terminal records in the store;
- corrupt: anything e3-fsck reports but temporary files a kill left behind
  (`leftovers`; a spawned task orphaned by a kill may still be writing its
  scratch directory when the next `e3 start` sweeps, and `e3 repo gc` removes it).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from e3_testing.commands import command_env, run
from e3_testing.crash_harness import Verdict

from e3 import sdk
from e3.east import East, IntegerType
from e3.storage import logs, records
from e3.storage.identity import task_id
from e3.storage.repository import open_repository

CHAINS, LENGTH = 5, 10  # 50 tasks


def package():
    """Five chains of ten tasks on inputs.x: East `+1` tasks, every fifth a spawned shell `cp` after 50 ms."""
    x = sdk.input("x", IntegerType, 0)
    ends = []
    for c in range(CHAINS):
        prev = x
        for i in range(LENGTH):
            source = prev if i == 0 else prev.output
            if i % 5 == 4:
                prev = sdk.custom_task(
                    f"c{c}-{i}", [source], IntegerType,
                    lambda b, ins, out: East.str("sleep 0.05; cp ", sdk.quote(ins.get(0)), " ", sdk.quote(out)),
                )
            else:
                prev = sdk.task(f"c{c}-{i}", [source], East.function([IntegerType], IntegerType, lambda b, v: v + 1))
        ends.append(prev)
    return sdk.package("crashy", "1.0.0", *ends)


def expected(x: int) -> int:
    return x + sum(1 for i in range(LENGTH) if i % 5 != 4)


def setup(repo_dir: Path, scratch: Path) -> None:
    from e3_testing.commands import workspace_imported
    from e3_testing.crash_harness import keep_record_objects

    zip_path = scratch / "crashy.zip"
    if not zip_path.exists():
        sdk.export(package(), zip_path)
    workspace_imported(repo_dir, zip_path)
    keep_record_objects(repo_dir)


def _spawn(argv: list[str]) -> subprocess.Popen:
    # Own process group: killing a start takes its warm workers and spawned tasks with it, like a crash of the machine's view of it.
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=command_env(), start_new_session=True)


def _kill(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def trial(repo_dir: Path, scratch: Path, x: int, *, kills: int = 4, seed: int = 0) -> Verdict:
    rng = random.Random(seed)
    (scratch / "x.east").write_text(str(x))
    run("e3", "set", repo_dir, "dev.inputs.x", scratch / "x.east")
    t0 = time.monotonic()
    start = ["e3", "start", str(repo_dir), "dev", "-q"]
    worker = ["e3-run-task", str(repo_dir), "-q"]
    procs = {"start": _spawn(start), "w1": _spawn(worker), "w2": _spawn(worker)}
    v = Verdict(executions=CHAINS * LENGTH)
    try:
        while v.kills < kills:
            time.sleep(rng.uniform(0.05, 0.7))
            if procs["start"].poll() is not None:
                break  # the run finished before all kills were spent
            victim = rng.choice(["start", "start", "w1", "w2"])
            _kill(procs[victim])
            v.kills += 1
            procs[victim] = _spawn(start if victim == "start" else worker)
        # The last start (restarted after a kill or never killed) must finish the run.
        procs["start"].wait(timeout=300)
    finally:
        for p in procs.values():
            if p.poll() is None:
                _kill(p)
    done = run("e3", "start", repo_dir, "dev", "-q", timeout=300)  # a no-op if the run above finished it
    v.seconds = time.monotonic() - t0
    if "failed" in done.out or f"{CHAINS * LENGTH} tasks" not in done.out:
        v.lost.append(f"final start: {done.out.strip()}")
    check(repo_dir, x, v)
    return v


_reported: set[str] = set()


def check(repo_dir: Path, x: int, v: Verdict) -> Verdict:
    from e3_testing.crash_harness import fsck_into, recorded_outcomes

    from e3.exec.plan import graph_of as graph
    from e3.repo.workspace import read_snapshot as view

    repo = open_repository(repo_dir)
    outcomes = recorded_outcomes(repo)
    snap = view(repo, "dev")
    g = graph(repo, snap.package_hash)
    for name, node in g.nodes.items():
        ins = [snap.datasets.get(p) for p in node.task.inputs]
        if None in ins:
            v.lost.append(f"{name}: input unassigned")
            continue
        tid = task_id(node.task_hash, ins)
        rec = records.latest(repo, tid)
        if rec is None or rec.kind != "success":
            v.lost.append(f"{name}: no success record")
        current = None
        path = logs.log_path(repo, tid)
        for r in logs.read_records(path) if os.path.exists(path) else []:
            if r.get("stream") == "start":
                v.interrupted += current is not None
                current = r.get("executionId")
            elif r.get("stream") == "end":
                current = None
        v.interrupted += current is not None

    # Every execution ever run here (this trial's, and those of starts killed earlier), not only the current ones.
    for eid, kinds in outcomes.items():
        if len(kinds) > 1 and eid not in _reported:
            _reported.add(eid)
            v.twice.append(f"{eid} {kinds}")
    for c in range(CHAINS):
        got = run("e3", "get", repo_dir, f"dev.tasks.c{c}-{LENGTH - 1}.output").out.strip()
        if got != str(expected(x)):
            v.lost.append(f"chain {c} ended with {got}, not {expected(x)}")
    fsck_into(repo_dir, v)
    return v
