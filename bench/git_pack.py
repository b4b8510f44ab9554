#!/usr/bin/env python3
"""A commit's new git objects: loose (libgit2, one file each) vs one pack (e3.storage.git_pack), and merging packs.

1. For N new objects (blobs of one hash each, like a workspace leaf), the time to
   store them: N loose writes through libgit2's odb (the baseline, e3's way
   before e3.storage.git_pack) vs one durable pack (tmp files, fsync, rename) vs one
   pack without fsync. The crossing point is e3.storage.git_objects.PACK_FROM.
   Ratio: loose / pack (above 1: the pack is cheaper).
2. e3.storage.git_objects.consolidate on PACKS_MAX - 1 packs of --per objects each.

Goal (the choice of PACK_FROM): from PACK_FROM new objects on, one durable pack
costs no more than the loose writes.

The disk of a shared machine varies 2x over minutes: each row interleaves the
variants, --repeat times, and prints medians.

Run alone: `python3 bench/git_pack.py [--sizes 2,4,8,16,32,64,256] [--repeat 7] [--per 500]`.
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

from e3.storage import git_objects
from e3.repo import workspace  # noqa: E402
from e3.storage.git_pack import BLOB, object_id, write_pack  # noqa: E402
from e3.storage.repository import create_repository  # noqa: E402


def store_times(root: Path, sizes: list[int], repeat: int) -> dict:
    repo = create_repository(root)
    odb = repo.git.odb
    pack_dir = str(repo.path("objects", "pack"))
    times: dict = {}
    serial = 0
    for _ in range(repeat):
        for n in sizes:
            for variant in ("loose", "pack", "pack, no fsync"):
                objs = []
                for _ in range(n):
                    serial += 1
                    data = b"%064x\n" % serial
                    objs.append((BLOB, object_id(BLOB, data), data))
                t = time.perf_counter()
                if variant == "loose":
                    for kind, _, data in objs:
                        odb.write(kind, data)
                else:
                    write_pack(pack_dir, objs, durable=variant == "pack")
                times.setdefault((n, variant), []).append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def consolidate_time(root: Path, per: int) -> tuple[float, int]:
    repo = create_repository(root)
    workspace.create(repo, "dev")
    limit, git_objects.PACKS_MAX = git_objects.PACKS_MAX, 10**9
    try:
        for b in range(limit - 1):
            changes = {("tasks", f"t{b}_{i}", "output"): "%064x" % (b * per + i) for i in range(per)}
            workspace.transact(repo, "dev", lambda v, c=changes: c, f"batch {b}")
    finally:
        git_objects.PACKS_MAX = limit
    t = time.perf_counter()
    removed = git_objects.consolidate(repo)
    return time.perf_counter() - t, len(removed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2,4,8,16,32,64,256")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--per", type=int, default=500, help="task outputs per pack for the consolidation row")
    add_check_option(ap)
    args = ap.parse_args()
    goals = Goals("the choice of PACK_FROM")
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="e3-bench-pack-") as tmp:
        t = store_times(Path(tmp) / "a", sizes, args.repeat)
        print(f"{'objects':>8} {'loose ms':>9} {'pack ms':>8} {'no fsync':>9} {'loose/pack':>11}")
        for n in sizes:
            loose, pack, nosync = t[(n, "loose")], t[(n, "pack")], t[(n, "pack, no fsync")]
            print(f"{n:>8} {loose * 1e3:>9.2f} {pack * 1e3:>8.2f} {nosync * 1e3:>9.2f} {loose / pack:>10.1f}x")
        print(f"(e3 writes a pack from {git_objects.PACK_FROM} new objects on)")
        for n in sizes:
            if n >= git_objects.PACK_FROM:
                ratio = t[(n, "loose")] / t[(n, "pack")]
                goals.check(f"{n} objects: loose / durable pack", ratio >= 1, f"{ratio:.1f}x", ">= 1x")
        seconds, removed = consolidate_time(Path(tmp) / "b", args.per)
        print(f"consolidate: {removed} packs of {args.per} task outputs merged in {seconds * 1e3:.0f} ms")
    return goals.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
