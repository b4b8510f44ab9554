"""Measuring a whole command from outside: wall time, CPU time, and peak resident memory.

`run(argv)` times one process (with `os.wait4`, so its CPU and peak memory are
the operating system's own accounting of that child and the descendants it
waited for). `TreeMemory` samples a process tree for tools that keep workers
(the sum of their resident memory, which `ru_maxrss` cannot give).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass


@dataclass
class Measured:
    wall: float
    """Seconds of wall clock."""
    cpu: float
    """User + system seconds of the process and the children it waited for."""
    rss: int
    """Bytes: the peak resident memory (the largest single process, or with `tree`, the process tree's sum)."""

    def __add__(self, other: "Measured") -> "Measured":
        """Two commands one after the other: times add, memory is the larger."""
        return Measured(self.wall + other.wall, self.cpu + other.cpu, max(self.rss, other.rss))


class CommandFailed(Exception):
    pass


GNU_TIME = "/usr/bin/time"
"""GNU time reports its child's peak memory exactly. A child of this process would count this
process's memory too: Linux carries the peak resident memory over fork and exec."""


def run(argv, *, env=None, cwd=None, stdin=None, stdout=None, tree: bool = False) -> Measured:
    """Run `argv` to completion; raise CommandFailed (with its stderr) if it exits non-zero.

    `stdin`/`stdout` are paths (or None: empty input, output discarded). With
    `tree`, memory is the peak of the process tree's sum, sampled; else the
    process's own peak, through GNU time where there is one (else the figure
    has this process's own memory as its floor).
    """
    argv = [str(a) for a in argv]
    report = None
    if not tree and os.access(GNU_TIME, os.X_OK):
        fd, report = tempfile.mkstemp(prefix="e3-bench-rss-")
        os.close(fd)
        argv = [GNU_TIME, "-f", "%M", "-o", report, *argv]
    fin = open(stdin, "rb") if stdin is not None else subprocess.DEVNULL
    fout = open(stdout, "wb") if stdout is not None else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=fin, stdout=fout, stderr=subprocess.PIPE)
        sampler = TreeMemory(proc.pid) if tree else None
        if sampler:
            sampler.start()
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = sampler.stop() if sampler else usage.ru_maxrss * 1024
        if report is not None:
            with open(report) as f:
                lines = f.read().split()
            peak = int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else peak
    finally:
        for f in (fin, fout):
            if f is not subprocess.DEVNULL:
                f.close()
        if report is not None:
            os.unlink(report)
    if proc.returncode != 0:
        raise CommandFailed(f"{' '.join(argv)} exited {proc.returncode}: {err.decode(errors='replace').strip()[-2000:]}")
    return Measured(wall, usage.ru_utime + usage.ru_stime, peak)


def best(runs: list[Measured]) -> Measured:
    """The least disturbed of several runs of one command: the fastest wall, with the least CPU and memory seen."""
    return Measured(min(r.wall for r in runs), min(r.cpu for r in runs), min(r.rss for r in runs))


class TreeMemory(threading.Thread):
    """Samples the resident memory of a process and all its descendants, summed, until stopped.

    RUSAGE_CHILDREN's ru_maxrss is the largest single process; a tool that runs
    a pool of workers uses the sum. Shared pages count in each process, so the
    sum is an upper bound.
    """

    PERIOD = 0.02

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        while not self.done.wait(self.PERIOD):
            self.peak = max(self.peak, self.sample())

    def sample(self) -> int:
        children: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            pid = int(name)
            children.setdefault(int(fields[1]), []).append(pid)  # fields[1]: ppid
            rss[pid] = int(fields[21]) * self.page  # fields[21]: rss in pages
        total, todo = 0, [self.pid]
        while todo:
            pid = todo.pop()
            total += rss.get(pid, 0)
            todo.extend(children.get(pid, ()))
        return total

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak
