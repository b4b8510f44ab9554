"""Per-task cost of running East tasks: warm in-process paths vs spawning `east-py run` per task.

Runnable alone: `python3 bench/runners.py [--tasks N] [--spawned M]`. Every task
is `x + 1` on its own input value (so nothing is cached anywhere), run through
e3.exec.invocation.execute. Rows:

- spawn: the original engine's way, `east-py run -p east-py-std ...` per task (baseline)
- in-process: invocation.execute in this process (command IR evaluated, function cached, output stored)
- pool round trip: one task at a time through WorkerPool (request frame, worker runs it, log written, answer)
- pool throughput: all tasks submitted at once to a pool of 2 workers

Goal (issue 6): the warm paths' per-task cost >= 100x cheaper than spawning.

Outputs are stored with durable=False (the dataflow syncs once per batch); the
"durable" row shows the fsync-per-object cost for comparison.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from goals import Goals, add_check_option

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))  # e3_testing: the helpers the tests use too

from e3_testing.runner_tasks import Integer, east_command, east_task, function, value  # noqa: E402

from e3.exec import invocation  # noqa: E402
from e3.exec.pool import TaskRequest, WorkerPool  # noqa: E402
from e3.storage.repository import create_repository  # noqa: E402


def setup(repo, n: int, offset: int):
    """n executions of one East task (x + 1, run by `east-py run`'s argv) on the values offset..offset+n-1."""
    command, fn = east_command(), function([Integer], Integer, lambda b, x: x + 1)
    jobs = [east_task(repo.objects, fn, [value(offset + i, Integer)], command) for i in range(n)]
    return jobs[0][0], [inputs for _, inputs in jobs]


def per_task(fn, jobs) -> float:
    start = time.perf_counter()
    fn(jobs)
    return (time.perf_counter() - start) / len(jobs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--spawned", type=int, default=8)
    add_check_option(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="e3-bench-runners-") as tmp:
        repo = create_repository(tmp)
        root = str(repo.root)
        rows = []

        def spawned(jobs):
            for inputs in jobs:
                assert invocation.execute(repo, th, inputs, force_spawn=True, durable=False).status == "success"

        th, jobs = setup(repo, args.spawned, 0)
        rows.append(("spawn east-py run per task (baseline)", per_task(spawned, jobs), len(jobs)))

        def direct(durable):
            def go(jobs):
                for inputs in jobs:
                    assert invocation.execute(repo, th, inputs, durable=durable).status == "success"

            return go

        th, jobs = setup(repo, 1, 10**6)
        direct(False)(jobs)  # compile once, as a warm worker has
        th, jobs = setup(repo, args.tasks, 2 * 10**6)
        rows.append(("in-process invocation.execute", per_task(direct(False), jobs), len(jobs)))
        th, jobs = setup(repo, min(args.tasks, 200), 3 * 10**6)
        rows.append(("in-process, fsync per output (durable)", per_task(direct(True), jobs), len(jobs)))

        with WorkerPool(2) as pool:
            th, jobs = setup(repo, 4, 4 * 10**6)
            for inputs in jobs:  # warm both workers' caches
                pool.run(TaskRequest(root, th, inputs, durable=False))

            def round_trip(jobs):
                for inputs in jobs:
                    assert pool.run(TaskRequest(root, th, inputs, durable=False)).status == "success"

            def round_trip_nolog(jobs):
                for inputs in jobs:
                    assert pool.run(TaskRequest(root, th, inputs, durable=False, log=False)).status == "success"

            def throughput(jobs):
                futures = [pool.submit(TaskRequest(root, th, inputs, durable=False)) for inputs in jobs]
                assert all(f.result().status == "success" for f in futures)

            th, jobs = setup(repo, args.tasks, 5 * 10**6)
            rows.append(("pool round trip, one at a time (with log)", per_task(round_trip, jobs), len(jobs)))
            th, jobs = setup(repo, args.tasks, 6 * 10**6)
            rows.append(("pool round trip, one at a time (no log)", per_task(round_trip_nolog, jobs), len(jobs)))
            th, jobs = setup(repo, args.tasks, 7 * 10**6)
            rows.append(("pool throughput, 2 workers", per_task(throughput, jobs), len(jobs)))

            # Pure round trip: the same request latency samples, for the median.
            th, jobs = setup(repo, 500, 8 * 10**6)
            samples = []
            for inputs in jobs:
                t = time.perf_counter()
                pool.run(TaskRequest(root, th, inputs, durable=False))
                samples.append(time.perf_counter() - t)

    base = rows[0][1]
    print(f"{'path':<44} {'tasks':>6} {'ms/task':>9} {'speed-up':>9}")
    for name, t, n in rows:
        print(f"{name:<44} {n:>6} {t * 1e3:>9.3f} {base / t:>8.0f}x")
    print(f"pool round trip median {statistics.median(samples) * 1e3:.3f} ms, p90 "
          f"{sorted(samples)[int(len(samples) * 0.9)] * 1e3:.3f} ms ({len(samples)} tasks)")
    print(f"(cpus: {os.cpu_count()})")
    goals = Goals("issue 6")
    for name, t, n in rows[1:]:
        if name.startswith("pool"):
            goals.check(f"{name}: per-task cost against spawning", base / t >= 100, f"{base / t:.0f}x", ">= 100x")
    return goals.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
