"""A real Dask cluster on 127.0.0.1 for tests and benchmarks: `dask scheduler` and `dask worker` processes.

    with Cluster(workers=2, hide=[tmp_dir]) as cluster:
        cluster.address            # tcp://127.0.0.1:PORT
        w = cluster.add_worker()   # one more, e.g. to SIGKILL it

Workers are single-threaded, without a nanny (a worker killed stays dead), and
can be started in a mount namespace of their own where the directories in
`hide` are covered by an empty tmpfs: they cannot read the repositories the
tests make there, as on a cluster without a shared filesystem. Every process
is stopped at the end (SIGTERM, then SIGKILL).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

LIB = Path(__file__).resolve().parents[2] / "lib"
START_TIMEOUT = 60.0


def _env(extra: dict[str, str] | None = None, pythonpath: Sequence[str] = ()) -> dict[str, str]:
    env = dict(os.environ)
    path = [*pythonpath, str(LIB), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.pop("E3_DIR", None)
    if extra:
        env.update(extra)
    return env


def can_hide() -> bool:
    """Can a process get a mount namespace of its own here (unshare -m, as root)?"""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


class Cluster:
    def __init__(
        self,
        workers: int = 2,
        *,
        nthreads: int = 1,
        hide: Sequence[Path] = (),
        scheduler: str | None = None,
    ):
        self.dir = Path(tempfile.mkdtemp(prefix="e3-dask-"))
        self.nthreads = nthreads
        self.hide = [Path(p) for p in hide]
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._count = 0
        self.address = scheduler or self._start_scheduler()
        try:
            for _ in range(workers):
                self.add_worker(wait=False)
            self.wait_for(workers)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start_scheduler(self) -> str:
        info = self.dir / "scheduler.json"
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(info)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.dir / "scheduler.log", "wb"),
            env=_env(), cwd=self.dir, start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited: {(self.dir / 'scheduler.log').read_text()[-2000:]}")
            try:
                return json.loads(info.read_text())["address"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(0.05)
        raise RuntimeError("dask scheduler did not start")

    def add_worker(self, *, wait: bool = True, pythonpath: Sequence[str] = (), name: str | None = None) -> subprocess.Popen:
        """Start one more worker (with `pythonpath` first on its module path); wait until the scheduler has it."""
        self._count += 1
        name = name or f"w{self._count}"
        local = self.dir / name
        local.mkdir()
        argv = [sys.executable, "-m", "dask", "worker", self.address, "--name", name, "--nthreads", str(self.nthreads),
                "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--memory-limit", "0",
                "--local-directory", str(local), "--death-timeout", "60"]
        if self.hide:
            mounts = " && ".join(f"mount -t tmpfs none {_quote(p)}" for p in self.hide)
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$@"', "sh", *argv]
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(local / "worker.log", "wb"),
            env=_env(pythonpath=pythonpath), cwd=local, start_new_session=True,
        )
        proc.name = name  # type: ignore[attr-defined]
        self.workers.append(proc)
        if wait:
            self.wait_for(len([w for w in self.workers if w.poll() is None]))
        return proc

    def wait_for(self, n: int) -> None:
        """Until the scheduler has `n` workers."""
        from distributed import Client

        with Client(self.address, timeout=START_TIMEOUT, set_as_default=False) as client:
            deadline = time.monotonic() + START_TIMEOUT
            while len(client.scheduler_info(n_workers=-1)["workers"]) != n:
                for w in self.workers:
                    if w.poll() is not None and w.returncode not in (-signal.SIGKILL,):
                        log = self.dir / w.name / "worker.log"  # type: ignore[attr-defined]
                        raise RuntimeError(f"dask worker exited {w.returncode}: {log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the dask scheduler does not have {n} workers")
                time.sleep(0.05)

    def kill(self, worker: subprocess.Popen) -> None:
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    def close(self) -> None:
        procs = [w for w in self.workers if w.poll() is None]
        if self.scheduler is not None and self.scheduler.poll() is None:
            procs.append(self.scheduler)
        for p in procs:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()
        for w in self.workers:  # what tasks spawned in a killed worker's group
            _signal_group(w, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))
