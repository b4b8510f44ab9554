#!/usr/bin/env python3
"""Package benchmarks: building big packages with the SDK, importing and exporting their zips.

For chains of N tasks (each `x + 1`, as the dataflow benchmarks use):
- SDK build (all objects encoded in memory) and SDK export (build + zip);
- `e3 package import` (checks every name, hash and reachable object, then stores);
- `e3 package export` (re-reads and re-hashes every object, writes the zip).
Baseline, same run: `unzip -q` of the same zip into a directory (only putting
the bytes on disk, no checks, no fsync). Ratios are e3's time over unzip's.

Run alone: `python3 bench/package_bench.py [--sizes 1000,10000]`.
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
sys.path.insert(0, str(ROOT / "tests"))  # e3_testing: the helpers the tests use too

from e3 import sdk  # noqa: E402

from e3_testing import packages  # noqa: E402

ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT / "lib"))
ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed e3 has its modules compiled


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sh(*argv) -> None:
    subprocess.run([str(a) for a in argv], check=True, env=ENV, stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated task counts")
    add_check_option(ap)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    have_unzip = shutil.which("unzip") is not None
    rows = []
    with tempfile.TemporaryDirectory(prefix="e3-bench-package-") as tmp:
        d = Path(tmp)
        for n in sizes:
            pkg = packages.chain(n)
            build = timed(lambda: sdk.build(pkg))
            zip_path = d / f"chain-{n}.zip"
            export_sdk = timed(lambda: sdk.export(pkg, zip_path))
            repo = d / f"repo-{n}"
            sh("e3", "repo", "create", repo)
            imp = timed(lambda: sh("e3", "package", "import", repo, zip_path))
            again = timed(lambda: sh("e3", "package", "import", repo, zip_path))
            exp = timed(lambda: sh("e3", "package", "export", repo, "chain@1.0.0", d / f"out-{n}.zip"))
            unzip = timed(lambda: sh("unzip", "-q", zip_path, "-d", d / f"unzipped-{n}")) if have_unzip else float("nan")
            rows.append((n, build, export_sdk, imp, again, exp, unzip, zip_path.stat().st_size))
    print("package chains of N tasks (x + 1 each); seconds; ratio = e3 / unzip of the same zip")
    print(f"  {'N':>6} {'sdk build':>9} {'sdk zip':>8} {'import':>8} {'re-import':>9} {'export':>8} {'unzip':>7} {'import/unzip':>12} {'export/unzip':>12} {'zip MB':>7}")
    for n, build, export_sdk, imp, again, exp, unzip, size in rows:
        print(
            f"  {n:>6} {build:>9.2f} {export_sdk:>8.2f} {imp:>8.2f} {again:>9.2f} {exp:>8.2f} {unzip:>7.2f}"
            f" {imp / unzip:>11.1f}x {exp / unzip:>11.1f}x {size / 1e6:>7.1f}"
        )
    for n, build, *_ in rows:
        print(f"  sdk build per task at N={n}: {build / n * 1e6:.0f} us")
    return Goals("figures against unzip only", none_set=True).finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
