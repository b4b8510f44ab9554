#!/usr/bin/env python3
"""Remote benchmark: e3 through e3-api-server against e3 on the local directory, and against curl.

Measured in one run, on one machine (client and server share its cores):
  get            `e3 get` of a small dataset by URL / the same command on the local path
  GET/s          requests per second of dataset GET (the raw route) with 50 concurrent
                 connections, by wrk when it is installed, else by a Python client
  upload 1 GB    `e3 set URL` of a 1 GB (10^9 bytes) Blob value / `curl -T` of the same file
                 to the same route
  download 1 GB  `e3 get URL -f beast2` / `curl` of the same value (its download URL), both
                 writing to /dev/null: the disk's cost, the same for both, would only hide
                 the difference in what each moves
  server RSS     the server's peak resident memory over the uploads and downloads (VmHWM)
  start 1,000    `e3 start URL` of the 1,000-task fan-out DAG / `e3 start` of it locally

The large transfers run --large-repeat times each, e3 and curl taking turns (the median of
each is compared), with the CPU seconds each client used. The load average is printed with
the figures: the machine is shared, and the ratios are only comparable within one run.

Goals (each printed ok or MISSED): get by URL <= 3x local; >= 1,000 GET/s; upload and
download >= 0.5x curl's throughput; server peak RSS <= 256 MB during 1 GB transfers;
start through the server <= 1.5x local.

Usage: python3 bench/remote.py [--size-mb 1000] [--repeat 5] [--large-repeat 3] [--check]
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))
BIN = ROOT / "bin"

from goals import Goals, add_check_option  # noqa: E402


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e["PYTHONPATH"] = str(ROOT / "lib")
    e.pop("E3_TOKEN", None)
    e.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed e3 has its modules compiled
    return e


def sh(*argv, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], capture_output=True, env=env(), **kw)
    if r.returncode != 0:
        raise SystemExit(f"bench/remote.py: {' '.join(map(str, argv))} exited {r.returncode}: {r.stderr.decode().strip()}")
    return r


def client(argv: list, stdout: int | None = None) -> tuple[float, float]:
    """Run a client command to its end: (wall seconds, CPU seconds it used, user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        r = subprocess.run([str(a) for a in argv], stdout=null if stdout is None else stdout, stderr=subprocess.PIPE, env=env())
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench/remote.py: {' '.join(map(str, argv))} exited {r.returncode}: {r.stderr.decode().strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def timed(argv: list, repeat: int, **kw) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sh(*argv, **kw)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class Server:
    def __init__(self, repos: Path) -> None:
        self.proc = subprocess.Popen([str(BIN / "e3-api-server"), "--repos", str(repos), "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env())
        self.url = self.proc.stdout.readline().decode().split()[-1]

    def rss_peak_mb(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024

    def rss_mb(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def requests_per_second(url: str, seconds: float = 5.0, connections: int = 50) -> tuple[float, str]:
    if shutil.which("wrk"):
        out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", url], capture_output=True,
                             text=True, check=True).stdout
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "wrk"
    import asyncio

    import httpx

    async def main() -> int:
        done = 0
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(limits=limits) as c:
            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    r = await c.get(url)
                    assert r.status_code == 200
                    done += 1
            await asyncio.gather(*(worker() for _ in range(connections)))
        return done

    t0 = time.perf_counter()
    n = asyncio.run(main())
    return n / (time.perf_counter() - t0), "httpx (Python client)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1000,
                    help="size of the large value in MB (10^6 bytes; one Beast2 frame holds at most 1 GiB)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--large-repeat", type=int, default=3, help="turns of each large transfer, e3 and curl alternating")
    add_check_option(ap)
    args = ap.parse_args()

    from e3 import east, sdk

    goals = Goals("issue 17")
    work = Path(tempfile.mkdtemp(prefix="e3-bench-remote-"))
    repos = work / "repos"
    repos.mkdir()
    server = Server(repos)
    try:
        url = f"{server.url}/repos/b"
        local = repos / "b"  # the same repository, by path and by URL
        sh(BIN / "e3", "repo", "create", url)
        pkg = sdk.package("bench", "1.0.0", sdk.input("small", east.IntegerType, 42), sdk.input("big", east.BlobType, b""))
        sdk.export(pkg, work / "bench.zip")
        sh(BIN / "e3", "package", "import", url, work / "bench.zip")
        sh(BIN / "e3", "workspace", "create", url, "dev")
        sh(BIN / "e3", "workspace", "deploy", url, "dev", "bench@1.0.0")

        print(f"e3 remote benchmark ({os.cpu_count()} cores; server and clients on this machine; {load()})\n")
        t_local = timed([BIN / "e3", "get", local, "dev.inputs.small"], args.repeat)
        t_remote = timed([BIN / "e3", "get", url, "dev.inputs.small"], args.repeat)
        r = t_remote / t_local
        print(f"e3 get (small)     local {1000 * t_local:7.1f} ms   by URL {1000 * t_remote:7.1f} ms   ratio {r:.2f}")
        goals.check("e3 get by URL / local", r <= 3, f"{r:.2f}x", "<= 3x")

        raw = f"{server.url}/api/repos/b/workspaces/dev/datasets/inputs/small"
        rps, how = requests_per_second(raw)
        print(f"dataset GET        {rps:7.0f} requests/s with 50 connections ({how})")
        goals.check("dataset GET with 50 connections", rps >= 1000, f"{rps:.0f} requests/s", ">= 1,000")

        size = args.size_mb * 1_000_000
        value = work / "big.beast2"
        _write_blob(value, size)
        base_rss = server.rss_mb()
        route = f"{server.url}/api/repos/b/workspaces/dev/datasets/inputs/big"
        turns: dict[str, list[tuple[float, float]]] = {"set": [], "curl up": [], "get": [], "curl down": []}
        print(f"\n{args.size_mb} MB, {args.large_repeat} turns each ({load()})")
        for _ in range(args.large_repeat):
            turns["set"].append(client([BIN / "e3", "set", url, "dev.inputs.big", value]))
            turns["curl up"].append(client(["curl", "-sf", "-T", value, "-H", "Content-Type: application/beast2", route]))
        for _ in range(args.large_repeat):
            turns["get"].append(client([BIN / "e3", "get", url, "dev.inputs.big", "-f", "beast2"]))
            link = sh("curl", "-sf", route).stdout
            dl = re.search(rb'"url":\s*"([^"]+)"', link).group(1).decode()
            turns["curl down"].append(client(["curl", "-sf", dl]))
        os.unlink(value)
        peak = server.rss_peak_mb()
        mb = size / 1e6
        wall = {k: statistics.median(w for w, _ in v) for k, v in turns.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in turns.items()}
        up, down = wall["curl up"] / wall["set"], wall["curl down"] / wall["get"]
        print(f"upload   e3 set {mb / wall['set']:5.0f} MB/s ({cpu['set']:.1f} s CPU)   "
              f"curl {mb / wall['curl up']:5.0f} MB/s ({cpu['curl up']:.1f} s CPU)   ratio {up:.2f}")
        print(f"download e3 get {mb / wall['get']:5.0f} MB/s ({cpu['get']:.1f} s CPU)   "
              f"curl {mb / wall['curl down']:5.0f} MB/s ({cpu['curl down']:.1f} s CPU)   ratio {down:.2f}")
        print(f"server RSS         {base_rss:.0f} MB before, peak {peak:.0f} MB over the transfers ({load()})")
        goals.check(f"upload of {args.size_mb} MB / curl", up >= 0.5, f"{up:.2f}x", ">= 0.5x")
        goals.check(f"download of {args.size_mb} MB / curl", down >= 0.5, f"{down:.2f}x", ">= 0.5x")
        goals.check(f"server peak RSS over {args.size_mb} MB transfers", peak <= 256, f"{peak:.0f} MB", "<= 256 MB")

        from dag import e3_package  # the 1,000-task fan-out of bench/dag.py

        sdk.export(e3_package("fanout", 1000, "fan"), work / "fan.zip")
        sh(BIN / "e3", "repo", "create", work / "localfan")
        for target in (work / "localfan", f"{server.url}/repos/fan"):
            if str(target).startswith("http"):
                sh(BIN / "e3", "repo", "create", target)
            sh(BIN / "e3", "package", "import", target, work / "fan.zip")
            sh(BIN / "e3", "workspace", "create", target, "dev")
            sh(BIN / "e3", "workspace", "deploy", target, "dev", "fan@1.0.0")
        t_local = timed([BIN / "e3", "start", work / "localfan", "dev", "-q"], 1)
        t_remote = timed([BIN / "e3", "start", f"{server.url}/repos/fan", "dev", "-q"], 1)
        r = t_remote / t_local
        print(f"\ne3 start 1,000     local {t_local:7.2f} s    by URL {t_remote:7.2f} s    ratio {r:.2f} ({load()})")
        goals.check("e3 start of 1,000 tasks by URL / local", r <= 1.5, f"{r:.2f}x", "<= 1.5x")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return goals.finish(args.check)


def _write_blob(path: Path, size: int) -> None:
    """A Beast2 Blob value of `size` random bytes, written in chunks (never held whole): the canonical
    header, one frame of the length and the bytes (checked first against the runtime's small blobs)."""
    from e3 import east
    from e3.beast2_stream import canonical_prefix
    from e3.varint import encode as encode_varint

    def prefix(n: int) -> bytes:
        length = encode_varint(n)
        return canonical_prefix(east.BlobType) + b"\x00" + encode_varint(len(length) + n) * 2 + length

    for n in (0, 200, 70000):
        assert east.encode(b"\1" * n, east.BlobType) == prefix(n) + b"\1" * n, "the Beast2 Blob layout changed"
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        f.write(prefix(size))
        left = size
        while left:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n


if __name__ == "__main__":
    sys.exit(main())
