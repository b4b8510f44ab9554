#!/usr/bin/env python3
"""A warm worker's floor: bench/dag.py's tasks run one after another in this process.

Each task goes through e3.exec.invocation.execute exactly as e3.exec.pool_worker
calls it (command IR given, outputs not made durable: the coordinator syncs per
batch), without the queue, logs or records, so what is measured is the worker's
own per-task path: read inputs, evaluate, encode, hash, write the output object.

    python3 bench/exec_floor.py build DIR [--shape chain|fanout] [--tasks N] [--copies K]
        builds the pipeline (bench/dag.py's package) into DIR/p0 .. DIR/p<K-1>
    python3 bench/exec_floor.py run REPO_DIR [--join-only] [--profile FILE]
        runs every task of one built copy (each copy runs once: its outputs are then stored);
        --join-only runs the fan-out's leaves untimed, then times the join alone

Which e3 is measured is the one on PYTHONPATH (so one built copy per side of an A/B).
CPU is this process's user and system time (os.times) over the timed tasks.

A diagnostic, not one of `make bench`'s goal benchmarks: it has no goal of its own
(issue 21's are bench/dag.py's) and its baseline is the other checkout, run on
another copy alternately with this one.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(HERE))
    import dag  # noqa: E402 - the same package bench/dag.py builds

    from e3 import sdk

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=False)
    zip_path = out / "package.zip"
    pkg = f"dag-{args.shape}"
    sdk.export(dag.e3_package(args.shape, args.tasks, pkg), zip_path)
    first = out / "p0"
    e3 = shutil.which("e3") or str(HERE.parent / "bin" / "e3")
    for argv in (
        ["repo", "create", str(first)],
        ["package", "import", str(first), str(zip_path)],
        ["workspace", "create", str(first), "dev"],
        ["workspace", "deploy", str(first), "dev", f"{pkg}@1.0.0"],
    ):
        subprocess.run([e3, *argv], check=True, stdout=subprocess.DEVNULL)
    for k in range(1, args.copies):
        shutil.copytree(first, out / f"p{k}", symlinks=True)
    return 0


def run(args: argparse.Namespace) -> int:
    from e3.exec import invocation
    from e3.exec.plan import graph_of
    from e3.repo import workspace
    from e3.storage.repository import open_repository

    repo = open_repository(args.repo)
    snap = workspace.read_snapshot(repo, "dev")
    graph = graph_of(repo, snap.package_hash)
    invocation.preload(["east-py-std"])
    outputs: dict[tuple, str] = {}
    jobs = []
    for name in graph.order:
        node = graph.nodes[name]
        jobs.append((node.task_hash, node.task.command_ir, node.task.inputs, node.task.output))

    def one(job) -> None:
        task_hash, command, paths, out = job
        inputs = [outputs.get(p) or snap.datasets[p] for p in paths]
        o = invocation.execute(repo, task_hash, inputs, durable=False, command_ir=command)
        if o.status != "success":
            raise SystemExit(f"task {task_hash[:12]}: {o.status}: {o.message}")
        outputs[out] = o.output_hash

    timed = jobs
    if args.join_only:
        for job in jobs[:-1]:
            one(job)
        timed = jobs[-1:]
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    t0, w0 = os.times(), time.perf_counter()
    if profiler:
        profiler.enable()
    for job in timed:
        one(job)
    if profiler:
        profiler.disable()
    w1, t1 = time.perf_counter(), os.times()
    if profiler:
        profiler.dump_stats(args.profile)
    n = len(timed)
    user, sys_ = t1.user - t0.user, t1.system - t0.system
    print(
        f"tasks {n}  wall {w1 - w0:.3f} s  user {user:.3f} s  sys {sys_:.3f} s  "
        f"per task: wall {1e6 * (w1 - w0) / n:.0f} us  user {1e6 * user / n:.0f} us  sys {1e6 * sys_ / n:.0f} us  "
        f"load {os.getloadavg()[0]:.1f}"
    )
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("dir")
    b.add_argument("--shape", default="chain", choices=("chain", "fanout"))
    b.add_argument("--tasks", type=int, default=10_000)
    b.add_argument("--copies", type=int, default=1)
    r = sub.add_parser("run")
    r.add_argument("repo")
    r.add_argument("--join-only", action="store_true")
    r.add_argument("--profile")
    args = p.parse_args()
    return build(args) if args.cmd == "build" else run(args)


if __name__ == "__main__":
    sys.exit(main())
