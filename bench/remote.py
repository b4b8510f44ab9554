#!/usr/bin/env python3
"""Remote benchmark: e3 through e3-api-server against e3 on the local directory, and against curl.

Measured in one run, on one machine (client and server share its cores):
  get            `e3 get` of a small dataset by URL / the same command on the local path
  GET/s          requests per second of dataset GET (the raw route) with 50 concurrent
                 connections, by wrk when it is installed, else by a Python client
  upload 1 GB    `e3 set URL` of a 1 GB (10^9 bytes) Blob value / `curl -T` of the same file
                 to the same route
  download 1 GB  `e3 get URL -f beast2` / `curl` of the same value (its download URL)
  server RSS     the server's peak resident memory over the upload and download (VmHWM)
  start 1,000    `e3 start URL` of the 1,000-task fan-out DAG / `e3 start` of it locally

Goals (each printed ok or MISSED): get by URL <= 3x local; >= 1,000 GET/s; upload and
download >= 0.5x curl's throughput; server peak RSS <= 256 MB during 1 GB transfers;
start through the server <= 1.5x local.

Usage: python3 bench/remote.py [--size-mb 1000] [--repeat 5] [--check]
"""
from __future__ import annotations

import argparse
import os
import re
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


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e["PYTHONPATH"] = str(ROOT / "lib")
    e.pop("E3_TOKEN", None)
    return e


def sh(*argv, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], capture_output=True, env=env(), **kw)
    if r.returncode != 0:
        raise SystemExit(f"bench/remote.py: {' '.join(map(str, argv))} exited {r.returncode}: {r.stderr.decode().strip()}")
    return r


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


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


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
    ap.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = ap.parse_args()

    from e3 import east, sdk

    goals: list[tuple[str, bool]] = []
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

        print(f"e3 remote benchmark ({os.cpu_count()} cores; server and clients on this machine)\n")
        t_local = timed([BIN / "e3", "get", local, "dev.inputs.small"], args.repeat)
        t_remote = timed([BIN / "e3", "get", url, "dev.inputs.small"], args.repeat)
        r = t_remote / t_local
        print(f"e3 get (small)     local {1000 * t_local:7.1f} ms   by URL {1000 * t_remote:7.1f} ms   ratio {r:.2f}")
        goals.append((f"e3 get by URL <= 3x local: {r:.2f}x", r <= 3))

        raw = f"{server.url}/api/repos/b/workspaces/dev/datasets/inputs/small"
        rps, how = requests_per_second(raw)
        print(f"dataset GET        {rps:7.0f} requests/s with 50 connections ({how})")
        goals.append((f"dataset GET >= 1,000 requests/s: {rps:.0f}", rps >= 1000))

        size = args.size_mb * 1_000_000
        value = work / "big.beast2"
        _write_blob(value, size)
        base_rss = server.rss_mb()
        t0 = time.perf_counter()
        sh(BIN / "e3", "set", url, "dev.inputs.big", value)
        t_set = time.perf_counter() - t0
        t0 = time.perf_counter()
        sh("curl", "-sf", "-T", value, "-H", "Content-Type: application/beast2", "-o", "/dev/null",
           f"{server.url}/api/repos/b/workspaces/dev/datasets/inputs/big")
        t_curl_up = time.perf_counter() - t0
        t0 = time.perf_counter()
        with open(work / "got.beast2", "wb") as f:
            subprocess.run([str(BIN / "e3"), "get", url, "dev.inputs.big", "-f", "beast2"], stdout=f, check=True, env=env())
        t_get = time.perf_counter() - t0
        assert os.path.getsize(work / "got.beast2") == os.path.getsize(value)
        os.unlink(work / "got.beast2")
        t0 = time.perf_counter()
        link = sh("curl", "-sf", f"{server.url}/api/repos/b/workspaces/dev/datasets/inputs/big").stdout
        dl = re.search(rb'"url":\s*"([^"]+)"', link).group(1).decode()
        sh("curl", "-sf", "-o", "/dev/null", dl)
        t_curl_down = time.perf_counter() - t0
        peak = server.rss_peak_mb()
        mb = size / 1e6
        up, down = t_curl_up / t_set, t_curl_down / t_get
        print(f"upload {args.size_mb} MB     e3 set {mb / t_set:7.0f} MB/s   curl {mb / t_curl_up:7.0f} MB/s   ratio {up:.2f}")
        print(f"download {args.size_mb} MB   e3 get {mb / t_get:7.0f} MB/s   curl {mb / t_curl_down:7.0f} MB/s   ratio {down:.2f}")
        print(f"server RSS         {base_rss:.0f} MB before, peak {peak:.0f} MB over the transfers")
        goals.append((f"upload >= 0.5x curl: {up:.2f}x", up >= 0.5))
        goals.append((f"download >= 0.5x curl: {down:.2f}x", down >= 0.5))
        goals.append((f"server peak RSS <= 256 MB during {args.size_mb} MB transfers: {peak:.0f} MB", peak <= 256))
        os.unlink(value)

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
        print(f"e3 start 1,000     local {t_local:7.2f} s    by URL {t_remote:7.2f} s    ratio {r:.2f}")
        goals.append((f"e3 start of 1,000 tasks by URL <= 1.5x local: {r:.2f}x", r <= 1.5))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print("\ngoals:")
    for text, ok in goals:
        print(f"  {text} {mark(ok)}")
    return 1 if args.check and not all(ok for _, ok in goals) else 0


def _write_blob(path: Path, size: int) -> None:
    """A Beast2 Blob value of `size` random bytes, written in chunks (never held whole).

    Its prefix is found by encoding small blobs: the container header, then the
    segment's length twice and the blob's length (LEB128), then the bytes. The
    prefix is checked against the runtime's own encoding of a small blob first.
    """
    from e3 import east

    for n in (0, 200, 70000):
        enc = east.encode(b"\1" * n, east.BlobType)
        assert enc[: len(enc) - n] == _blob_prefix(n), "the Beast2 Blob layout changed: update bench/remote.py"
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        f.write(_blob_prefix(size))
        left = size
        while left:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n


def _blob_prefix(n: int) -> bytes:
    header = bytes.fromhex("89456173740d0a050003000106010000")
    seg = n + len(_varint(n))
    return header + _varint(seg) + _varint(seg) + _varint(n)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


if __name__ == "__main__":
    sys.exit(main())
