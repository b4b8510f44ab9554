#!/usr/bin/env python3
"""Object store plumbing against its peers, measured in the same run.

  1. e3-hash-object -w on one big Beast2 file   vs  sha256sum on it          goal >= 0.5x throughput
  2. e3-hash-object -w --stdin-paths, N values   vs  git hash-object -w --stdin-paths   goal >= 1x
  3. e3-cat-object --batch-check over N hashes   vs  git cat-file --batch-check         goal >= 0.7x
  4. cold start of e3-cat-object -e              vs  python3 -c pass                    goal <= 2x time
  5. e3-fsck objects/s over N objects            vs  git fsck over N loose objects      goal >= 1x

Usage: python3 bench/objects.py [--size MIB] [--count N] [--repeat R] [--only NAME...] [--check]
Each figure is the best of R runs (the machine is shared; the minimum is the
least disturbed). Runs the executables of this checkout, each through this
interpreter as an installed one is (its first line names the interpreter): a
`#!/usr/bin/env python3` line may find a wrapper script first (pyenv's shims
take ~60 ms), which is no part of e3's start-up.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from goals import Goals, add_check_option, mark

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "bin"
LIB = ROOT / "lib"
ENV = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(LIB))
ENV.pop("E3_DIR", None)
# An installed e3 has compiled .pyc files; let the checkout's modules be cached the same way.
ENV.pop("PYTHONDONTWRITEBYTECODE", None)
sys.path.insert(0, str(LIB))


def command(argv) -> list[str]:
    """`argv` with an executable of this checkout's bin/ run by this interpreter, as an install runs it."""
    argv = [str(a) for a in argv]
    if os.sep not in argv[0] and (BIN / argv[0]).is_file():
        return [sys.executable, str(BIN / argv[0]), *argv[1:]]
    return argv


def sh(argv, *, stdin=None, cwd=None, check=True) -> subprocess.CompletedProcess:
    argv = command(argv)
    if isinstance(stdin, (str, Path)) and Path(stdin).is_file():
        with open(stdin, "rb") as f:
            return subprocess.run([str(a) for a in argv], stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=ENV, check=check)
    return subprocess.run([str(a) for a in argv], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=ENV, check=check)


class Time(float):
    """Best wall-clock seconds, carrying the best CPU seconds (user + sys) of the child too.

    The machine may be shared: wall time includes waiting for other people's
    work, CPU time does not (but misses time spent waiting for the disk)."""

    cpu: float


def timed(argv, *, stdin=None, cwd=None, prepare=None, repeat=3) -> Time:
    """Best wall time of `repeat` runs; `prepare()` runs untimed before each."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        if prepare:
            prepare()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        sh(argv, stdin=stdin, cwd=cwd)
        best = min(best, time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best_cpu = min(best_cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    t = Time(best)
    t.cpu = best_cpu
    return t


_ASIDE = iter(range(1 << 30))


def set_aside(path: Path) -> None:
    """Move an earlier run's repository out of the way, to be deleted with the work directory.

    Deleting thousands of files just before a timed run slows that run's file creation
    (ext4 skips recently freed inodes when it allocates new ones), for git and e3 alike.
    """
    if path.exists():
        path.rename(path.with_name(f"{path.name}.old{next(_ASIDE)}"))


def fresh_e3(path: Path) -> Path:
    set_aside(path)
    sh(["e3", "repo", "create", path])
    return path


def fresh_git(path: Path) -> Path:
    set_aside(path)
    sh(["git", "init", "-q", "--bare", path])
    return path


def make_big_value(path: Path, mib: int) -> None:
    """A canonical Beast2 Array<Blob> of `mib` 1 MiB random blobs, written streaming."""
    from east.serialization.beast2 import Beast2Writer

    from e3 import east

    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f, Beast2Writer(east.ArrayType(east.BlobType), f, codec="none") as w:
        for i in range(mib):
            w.write([chunk[:-8] + i.to_bytes(8, "little")])


def make_small_values(d: Path, n: int) -> Path:
    from e3 import east

    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = d / f"v{i:06d}.beast2"
        p.write_bytes(east.encode(f"value {i}", east.StringType))
        paths.append(str(p))
    listing = d.parent / "paths.txt"
    listing.write_text("\n".join(paths) + "\n")
    return listing


ROWS: list[tuple[str, ...]] = []
HEADER = ("benchmark", "e3", "baseline", "ratio (wall)", "ratio (cpu)", "goal", "")
GOALS = Goals("issue 3")


def row(name: str, ours: str, theirs: str, ratio: float, goal: str, cpu_ratio: float | None = None, ok: bool | None = None) -> None:
    """One figure; with `ok`, a goal (on the wall-clock ratio), marked ok or MISSED."""
    cpu = f"{cpu_ratio:.2f}x" if cpu_ratio is not None else "-"
    ROWS.append((name, ours, theirs, f"{ratio:.2f}x", cpu, goal, "" if ok is None else mark(ok)))
    print(f"  {name}: e3 {ours} | baseline {theirs} | ratio {ratio:.2f}x wall, {cpu} cpu", flush=True)
    if ok is not None:
        GOALS.check(name.strip(), ok, f"{ratio:.2f}x", goal)


def bench_big(work: Path, mib: int, repeat: int) -> None:
    value = work / "big.beast2"
    make_big_value(value, mib)
    size = value.stat().st_size
    sh(["sha256sum", value])  # warm the page cache for both
    t_sha = timed(["sha256sum", value], repeat=repeat)
    repo = work / "big-repo"
    t_e3 = timed(["e3-hash-object", "-w", "--repo", repo, value], prepare=lambda: fresh_e3(repo), repeat=repeat)
    mb = size / 1e6
    row(f"hash-object -w {size / (1 << 20):.0f} MiB", f"{mb / t_e3:.0f} MB/s", f"sha256sum {mb / t_sha:.0f} MB/s", t_sha / t_e3, ">= 0.5x", t_sha.cpu / t_e3.cpu, ok=t_sha / t_e3 >= 0.5)
    value.unlink()
    for old in [repo, *work.glob(f"{repo.name}.old*")]:
        shutil.rmtree(old)


def bench_many(work: Path, n: int, repeat: int) -> tuple[Path, Path, list[str]]:
    listing = make_small_values(work / "small", n)
    e3repo, gitrepo = work / "e3-repo", work / "git-repo"
    t_git = timed(["git", "--git-dir", gitrepo, "hash-object", "-w", "--stdin-paths"], stdin=listing, prepare=lambda: fresh_git(gitrepo), repeat=repeat)
    t_e3 = timed(["e3-hash-object", "-w", "--repo", e3repo, "--stdin-paths"], stdin=listing, prepare=lambda: fresh_e3(e3repo), repeat=repeat)
    row(f"hash-object -w --stdin-paths x{n}", f"{n / t_e3:.0f} obj/s", f"git {n / t_git:.0f} obj/s", t_git / t_e3, ">= 1x", t_git.cpu / t_e3.cpu, ok=t_git / t_e3 >= 1)
    # git does not fsync loose objects by default; e3 makes every object durable. The same promise from git:
    durable = ["git", "-c", "core.fsync=loose-object", "-c", "core.fsyncMethod=batch", "--git-dir", gitrepo, "hash-object", "-w", "--stdin-paths"]
    t_gitd = timed(durable, stdin=listing, prepare=lambda: fresh_git(gitrepo), repeat=repeat)
    row(f"  same, git with fsyncMethod=batch", f"{n / t_e3:.0f} obj/s", f"git {n / t_gitd:.0f} obj/s", t_gitd / t_e3, "(equal durability)", t_gitd.cpu / t_e3.cpu)
    hashes = sh(["e3-hash-object", "--stdin-paths"], stdin=listing).stdout.decode().split()
    return e3repo, gitrepo, hashes


def bench_batch_check(work: Path, e3repo: Path, gitrepo: Path, hashes: list[str], repeat: int) -> None:
    e3_names = work / "e3-names.txt"
    e3_names.write_text("\n".join(hashes) + "\n")
    git_names = work / "git-names.txt"
    git_names.write_text(sh(["git", "--git-dir", gitrepo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"]).stdout.decode())
    n = len(hashes)
    t_git = timed(["git", "--git-dir", gitrepo, "cat-file", "--batch-check"], stdin=git_names, repeat=repeat)
    t_e3 = timed(["e3-cat-object", "--repo", e3repo, "--batch-check"], stdin=e3_names, repeat=repeat)
    row(f"cat-object --batch-check x{n}", f"{t_e3 * 1e3:.0f} ms", f"git cat-file {t_git * 1e3:.0f} ms", t_git / t_e3, ">= 0.7x", t_git.cpu / t_e3.cpu, ok=t_git / t_e3 >= 0.7)
    t_e3s = timed(["e3-cat-object", "--repo", e3repo, "--batch-check=%(objectname) %(objectsize)"], stdin=e3_names, repeat=repeat)
    t_gits = timed(["git", "--git-dir", gitrepo, "cat-file", "--batch-check=%(objectname) %(objectsize)"], stdin=git_names, repeat=repeat)
    row(f"  same, format name+size", f"{t_e3s * 1e3:.0f} ms", f"git cat-file {t_gits * 1e3:.0f} ms", t_gits / t_e3s, "(no runtime)", t_gits.cpu / t_e3s.cpu)


def bench_cold_start(e3repo: Path, some_hash: str, runs: int) -> None:
    def median_of(argv) -> tuple[float, float]:
        walls, cpus = [], []
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(argv, env=ENV, check=False)
            walls.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        return statistics.median(walls), statistics.median(cpus)

    e3_argv = command(["e3-cat-object", "--repo", e3repo, "-e", some_hash])
    subprocess.run(e3_argv, env=ENV, check=False)  # compile the modules once, as an install does
    t_py, c_py = median_of([sys.executable, "-c", "pass"])
    t_e3, c_e3 = median_of(e3_argv)
    row("cold start cat-object -e", f"{t_e3 * 1e3:.1f} ms", f"python3 -c pass {t_py * 1e3:.1f} ms", t_e3 / t_py, "<= 2x (time)", c_e3 / c_py, ok=t_e3 / t_py <= 2)


def bench_fsck(e3repo: Path, gitrepo: Path, n: int, repeat: int) -> None:
    t_git = timed(["git", "--git-dir", gitrepo, "fsck", "--no-dangling"], repeat=repeat)
    t_e3 = timed(["e3-fsck", "--repo", e3repo], repeat=repeat)
    row(f"fsck x{n} objects", f"{n / t_e3:.0f} obj/s", f"git fsck {n / t_git:.0f} obj/s", t_git / t_e3, ">= 1x", t_git.cpu / t_e3.cpu, ok=t_git / t_e3 >= 1)
    # The same without the connectivity pass (refs, history, records; it loads pygit2): the object passes alone.
    objects_only = [
        sys.executable, "-c",
        "import sys; from e3.repo.fsck import check, check_objects, check_temp_files; from e3.storage.repository import open_repository;"
        " sys.exit(not check(open_repository(sys.argv[1]), passes=[check_objects, check_temp_files]).ok)",
        e3repo,
    ]
    t_obj = timed(objects_only, repeat=repeat)
    row("  same, object passes only", f"{n / t_obj:.0f} obj/s", f"git fsck {n / t_git:.0f} obj/s", t_git / t_obj, "(no connectivity)", t_git.cpu / t_obj.cpu)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256, metavar="MIB", help="size of the big value (default 256 MiB)")
    p.add_argument("--count", type=int, default=10_000, metavar="N", help="number of small values (default 10000)")
    p.add_argument("--repeat", type=int, default=3, metavar="R", help="runs per figure, best kept (default 3)")
    p.add_argument("--only", nargs="*", choices=("big", "many", "check", "cold", "fsck"), help="run only these")
    add_check_option(p)
    args = p.parse_args()
    only = set(args.only or ("big", "many", "check", "cold", "fsck"))
    work = Path(tempfile.mkdtemp(prefix="e3-bench-objects-", dir=os.environ.get("BENCH_DIR")))
    try:
        print(f"bench/objects.py in {work} (size {args.size} MiB, count {args.count}, best of {args.repeat})", flush=True)
        if "big" in only:
            bench_big(work, args.size, args.repeat)
        if only & {"many", "check", "cold", "fsck"}:
            e3repo, gitrepo, hashes = bench_many(work, args.count, args.repeat)
            if "check" in only:
                bench_batch_check(work, e3repo, gitrepo, hashes, args.repeat)
            if "cold" in only:
                bench_cold_start(e3repo, hashes[0], runs=21)
            if "fsck" in only:
                bench_fsck(e3repo, gitrepo, args.count, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    widths = [max(len(r[i]) for r in [HEADER, *ROWS]) for i in range(len(HEADER))]
    print()
    for r in [HEADER, *ROWS]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print("\nratio = baseline time / e3 time: above 1 e3 is faster; for cold start it is e3 / python (lower is better)")
    return GOALS.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
