"""kill -9 of `e3 start` (and its warm workers) at random moments: nothing lost, nothing done twice."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import LIB, command_env, run

sys.path.insert(0, str(LIB))

from e3 import sdk  # noqa: E402
from e3.east import East, IntegerType  # noqa: E402
from e3.exec import logs, records  # noqa: E402
from e3.exec.identity import task_id  # noqa: E402
from e3.exec.snapshot import graph, view  # noqa: E402
from e3.repository import open_repository  # noqa: E402

CHAINS, LENGTH = 5, 10  # 50 tasks


def _package():
    x = sdk.input("x", IntegerType, 0)
    items = []
    for c in range(CHAINS):
        prev = x
        for i in range(LENGTH):
            name = f"c{c}-{i}"
            if i % 5 == 4:  # a spawned shell task now and then: kills land in the middle of those too
                t = sdk.custom_task(name, [prev if i == 0 else prev.output], IntegerType,
                                    lambda b, ins, out: East.str("sleep 0.05; cp ", sdk.quote(ins.get(0)), " ", sdk.quote(out)))
            else:
                t = sdk.task(name, [prev if i == 0 else prev.output],
                             East.function([IntegerType], IntegerType, lambda b, v: v + 1))
            prev = t
        items.append(prev)
    return sdk.package("crashy", "1.0.0", *items)


def _expected(x: int) -> int:
    return x + sum(1 for i in range(LENGTH) if i % 5 != 4)


def _check_exactly_once(repo_dir: Path) -> None:
    """Every task's current execution succeeded, and no execution finished twice."""
    repo = open_repository(repo_dir)
    snap = view(repo, "dev")
    g = graph(repo, snap.package_hash)
    for name, node in g.nodes.items():
        tid = task_id(node.task_hash, [snap.datasets[p] for p in node.task.inputs])
        rec = records.latest(repo, tid)
        assert rec is not None and rec.kind == "success", f"{name}: lost"
        finished: dict[str, int] = {}
        current = None
        for r in logs.read_records(logs.log_path(repo, tid)):
            if r.get("stream") == "start":
                current = r.get("executionId")
            elif r.get("stream") == "end" and current is not None:
                finished[current] = finished.get(current, 0) + 1
                current = None
        assert all(n == 1 for n in finished.values()), f"{name}: an execution finished twice {finished}"


def test_kill_9_of_start_at_random_moments_loses_nothing_and_repeats_nothing(tmp_path):
    zip_path = tmp_path / "crashy.zip"
    sdk.export(_package(), zip_path)
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    run("e3", "package", "import", repo, zip_path)
    run("e3", "workspace", "create", repo, "dev")
    run("e3", "workspace", "deploy", repo, "dev", "crashy@1.0.0")
    rng = random.Random(int(os.environ.get("E3_CRASH_SEED", "7")))
    for trial in range(1, 4):
        (tmp_path / "x.east").write_text(str(trial))
        run("e3", "set", repo, "dev.inputs.x", tmp_path / "x.east")
        proc = subprocess.Popen(
            ["e3", "start", str(repo), "dev", "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=command_env(),
            start_new_session=True,  # its own process group: the kill takes its workers too
        )
        time.sleep(rng.uniform(0.3, 2.5))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(2.1)  # partial objects of the killed writers become sweepable (see ObjectStore.sweep_temporaries)
        done = run("e3", "start", repo, "dev", "-q", timeout=300)
        assert "50 tasks:" in done.out and "failed" not in done.out
        run("e3-fsck", "--repo", repo)
        for c in range(CHAINS):
            got = run("e3", "get", repo, f"dev.tasks.c{c}-{LENGTH - 1}.output").out.strip()
            assert got == str(_expected(trial)), f"trial {trial}: chain {c} ended with {got}"
        _check_exactly_once(repo)
