"""The memo index: a workspace's cached answers from `tasks/`, so a no-op run opens no record pointer.

A no-op `e3 start` asks, for every task, what `tasks/<task_id>` says (one open
and read per task). The index keeps the successes a run found there, task_id ->
output hash, in `cache/memo/<WS>.cbor` (a checksummed entry like those of
e3.repo.snapshot), with the stat of the `tasks/` directory it was read under.
Every record pointer is created or replaced by a rename into `tasks/`, and every
such change moves that directory's mtime and ctime: while the directory's stat
is the one the index recorded, no pointer changed since and the index answers
for them. Any change (a worker finishing, a forced run, an `error` record) makes
the whole index untrusted; the run reads the pointers again and writes it anew.

Racily clean, as git's index says: a pointer replaced in the same clock tick as
the directory was read leaves its stat unchanged. So the run touches
`cache/memo/<WS>.clock` before its first read (a timestamp from the
filesystem's own clock, at its granularity) and writes the index only if the
directory last changed strictly before that: every later change then shows as a
newer stat. A run that itself wrote records cannot keep what it read so; once it
is over, `settled_signature` waits for that clock to pass the directory's stat,
and the pointers read after that (e3.repo.fixpoint.store_checked) are kept
under it (`save_checked`). A run also looks at the directory again every
`RECHECK` seconds and stops trusting the index once it moved, so records
written meanwhile by `e3-run-task` workers are seen as they were before the
index existed.

The index only replaces the pointer read: a hit is still reused only if its
output object has bytes (e3.storage.records.reusable_output's stat), and a
damaged, missing or foreign index is read as no index. Deleting it loses nothing.
"""
from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING

from e3.storage import records

if TYPE_CHECKING:
    from e3.storage.repository import Repository

FORMAT = 1
KIND = "memo"
RECHECK = 0.25
"""Seconds between two looks at `tasks/` while a run uses the index."""
SETTLE = 1.0
"""Most seconds `settled_signature` waits for the filesystem's clock to pass the stat of `tasks/`:
a tick of its timestamps (a jiffy on Linux's file systems, a second on some others)."""


def _signature(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size]


class MemoIndex:
    """One run's view of the memo: `reusable_output(task_id)` answers as e3.storage.records does
    (the output of a recorded success whose object has bytes, else None), from the index while
    `tasks/` is unchanged; `save()` at the end of the run keeps what it found for the next one."""

    def __init__(self, repo: "Repository", ws: str) -> None:
        from e3.repo import snapshot

        self.repo = repo
        self._key = ws if snapshot.plain_key(ws) else None
        self._trusted: dict[str, str] = {}
        """task_id -> output, from the index: true while `tasks/` has the stat it recorded."""
        self._found: dict[str, str] = {}
        """task_id -> output, successes this run read from `tasks/` itself."""
        self._dirty = False
        self._clock: int | None = None
        self._seen: list[int] | None = None
        self._next_check = 0.0
        if self._key is None:
            return
        self._clock = _touch(repo.fspath("cache", KIND), f"{self._key}.clock")
        self._seen = self._stat()
        self._next_check = time.monotonic() + RECHECK
        if self._clock is None or self._seen is None:
            return
        cached = snapshot.load_entry(repo, KIND, self._key)
        if (
            cached is not None
            and cached.get("format") == FORMAT
            and cached.get("tasks") == self._seen
            and isinstance(cached.get("hits"), dict)
            and _full_hashes(cached["hits"])
        ):
            self._trusted = cached["hits"]

    def reusable_output(self, task_id: str) -> str | None:
        if self._trusted and time.monotonic() >= self._next_check:
            self._recheck()
        out = self._trusted.get(task_id)
        if out is None:
            out = records.reusable_output(self.repo, records.summary(self.repo, task_id))
            if out is not None:
                self._found[task_id] = out
                self._dirty = True
            return out
        if self.repo.objects.nonempty_checked(out):
            return out
        del self._trusted[task_id]  # its bytes were lost: the task runs, and its new record moves tasks/
        self._dirty = True
        return None

    def _recheck(self) -> None:
        self._next_check = time.monotonic() + RECHECK
        if self._stat() != self._seen:
            self._trusted = {}
            self._dirty = True

    def _stat(self) -> list[int] | None:
        return tasks_signature(self.repo)

    def unchanged_signature(self) -> list[int] | None:
        """The stat of `tasks/` if no pointer can have changed since this run began reading it:
        what this run read may then be kept (here, or by e3.repo.fixpoint); else None."""
        if self._key is None or self._clock is None:
            return None
        now = self._stat()
        # Strictly before the clock: a change at or after it (the same tick included) may be
        # one this run did not read.
        if now is None or now != self._seen or now[2] >= self._clock or now[3] >= self._clock:
            return None
        return now

    def save(self) -> None:
        """Keep what this run found, if `tasks/` did not change since it began reading."""
        if not self._dirty:
            return
        now = self.unchanged_signature()
        if now is None:
            return
        hits = dict(self._trusted)
        hits.update(self._found)
        self._store(now, hits)

    def save_checked(self, tasks: list[int], hits: dict[str, str]) -> None:
        """Keep `hits` (task_id -> output) instead of what this run found: each read from its
        pointer once the clock had passed `tasks`, the stat of `tasks/` `settled_signature` gave
        (e3.repo.fixpoint.store_checked reads them so after a run that wrote records)."""
        if self._key is not None:
            self._store(tasks, hits)

    def _store(self, tasks: list[int], hits: dict[str, str]) -> None:
        from e3.repo import snapshot

        snapshot.store_entry(self.repo, KIND, self._key, {"format": FORMAT, "tasks": tasks, "hits": hits})


def settled_signature(repo: "Repository", ws: str) -> list[int] | None:
    """The stat of `tasks/`, returned once the filesystem's clock has passed it (touching
    `cache/memo/<WS>.clock` until that file's time is later than the stat's mtime and ctime):
    a pointer changed after this returns then shows as another stat. One changed before it
    returns, in the same tick as the stat, does not: what rests on this stat reads the pointers
    it needs after this returns (e3.repo.fixpoint.store_checked). None: no plain key, no
    `tasks/`, or a clock that does not pass it within `SETTLE` seconds."""
    from e3.repo import snapshot

    if not snapshot.plain_key(ws):
        return None
    now = tasks_signature(repo)
    if now is None:
        return None
    deadline = time.monotonic() + SETTLE
    while True:
        clock = _touch(repo.fspath("cache", KIND), f"{ws}.clock")
        if clock is None:
            return None
        if clock > now[2] and clock > now[3]:
            return now
        if time.monotonic() >= deadline:
            return None  # a clock behind the directory's times, or ticks coarser than SETTLE
        time.sleep(SETTLE / 1000)


def tasks_signature(repo: "Repository") -> list[int] | None:
    """The stat of `tasks/` as an entry keeps it (device, inode, mtime, ctime, size), or None."""
    try:
        return _signature(os.stat(repo.fspath("tasks")))
    except OSError:
        return None


def _touch(directory: str, name: str) -> int | None:
    """Set the file's times to now and return its mtime (ns): the filesystem's clock, as it stamps `tasks/`."""
    path = os.path.join(directory, name)
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            os.utime(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
    except OSError:
        return None  # a cache that cannot be written is only slower
    return min(st.st_mtime_ns, st.st_ctime_ns)


def _full_hashes(hits: dict) -> bool:
    """Every output a full hash (one match over them all, not one per name); the keys are only
    looked up, by task ids computed here."""
    try:
        return bool(_HASHES.fullmatch("\n".join([*hits.values(), ""])))
    except TypeError:
        return False


_HASHES = re.compile(r"(?:[0-9a-f]{64}\n)*")
