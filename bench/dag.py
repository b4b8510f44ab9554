#!/usr/bin/env python3
"""DAG benchmark: e3 against Snakemake and DVC on the same trivial pipelines.

Two shapes of N tasks, each task doing trivial work on one integer:
  chain   task 0 reads the input x and writes x+1; task i reads task i-1's
          output and writes it plus one. The last output is x+N.
  fanout  tasks 1..N-1 each read the input x and write x+i; one join task
          reads all of them and writes their sum (N tasks in all).

For every tool the same pipeline is built in a fresh directory (not timed),
then two things are timed as wall clock of the tool's command, start-up
included: the first run (every task executes) and a no-op re-run (nothing
changed, so nothing may execute; median of --repeat runs). Every run's result
is checked, and a no-op re-run must leave every output file untouched, so no
tool can look fast by doing nothing or by redoing everything.

How each tool runs a task, chosen as the cheapest idiomatic form it offers:
  e3         an East function task, evaluated in e3's warm worker pool
             (and, for the spawn comparison, with E3_SPAWN_ALL=1: one
             `east-py run` process per task, as the original engine does)
  Snakemake  one wildcard rule with a `run:` block (Python inside Snakemake's
             own process, no shell spawned per job), --cores C
  DVC        one stage per task in dvc.yaml whose cmd is a shell one-liner
             (DVC spawns a shell per stage; it has no in-process form);
             `dvc repro`, which runs stages one at a time

The peers live in a separate venv (bash bench/setup_peers.sh); they are never
a dependency of e3. DVC costs about a second per stage, so by default it runs
at N=100 only; --full adds N=1,000. --e3-10k adds e3 at N=10,000 (scaling).

Usage: python3 bench/dag.py [--full] [--e3-10k] [--sizes 100,1000]
                            [--shapes chain,fanout] [--tools e3,snakemake,dvc]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "build" / "bench-venv"
WORK = ROOT / "build" / "bench-dag"
X = 7  # the pipeline's one input value

SHAPES = ("chain", "fanout")


def expected_result(shape: str, n: int) -> int:
    """The value of the last task (chain) or of the join (fanout)."""
    if shape == "chain":
        return X + n
    return sum(X + i for i in range(1, n))


class BenchError(Exception):
    """A tool failed, gave a wrong result, or re-ran work on a no-op."""


@dataclass
class Measure:
    tool: str
    shape: str
    n: int
    first: float | None = None
    noop: float | None = None
    note: str = ""
    noops: list[float] = field(default_factory=list)


def run_timed(argv: list[str], cwd: Path, env: dict[str, str] | None, log: Path) -> float:
    """Run a command to completion; return its wall time. Output goes to `log`."""
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise BenchError(f"{argv[0]} exited {proc.returncode} in {cwd}:\n" + "\n".join(tail))
    return elapsed


def snapshot(paths: list[Path]) -> dict[Path, int]:
    """mtimes (ns) of the output files, to prove a no-op re-run wrote nothing."""
    return {p: p.stat().st_mtime_ns for p in paths}


# --- the peers: Snakemake and DVC -------------------------------------------------------------


class Peer:
    """A file-based tool: outputs are out/<i>.txt (and out/join.txt for fanout)."""

    name = ""

    def __init__(self, shape: str, n: int, directory: Path, cores: int):
        self.shape, self.n, self.dir, self.cores = shape, n, directory, cores
        self.log = directory / "bench.log"

    def outputs(self) -> list[Path]:
        if self.shape == "chain":
            return [self.dir / "out" / f"{i}.txt" for i in range(self.n)]
        return [self.dir / "out" / f"{i}.txt" for i in range(1, self.n)] + [self.dir / "out" / "join.txt"]

    def result(self) -> int:
        return int(self.outputs()[-1].read_text())

    def prepare(self) -> None:
        self.dir.mkdir(parents=True)
        (self.dir / "out").mkdir()
        (self.dir / "input.txt").write_text(f"{X}\n")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def argv(self) -> list[str]:
        raise NotImplementedError

    def execute(self) -> float:
        """One run of the whole pipeline; the first builds everything, later ones should do nothing."""
        return run_timed(self.argv(), self.dir, self.env(), self.log)


class Snakemake(Peer):
    name = "snakemake"

    def prepare(self) -> None:
        super().prepare()
        # One wildcard rule per shape: the idiomatic way to write N similar jobs.
        # `run:` executes in Snakemake's own process: no shell per job.
        body = """
import sys

# Snakemake resolves a chain's DAG recursively: the default limit stops it
# near depth 500 (RecursionError), so a 1,000-task chain needs more.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * NTASKS))

def _read(path):
    with open(path) as f:
        return int(f.read())

def _write(path, value):
    with open(path, "w") as f:
        f.write(f"{value}\\n")
"""
        if self.shape == "chain":
            body += f"""
rule all:
    input: "out/{self.n - 1}.txt"

rule step:
    input: lambda wc: "input.txt" if int(wc.i) == 0 else f"out/{{int(wc.i) - 1}}.txt"
    output: "out/{{i}}.txt"
    wildcard_constraints: i=r"\\d+"
    run:
        _write(output[0], _read(input[0]) + 1)
"""
        else:
            body += f"""
rule all:
    input: "out/join.txt"

rule leaf:
    input: "input.txt"
    output: "out/{{i}}.txt"
    wildcard_constraints: i=r"\\d+"
    run:
        _write(output[0], _read(input[0]) + int(wildcards.i))

rule join:
    input: [f"out/{{i}}.txt" for i in range(1, {self.n})]
    output: "out/join.txt"
    run:
        _write(output[0], sum(_read(p) for p in input))
"""
        (self.dir / "Snakefile").write_text(body.replace("NTASKS", str(self.n), 1))

    def argv(self) -> list[str]:
        # Without --force-use-threads Snakemake 9 spawns a new Snakemake process
        # (~2.5 s of imports) for every `run:` job; with it the job runs in a thread.
        return [str(VENV / "bin" / "snakemake"), "--cores", str(self.cores), "--force-use-threads", "--quiet", "all"]



class Dvc(Peer):
    name = "dvc"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["DVC_NO_ANALYTICS"] = "1"  # no network here; never wait on it
        return env

    def prepare(self) -> None:
        super().prepare()
        dvc = str(VENV / "bin" / "dvc")
        for argv in (
            [dvc, "init", "--no-scm", "-q"],
            [dvc, "config", "core.analytics", "false"],
            [dvc, "config", "core.check_update", "false"],
            [dvc, "config", "core.site_cache_dir", str(self.dir / ".dvc-site")],
        ):
            run_timed(argv, self.dir, self.env(), self.log)
        # One stage per task (DVC has no wildcard stages); dvc.yaml written as
        # JSON, which is YAML, so no quoting surprises.
        stages = {}
        if self.shape == "chain":
            for i in range(self.n):
                src = "input.txt" if i == 0 else f"out/{i - 1}.txt"
                stages[f"s{i}"] = {
                    "cmd": f"echo $(( $(cat {src}) + 1 )) > out/{i}.txt",
                    "deps": [src],
                    "outs": [f"out/{i}.txt"],
                }
        else:
            for i in range(1, self.n):
                stages[f"s{i}"] = {
                    "cmd": f"echo $(( $(cat input.txt) + {i} )) > out/{i}.txt",
                    "deps": ["input.txt"],
                    "outs": [f"out/{i}.txt"],
                }
            leaves = [f"out/{i}.txt" for i in range(1, self.n)]
            stages["join"] = {
                # a file list, not a command line: 999 paths stay well under ARG_MAX
                "cmd": "cat out/[0-9]*.txt | awk '{s += $1} END {print s}' > out/join.txt",
                "deps": leaves,
                "outs": ["out/join.txt"],
            }
        (self.dir / "dvc.yaml").write_text(json.dumps({"stages": stages}, indent=1))

    def argv(self) -> list[str]:
        return [str(VENV / "bin" / "dvc"), "repro", "-q"]



def measure_peer(cls, shape: str, n: int, repeat: int, cores: int) -> Measure:
    directory = Path(tempfile.mkdtemp(prefix=f"{cls.name}-{shape}-{n}-", dir=WORK)) / "p"
    peer = cls(shape, n, directory, cores)
    peer.prepare()
    m = Measure(cls.name, shape, n)
    m.first = peer.execute()
    check_result(cls.name, peer.result(), shape, n)
    before = snapshot(peer.outputs())
    for _ in range(repeat):
        m.noops.append(peer.execute())
    if snapshot(peer.outputs()) != before:
        raise BenchError(f"{cls.name} rewrote outputs on a no-op re-run ({shape}, N={n})")
    m.noop = statistics.median(m.noops)
    return m


def check_result(tool: str, got: int, shape: str, n: int) -> None:
    want = expected_result(shape, n)
    if got != want:
        raise BenchError(f"{tool} computed {got} for {shape} N={n}, expected {want}")


# --- reporting ---------------------------------------------------------------------------------


def fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def fmt_ms(v: float | None, n: int) -> str:
    return "-" if v is None else f"{1000 * v / n:.2f}"


def print_table(measures: list[Measure]) -> None:
    print(f"{'tool':<14}{'shape':<8}{'N':>7}{'first s':>10}{'ms/task':>9}{'no-op s':>10}{'ms/task':>9}  note")
    for m in measures:
        print(
            f"{m.tool:<14}{m.shape:<8}{m.n:>7}{fmt_s(m.first):>10}{fmt_ms(m.first, m.n):>9}"
            f"{fmt_s(m.noop):>10}{fmt_ms(m.noop, m.n):>9}  {m.note}"
        )


def print_ratios(measures: list[Measure], base: str = "e3") -> None:
    """Peer time / e3 time for each (shape, N) measured by both in this run."""
    index = {(m.tool, m.shape, m.n): m for m in measures}
    lines = []
    for m in measures:
        if m.tool in (base, f"{base}-spawn"):
            continue
        ours = index.get((base, m.shape, m.n))
        if ours is None or ours.first is None:
            continue
        first = m.first / ours.first if m.first and ours.first else None
        noop = m.noop / ours.noop if m.noop and ours.noop else None
        lines.append(
            f"  {m.tool:<10}{m.shape:<8}{m.n:>7}  first run: e3 {first:6.1f}x faster   no-op: e3 {noop:6.1f}x faster"
            if first and noop
            else f"  {m.tool:<10}{m.shape:<8}{m.n:>7}  (incomplete)"
        )
    if lines:
        print(f"\nratios (peer time / {base} time, same run):")
        print("\n".join(lines))


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for tool, argv in (("snakemake", ["snakemake", "--version"]), ("dvc", ["dvc", "--version"])):
        exe = VENV / "bin" / argv[0]
        if exe.exists():
            out[tool] = subprocess.run([str(exe), *argv[1:]], capture_output=True, text=True).stdout.strip()
    try:
        from importlib.metadata import version

        out["east-py"] = version("elaraai-east-py")
    except Exception:  # noqa: BLE001 - informational only
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100,1000", help="comma-separated N (default 100,1000)")
    p.add_argument("--shapes", default=",".join(SHAPES), help="chain,fanout")
    p.add_argument("--tools", default="e3,snakemake,dvc")
    p.add_argument("--full", action="store_true", help="also run DVC at N>100 (about 1 s per stage)")
    p.add_argument("--e3-10k", action="store_true", help="also run e3 at N=10,000 (scaling)")
    p.add_argument("--repeat", type=int, default=3, help="no-op re-runs per case, median reported (default 3)")
    p.add_argument("--cores", type=int, default=2, help="parallel tasks for every tool (default 2)")
    p.add_argument("--keep", action="store_true", help="keep the work directories under build/bench-dag")
    args = p.parse_args(argv)

    sizes = [int(s) for s in args.sizes.split(",") if s]
    shapes = [s for s in args.shapes.split(",") if s]
    tools = [t for t in args.tools.split(",") if t]
    for s in shapes:
        if s not in SHAPES:
            p.error(f"unknown shape {s!r}")

    WORK.mkdir(parents=True, exist_ok=True)
    print(f"# bench/dag.py  {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"{platform.node()}  {os.cpu_count()} cpus  load {os.getloadavg()[0]:.1f}  --cores {args.cores}")
    print("# " + "  ".join(f"{k} {v}" for k, v in versions().items()))
    peers_ok = (VENV / "bin" / "snakemake").exists() and (VENV / "bin" / "dvc").exists()
    if not peers_ok and {"snakemake", "dvc"} & set(tools):
        print("# peers missing: run `bash bench/setup_peers.sh` (creates build/bench-venv); skipping Snakemake and DVC")

    measures: list[Measure] = []
    failed = False
    if "e3" in tools and (why := e3_missing()):
        print(f"# e3: skipped, {why}")
        tools.remove("e3")

    def attempt(label: str, fn) -> None:
        nonlocal failed
        print(f"# running {label} ...", file=sys.stderr, flush=True)
        try:
            measures.append(fn())
        except BenchError as e:
            failed = True
            print(f"# {label}: FAILED: {e}", file=sys.stderr)

    for shape in shapes:
        for n in sizes:
            if "e3" in tools:
                attempt(f"e3 {shape} N={n}", lambda: measure_e3(shape, n, args.repeat, args.cores))
            if peers_ok and "snakemake" in tools:
                attempt(f"snakemake {shape} N={n}", lambda: measure_peer(Snakemake, shape, n, args.repeat, args.cores))
            if peers_ok and "dvc" in tools:
                if n > 100 and not args.full:
                    print(f"# dvc {shape} N={n}: skipped (about 1 s per stage; use --full)")
                else:
                    attempt(f"dvc {shape} N={n}", lambda: measure_peer(Dvc, shape, n, args.repeat, args.cores))

    print()
    print_table(measures)
    print_ratios(measures)
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    return 1 if failed else 0


def e3_missing() -> str | None:
    """Why the e3 side cannot run from this checkout yet, or None."""
    needed = {
        "e3 start": ROOT / "lib" / "e3" / "cli" / "start.py",
        "the e3 SDK": ROOT / "lib" / "e3" / "sdk" / "__init__.py",
        "e3 package import": ROOT / "lib" / "e3" / "cli" / "package.py",
        "e3 workspace": ROOT / "lib" / "e3" / "cli" / "workspace.py",
    }
    absent = [name for name, path in needed.items() if not path.exists()]
    return f"not in this checkout yet: {', '.join(absent)}" if absent else None


def measure_e3(shape: str, n: int, repeat: int, cores: int) -> Measure:
    raise BenchError("e3 side not written yet")


if __name__ == "__main__":
    sys.exit(main())
