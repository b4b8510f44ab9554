"""Who holds something: a process identity that survives pid reuse and reboots.

A claim, lock or running execution records (pid, process start time, boot id).
It is alive only if that pid exists, started at that time, and the machine has
not rebooted since; a pid reused by another process has another start time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@lru_cache(maxsize=1)
def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


_mine: tuple[int, int] | None = None


def my_start_time() -> int:
    """This process's start time, read once per process (a claim or lock asks for it every time)."""
    global _mine
    pid = os.getpid()
    if _mine is None or _mine[0] != pid:  # a forked child is another process
        _mine = (pid, start_time(pid) or 0)
    return _mine[1]


@dataclass(frozen=True)
class Holder:
    pid: int
    start_time: int
    boot_id: str

    @classmethod
    def me(cls) -> "Holder":
        pid = os.getpid()
        return cls(pid, my_start_time(), boot_id())

    def alive(self) -> bool:
        if self.boot_id != boot_id():
            return False
        started = start_time(self.pid)
        return started is not None and started == self.start_time
