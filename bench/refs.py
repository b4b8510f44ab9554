#!/usr/bin/env python3
"""Refs and upkeep benchmarks, each against git measured in the same run.

1. Ref updates with compare-and-swap, a loop of --count (default 1,000):
   - batched: one `e3-update-ref --stdin` transaction of N `update REF NEW OLD`
     lines vs one `git update-ref --stdin` of the same lines;
   - library: N `e3.storage.refs.update(..., old=...)` calls on one ref in one process
     (what later layers call) vs N `Reference.set_target` calls through libgit2;
   - one process per update: N `e3-update-ref REF NEW OLD` vs N `git update-ref
     REF NEW OLD` (process start-up dominates both).
2. Upkeep on --size objects (default 100,000): an e3 repository with half its
   objects reachable (workspace states of 1,000 datasets each) and half
   unreachable garbage a month old, vs a git repository with the same number of
   loose blobs, half reachable from trees and commits the same way:
   - `e3-fsck` (re-hash every object + connectivity) vs `git fsck`;
   - `e3 repo gc --prune=now` (removes the garbage, packs git's objects) vs
     `git gc --prune=now`; then both again with nothing to remove.

Run alone: `python3 bench/refs.py [--count N] [--size N] [--skip-processes]`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from goals import Goals, add_check_option

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from e3.storage import refs  # noqa: E402
from e3.storage.repository import create_repository, open_repository  # noqa: E402

ENV = dict(
    os.environ,
    PATH=f"{ROOT / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    PYTHONPATH=str(ROOT / "lib"),
    E3_AUTHOR_NAME="bench",
    GIT_AUTHOR_NAME="bench",
    GIT_AUTHOR_EMAIL="bench@localhost",
    GIT_COMMITTER_NAME="bench",
    GIT_COMMITTER_EMAIL="bench@localhost",
)
ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed e3 has its modules compiled
MONTH = 30 * 86400
LEAVES_PER_COMMIT = 1000


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sh(*argv, input: bytes | None = None, cwd=None) -> None:
    subprocess.run([str(a) for a in argv], input=input, check=True, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def row(what: str, e3_s: float, git_s: float, n: int) -> None:
    print(f"  {what:<34} {e3_s:>9.3f}s {git_s:>9.3f}s {e3_s / n * 1e6:>9.0f}us {git_s / n * 1e6:>9.0f}us {e3_s / git_s:>7.2f}x")


def header(title: str, unit: str) -> None:
    print(f"\n{title}")
    print(f"  {'':<34} {'e3':>10} {'git':>10} {'e3/' + unit:>11} {'git/' + unit:>11} {'e3/git':>8}")


# ---------------------------------------------------------------- 1. ref updates


def bench_updates(work: Path, n: int, processes: bool) -> None:
    repo = create_repository(work / "refs")
    git_dir = work / "git-refs.git"
    sh("git", "init", "-q", "--bare", git_dir)
    sh("git", f"--git-dir={git_dir}", "config", "core.logAllRefUpdates", "always")
    r = open_repository(work / "refs")
    commits = [refs.write_state(r, {}, None, f"c{i}") for i in range(2)]
    # The same commits in the git baseline repository, so both sides move refs between the same ids.
    for c in commits:
        obj = r.git[c]
        for oid in (obj.tree_id, obj.id):
            raw = r.git.odb.read(oid)
            sh("git", f"--git-dir={git_dir}", "hash-object", "-w", "-t", {1: "commit", 2: "tree"}[raw[0]], "--stdin",
               input=raw[1])
    a, b = commits
    header(f"ref updates with compare-and-swap, {n} in a loop", "update")

    create = "".join(f"create refs/workspaces/w{i} {a}\n" for i in range(n)).encode()
    move = "".join(f"update refs/workspaces/w{i} {b} {a}\n" for i in range(n)).encode()
    sh("e3-update-ref", "--repo", work / "refs", "--stdin", input=create)
    sh("git", f"--git-dir={git_dir}", "update-ref", "--stdin", input=create)
    e3_t = timed(lambda: sh("e3-update-ref", "--repo", work / "refs", "--stdin", input=move))
    git_t = timed(lambda: sh("git", f"--git-dir={git_dir}", "update-ref", "--stdin", input=move))
    row("batched --stdin (one transaction)", e3_t, git_t, n)

    import pygit2

    refs.update(r, "refs/workspaces/one", a)
    g = pygit2.Repository(str(git_dir))
    g.create_reference_direct("refs/heads/one", pygit2.Oid(hex=a), True)

    def e3_loop() -> None:
        cur, nxt = a, b
        for _ in range(n):
            refs.update(r, "refs/workspaces/one", nxt, cur, "bench")
            cur, nxt = nxt, cur

    def libgit2_loop() -> None:
        ref = g.references["refs/heads/one"]
        ids = [pygit2.Oid(hex=a), pygit2.Oid(hex=b)]
        for i in range(n):
            ref.set_target(ids[(i + 1) % 2], "bench")

    row("library, one process (vs libgit2)", timed(e3_loop), timed(libgit2_loop), n)

    def e3_loop_not_durable() -> None:
        cur, nxt = a, b
        for _ in range(n):
            refs.update(r, "refs/workspaces/one", nxt, cur, "bench", durable=False)
            cur, nxt = nxt, cur

    row("library, durable=False (no fsync)", timed(e3_loop_not_durable), timed(libgit2_loop), n)

    if processes:
        sh("e3-update-ref", "--repo", work / "refs", "refs/workspaces/p", a)
        sh("git", f"--git-dir={git_dir}", "update-ref", "refs/heads/p", a)

        def e3_procs() -> None:
            cur, nxt = a, b
            for _ in range(n):
                sh("e3-update-ref", "--repo", work / "refs", "refs/workspaces/p", nxt, cur)
                cur, nxt = nxt, cur

        def git_procs() -> None:
            cur, nxt = a, b
            for _ in range(n):
                sh("git", f"--git-dir={git_dir}", "update-ref", "refs/heads/p", nxt, cur)
                cur, nxt = nxt, cur

        row("one process per update", timed(e3_procs), timed(git_procs), n)
    print("  (e3 fsyncs each ref file before renaming it unless durable=False; git and libgit2, by default, do not)")


# ---------------------------------------------------------------- 2. gc and fsck


def build_e3(path: Path, size: int) -> None:
    from e3.east import StringType, encoder_for

    encode = encoder_for(StringType)
    repo = create_repository(path)
    store = repo.objects
    reachable = size // 2
    parent = None
    old = time.time() - MONTH
    for start in range(0, reachable, LEAVES_PER_COMMIT):
        entries = {}
        for i in range(start, min(start + LEAVES_PER_COMMIT, reachable)):
            entries[("inputs", f"d{i % LEAVES_PER_COMMIT}")] = store.write(encode(f"value {i}"), durable=False)
        parent = refs.write_state(repo, entries, parent, f"state {start}")
    refs.update(repo, "refs/workspaces/dev", parent)
    for i in range(size - reachable):
        h = store.write(encode(f"garbage {i}"), durable=False)
        os.utime(store.path(h), (old, old))
    store.sync()


def build_git(path: Path, size: int) -> None:
    import pygit2

    g = pygit2.init_repository(str(path), bare=True)
    g.config["gc.auto"] = 0
    reachable = size // 2
    parent: list = []
    sig = pygit2.Signature("bench", "bench@localhost", int(time.time()), 0)
    for start in range(0, reachable, LEAVES_PER_COMMIT):
        tb = g.TreeBuilder()
        for i in range(start, min(start + LEAVES_PER_COMMIT, reachable)):
            tb.insert(f"d{i % LEAVES_PER_COMMIT}", g.create_blob(f"value {i}".encode()), pygit2.GIT_FILEMODE_BLOB)
        c = g.create_commit(None, sig, sig, f"state {start}", tb.write(), parent)
        parent = [c]
    g.references.create("refs/heads/main", parent[0])
    old = time.time() - MONTH
    for i in range(size - reachable):
        oid = str(g.create_blob(f"garbage {i}".encode()))
        p = path / "objects" / oid[:2] / oid[2:]
        os.utime(p, (old, old))


def bench_upkeep(work: Path, size: int) -> None:
    e3_repo, git_repo = work / "e3", work / "git.git"
    t = time.perf_counter()
    build_e3(e3_repo, size)
    build_git(git_repo, size)
    print(f"\nupkeep on {size} objects (half reachable, half month-old garbage); built in {time.perf_counter() - t:.0f}s")
    print(f"  {'':<34} {'e3':>10} {'git':>10} {'e3/git':>8}")
    git = ["git", f"--git-dir={git_repo}"]

    def line(what: str, e3_s: float, git_s: float) -> None:
        print(f"  {what:<34} {e3_s:>9.2f}s {git_s:>9.2f}s {e3_s / git_s:>7.2f}x")

    line("fsck (all loose)", timed(lambda: sh("e3-fsck", "--repo", e3_repo)),
         timed(lambda: sh(*git, "fsck", "--no-dangling")))
    line("gc --prune=now (remove garbage)", timed(lambda: sh("e3", "repo", "gc", e3_repo, "--prune=now")),
         timed(lambda: sh(*git, "gc", "--prune=now", "--quiet")))
    left = sum(1 for _ in open_repository(e3_repo).objects)
    line("gc again (nothing to remove)", timed(lambda: sh("e3", "repo", "gc", e3_repo, "--prune=now")),
         timed(lambda: sh(*git, "gc", "--prune=now", "--quiet")))
    line("fsck after gc (packed)", timed(lambda: sh("e3-fsck", "--repo", e3_repo)),
         timed(lambda: sh(*git, "fsck", "--no-dangling")))
    print(f"  ({left} e3 objects left after gc; e3's side also packs {size // 2} git blobs naming them, plus trees and commits)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1000, help="ref updates per loop (default 1000)")
    p.add_argument("--size", type=int, default=100_000, help="objects for the gc/fsck comparison (default 100000)")
    p.add_argument("--skip-processes", action="store_true", help="skip the one-process-per-update loops")
    p.add_argument("--skip-upkeep", action="store_true", help="skip the gc/fsck comparison")
    add_check_option(p)
    args = p.parse_args()
    if not shutil.which("git"):
        print("git is not installed: nothing to compare against", file=sys.stderr)
        return 1
    print(f"bench/refs.py: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="e3-bench-refs-") as d:
        work = Path(d)
        bench_updates(work, args.count, not args.skip_processes)
        if not args.skip_upkeep:
            bench_upkeep(work, args.size)
    return Goals("issue 4 asks for the figures against git only", none_set=True).finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
