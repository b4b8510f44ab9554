#!/usr/bin/env python3
"""Workspace benchmark: read() and transact() against the naive full-tree commit.

For a deployed workspace of N input datasets (N = 100, 1,000, 10,000) it times:
  read (cached)     e3.repo.workspace.read when the ref has not moved (one ref read)
  read (cold)       the first read in a fresh process: ref read + one tree walk
                    + decoding the package object
  re-read           a read after another writer moved the ref: a tree walk that
                    reads only blobs not seen before
  transact 1        one dataset changed, as one commit (incremental tree build:
                    only the subtrees on the changed path are rebuilt)
  transact 100      100 datasets changed in one commit
  baseline          the naive way: e3.storage.refs.write_state of the whole tree + ref
                    update (what a commit costs if every commit rebuilds the tree)
Ratios are baseline / transact 1 (higher is better).

Usage: python3 bench/workspace.py [--sizes 100,1000,10000] [--repeat 20]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from goals import Goals, add_check_option

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from e3 import east
from e3.storage import refs
from e3.repo import workspace  # noqa: E402
from e3.model.package import DatasetRef, DatasetSpec, Package, store_package  # noqa: E402
from e3.storage.repository import create_repository, open_repository  # noqa: E402

COLD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from e3.repo import workspace
from e3.storage.repository import open_repository
r = open_repository(sys.argv[2])
t = time.perf_counter(); workspace.read(r, "dev"); print(time.perf_counter() - t)
"""


def setup(n: int, where: Path):
    repo = create_repository(where)
    enc = east.encoder_for(east.IntegerType)
    values = [repo.objects.write(enc(i), durable=False) if _has_durable(repo) else repo.objects.write(enc(i)) for i in range(n)]
    structure = {"inputs": {f"x{i}": DatasetSpec(east.IntegerType, True) for i in range(n)}}
    initial = {("inputs", f"x{i}"): DatasetRef("value", values[i]) for i in range(n)}
    h = store_package(repo.objects, Package({}, structure, initial))
    commit = refs.write_state(repo, {("package",): h}, None, "import")
    refs.update(repo, "refs/packages/big/1.0.0", commit)
    workspace.deploy(repo, "dev", "big", "1.0.0")
    return repo, values


def _has_durable(repo) -> bool:
    import inspect

    return "durable" in inspect.signature(repo.objects.write).parameters


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--repeat", type=int, default=20)
    add_check_option(ap)
    args = ap.parse_args()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="e3-bench-ws-") as tmp:
            repo, values = setup(n, Path(tmp) / "r")
            workspace.read(repo, "dev")
            cached = timed(lambda: workspace.read(repo, "dev"), args.repeat)
            cold = statistics.median(
                float(subprocess.run([sys.executable, "-c", COLD, str(ROOT / "lib"), tmp + "/r"], capture_output=True, text=True, check=True).stdout)
                for _ in range(min(args.repeat, 5))
            )
            counter = iter(range(10**9))

            def one():
                i = next(counter)
                workspace.transact(repo, "dev", lambda v: {("inputs", "x0"): values[(i + 1) % n]}, "bench")

            def hundred():
                i = next(counter)
                workspace.transact(repo, "dev", lambda v: {("inputs", f"x{j}"): values[(i + j + 1) % n] for j in range(min(100, n))}, "bench")

            t1 = timed(one, args.repeat)
            t100 = timed(hundred, max(3, args.repeat // 4))
            r2 = open_repository(repo.root)

            def baseline():
                head = refs.read(r2, "refs/workspaces/dev")
                entries = refs.read_state(r2, head)
                entries[("inputs", "x0")] = values[next(counter) % n]
                new = refs.write_state(r2, entries, head, "bench baseline")
                refs.update(r2, "refs/workspaces/dev", new, old=head)

            base = timed(baseline, max(3, args.repeat // 4))
            rewalk = []
            for _ in range(max(3, args.repeat // 4)):
                baseline()  # another writer moved the ref: the next read walks the new tree
                t = time.perf_counter()
                workspace.read(repo, "dev")
                rewalk.append(time.perf_counter() - t)
            rows.append((n, cached, cold, statistics.median(rewalk), t1, t100, base))
    print(f"{'datasets':>9} {'read cached':>12} {'read cold':>10} {'re-read':>9} {'transact 1':>11} {'transact 100':>13} {'baseline':>10} {'ratio':>7}")
    for n, cached, cold, rewalk, t1, t100, base in rows:
        print(
            f"{n:>9} {cached * 1e6:>10.0f}us {cold * 1e3:>8.1f}ms {rewalk * 1e3:>7.1f}ms {t1 * 1e3:>9.2f}ms {t100 * 1e3:>11.2f}ms"
            f" {base * 1e3:>8.1f}ms {base / t1:>6.1f}x"
        )
    return Goals("figures against a full-tree commit only", none_set=True).finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
