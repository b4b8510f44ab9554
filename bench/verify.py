#!/usr/bin/env python3
"""What verified reads cost: every object read is hashed against its name (e3.storage.objects).

Baseline, in the same run: the same e3 with the store's reads put back as they
were before they verified (plain reads, `shutil.copyfile` to stage a spawned
task's inputs), patched in by a `sitecustomize` module on PYTHONPATH, so it
reaches every process (`e3 start`, its warm workers, plumbing). Both arms load
the same `sitecustomize`; only the baseline's replaces the methods. The run
first proves the two arms differ: a damaged object is refused by one and read
by the other.

  1. e3 start, first run of the 1,000- and 10,000-task DAGs of bench/dag.py
     (chain and fan-out)                          goal: CPU time <= 1.05x baseline
  2. a 1 GB value (a Blob of 10^9 bytes: Beast2 v5 frames stop at 1 GiB):
     e3-cat-object -f beast2 (streamed) and e3 get -f beast2 (read whole),
     e3 start --force of an East task over it (read in a warm worker) and of a
     shell task over it (staged into its scratch directory)
                                                  goal: extra CPU time <= 1.15x hashing the file once
     (the irreducible cost of checking is hashing the bytes once, with the
     SHA-256 e3 uses: Python's hashlib, OpenSSL's, timed here over the same file
     read in 1 MiB chunks; coreutils' sha256sum, printed for reference, is
     several times slower on this machine)

Each figure is the best of --repeat runs, the two arms taking turns.
Usage: python3 bench/verify.py [--sizes 1000,10000] [--gb 1] [--repeat 3] [--only dag|big] [--check]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

import dag  # noqa: E402  (the DAG pipelines, built and checked as bench/dag.py does)

SITECUSTOMIZE = '''
"""Loaded by every Python process of a bench/verify.py run; E3_BENCH_UNVERIFIED=1: reads as before verification."""
import os

import e3.storage.objects as _store

if os.environ.get("E3_BENCH_UNVERIFIED") == "1":
    import shutil

    from e3.errors import ObjectNotFound

    def _open_fd(self, obj):
        try:
            return os.open(self.fspath(obj), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ObjectNotFound(f"object {obj} not found") from None

    def read(self, obj):
        fd = _open_fd(self, obj)
        try:
            size = os.fstat(fd).st_size
            data = os.read(fd, size)
            while len(data) < size:
                more = os.read(fd, size - len(data))
                if not more:
                    break
                data += more
            return data
        finally:
            os.close(fd)

    def peek(self, obj, n):
        fd = _open_fd(self, obj)
        try:
            return os.fstat(fd).st_size, os.read(fd, n)
        finally:
            os.close(fd)

    def open_(self, obj):
        return os.fdopen(_open_fd(self, obj), "rb")

    def copy(self, obj, path):
        _open_fd(self, obj)
        shutil.copyfile(self.fspath(obj), path)

    _store.ObjectStore.read = read
    _store.ObjectStore.peek = peek
    _store.ObjectStore.open = open_
    _store.ObjectStore.copy = copy
'''

ARMS = ("verified", "baseline")


class Arms:
    """Environments for the two arms of the comparison."""

    def __init__(self, work: Path):
        site = work / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        base = dict(os.environ)
        base["PATH"] = f"{ROOT / 'bin'}{os.pathsep}{base.get('PATH', '')}"
        base["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT / "lib")] + ([base["PYTHONPATH"]] if base.get("PYTHONPATH") else []))
        base.pop("E3_DIR", None)
        base.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed e3 has its modules compiled
        base.pop("E3_SPAWN_ALL", None)
        base.pop("E3_BENCH_UNVERIFIED", None)
        self.env = {"verified": base, "baseline": dict(base, E3_BENCH_UNVERIFIED="1")}


class Best:
    """Best wall and CPU seconds over repeated runs."""

    def __init__(self) -> None:
        self.wall = float("inf")
        self.cpu = float("inf")

    def add(self, wall: float, cpu: float) -> None:
        self.wall = min(self.wall, wall)
        self.cpu = min(self.cpu, cpu)


def timed(argv: list[str], env: dict[str, str], stdout=subprocess.DEVNULL) -> tuple[float, float]:  # noqa: ANN001
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


# ---------------------------------------------------------------- proof that the arms differ


def prove_arms(arms: Arms, work: Path) -> None:
    from e3 import east
    from e3.storage.repository import create_repository

    repo = create_repository(work / "proof")
    h = repo.objects.write(east.encode(15, east.IntegerType))
    path = Path(repo.objects.fspath(h))
    path.chmod(0o644)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    argv = [str(ROOT / "bin" / "e3-cat-object"), "--repo", str(work / "proof"), "-p", h]
    verified = subprocess.run(argv, env=arms.env["verified"], capture_output=True)
    baseline = subprocess.run(argv, env=arms.env["baseline"], capture_output=True)
    if verified.returncode != 128 or b"is corrupt" not in verified.stderr or baseline.returncode != 0:
        raise SystemExit(f"the arms do not differ as they should: verified {verified}, baseline {baseline}")


# ---------------------------------------------------------------- DAGs


def bench_dags(arms: Arms, work: Path, sizes: list[int], repeat: int, cores: int) -> bool:
    dag.RUN_DIR = work
    print("1. e3 start, first run (every task runs); best of", repeat, "per arm")
    print(f"   {'shape':<8}{'N':>7}  {'verified':>10}  {'baseline':>10}  {'wall':>6}  {'cpu':>6}  goal (cpu <= 1.05x)")
    ok = True
    for n in sizes:
        for shape in dag.SHAPES:
            tool = dag.E3(shape, n, work / f"{shape}-{n}" / "p", cores)
            tool.log = work / f"{shape}-{n}.log"
            tool.prepare()
            copies = {arm: [tool.dir.with_name(f"{arm}-{k}") for k in range(repeat)] for arm in ARMS}
            for d in copies["verified"] + copies["baseline"]:
                shutil.copytree(tool.dir, d, symlinks=True)
            best = {arm: Best() for arm in ARMS}
            for k in range(repeat):
                for arm in ARMS if k % 2 == 0 else reversed(ARMS):
                    tool.dir = copies[arm][k]
                    wall, cpu = timed(tool.argv(), arms.env[arm])
                    best[arm].add(wall, cpu)
                    dag.check_result(f"e3 ({arm})", tool.result(), shape, n)
            v, b = best["verified"], best["baseline"]
            good = v.cpu <= 1.05 * b.cpu
            ok &= good
            print(f"   {shape:<8}{n:>7}  {v.wall:>9.2f}s  {b.wall:>9.2f}s  {v.wall / b.wall:>5.3f}x  {v.cpu / b.cpu:>5.3f}x  {mark(good)}"
                  f"  (cpu {v.cpu:.2f}s / {b.cpu:.2f}s)", flush=True)
            # Removed now, not at the end: the arms take turns, so what a deletion costs the
            # next measurements (see dag.file_creation_us) falls on both alike.
            shutil.rmtree(work / f"{shape}-{n}", ignore_errors=True)
    return ok


# ---------------------------------------------------------------- one large value


def hash_file(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds to read `path` in 1 MiB chunks through hashlib's SHA-256 (what e3.storage.objects uses)."""
    import hashlib

    buf = bytearray(1 << 20)
    view = memoryview(buf)
    t0, c0 = time.perf_counter(), time.process_time()
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return time.perf_counter() - t0, time.process_time() - c0


def big_package(zero: Path):
    from e3 import sdk
    from e3.east import BlobType, East, IntegerType

    big = sdk.input("big", BlobType)
    size = sdk.task("size", [big], East.function([BlobType], IntegerType, lambda b, x: x.size()))
    staged = sdk.custom_task(
        "staged", [big], IntegerType, lambda b, inputs, output: East.str("test -s ", sdk.quote(inputs.get(0)), " && cp ", str(zero), " ", sdk.quote(output))
    )
    return sdk.package("big", "1.0.0", size, staged)


def bench_big(arms: Arms, work: Path, gb: float, repeat: int) -> bool:
    from e3 import east, sdk
    from e3.repo import workspace
    from e3.east import BlobType, IntegerType
    from e3.storage.repository import create_repository

    size = int(gb * 1e9)
    repo_dir = work / "big"
    repo = create_repository(repo_dir)
    zero = work / "zero.beast2"
    zero.write_bytes(east.encode(0, IntegerType))
    zip_path = work / "big.zip"
    sdk.export(big_package(zero), zip_path)
    from e3.repo import package

    package.import_zip(repo, zip_path)
    workspace.create(repo, "dev")
    workspace.deploy(repo, "dev", "big", "1.0.0")
    value = work / "big.beast2"
    chunk = bytes(range(256)) * 4096
    data = east.encode(chunk * (size // len(chunk)), BlobType)
    value.write_bytes(data)
    del data
    with open(value, "rb") as f:
        h = repo.objects.write_stream(f)
    workspace.set_dataset(repo, "dev", ("inputs", "big"), h, value_type=BlobType)
    mib = value.stat().st_size / (1 << 20)
    e3 = str(ROOT / "bin" / "e3")
    cases = [
        ("e3-cat-object -f beast2", [str(ROOT / "bin" / "e3-cat-object"), "--repo", str(repo_dir), "-f", "beast2", h]),
        ("e3 get -f beast2", [e3, "get", str(repo_dir), "dev.inputs.big", "-f", "beast2"]),
        ("e3 start: East task (worker)", [e3, "start", str(repo_dir), "dev", "--filter", "size", "--force", "-q"]),
        ("e3 start: shell task (staged)", [e3, "start", str(repo_dir), "dev", "--filter", "staged", "--force", "-q"]),
    ]
    sha = Best()
    cat = Best()
    hashing = Best()
    for _ in range(repeat):
        sha.add(*timed(["sha256sum", str(value)], arms.env["verified"]))
        cat.add(*timed(["cat", str(value)], arms.env["verified"]))
        hashing.add(*hash_file(value))
    print(f"\n2. a {mib:,.0f} MiB value ({size / 1e9:g} GB); best of {repeat} per arm; hashing it once (hashlib)"
          f" {hashing.wall:.2f}s, cpu {hashing.cpu:.2f}s; for reference sha256sum {sha.wall:.2f}s, cat {cat.wall:.2f}s")
    print(f"   {'read':<31}{'verified':>10}  {'baseline':>10}  {'ratio':>6}  {'extra':>7}  {'cpu':>7}  goal (extra cpu <= 1.15x hashing once)")
    ok = True
    for name, argv in cases:
        best = {arm: Best() for arm in ARMS}
        for k in range(repeat):
            for arm in ARMS if k % 2 == 0 else reversed(ARMS):
                best[arm].add(*timed(argv, arms.env[arm]))
        v, b = best["verified"], best["baseline"]
        # CPU time: on a shared machine wall time also counts waiting for a core.
        extra, extra_cpu = v.wall - b.wall, v.cpu - b.cpu
        good = extra_cpu <= 1.15 * hashing.cpu
        ok &= good
        print(f"   {name:<31}{v.wall:>9.2f}s  {b.wall:>9.2f}s  {v.wall / b.wall:>5.2f}x  {extra:>6.2f}s  {extra_cpu:>6.2f}s  {mark(good)}", flush=True)
    got = subprocess.run([e3, "get", str(repo_dir), "dev.tasks.size.output"], env=arms.env["verified"], capture_output=True, text=True).stdout.strip()
    want = len(chunk) * (size // len(chunk))
    if got != str(want):
        raise SystemExit(f"the East task computed {got!r}, expected {want}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000", help="DAG sizes (default 1000,10000)")
    ap.add_argument("--gb", type=float, default=1.0, help="size of the large value in GB, 10^9 bytes (default 1; at most 1.07)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--only", choices=("dag", "big"))
    ap.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    args = ap.parse_args()
    work_root = ROOT / "build" / "bench-verify"
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=work_root))
    try:
        arms = Arms(work)
        prove_arms(arms, work)
        print(f"verified reads against the same e3 reading unverified (file creation {dag.file_creation_us(work):.0f} us)")
        ok = True
        if args.only in (None, "dag"):
            ok &= bench_dags(arms, work, [int(s) for s in args.sizes.split(",")], args.repeat, args.cores)
        if args.only in (None, "big"):
            ok &= bench_big(arms, work, args.gb, args.repeat)
        print(f"\ngoals: {'all ok' if ok else 'MISSED'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
