"""Execution logs: `logs/<TASK_ID>.eastl`, an append-only CBOR sequence per task_id.

Each record is a CBOR map: `{"time": epoch seconds, "stream": "stdout"|"stderr",
"bytes": b"..."}`; an execution opens with `{"time", "stream": "start",
"executionId"}` and closes with `{"time", "stream": "end", "status"}`. A writer
appends each record with one `write()` on an O_APPEND descriptor, so a reader
sees whole records or nothing of them; a crash mid-record leaves a torn tail,
which readers ignore and the next writer cuts off before appending. Plain
files and polling keep it simple: a follower sees a record within ~20 ms.
"""
from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import cbor2

from e3.errors import ExecutionNotFound
from e3.storage.objects import check_hash

if TYPE_CHECKING:
    from e3.storage.repository import Repository

SUFFIX = ".eastl"
STREAMS = ("stdout", "stderr")
END_STATUSES = ("success", "failed", "error", "cancelled")
MAX_RECORD_BYTES = 1 << 16
"""Output is split into records of at most this many bytes, so one record is one cheap write."""
POLL_SECONDS = 0.02


def log_path(repo: "Repository", task_id: str) -> Path:
    return repo.path("logs", check_hash(task_id) + SUFFIX)


def resolve_log(repo: "Repository", name: str, must_exist: bool = True) -> Path:
    """The log of a task_id given in full or as a unique prefix of at least 4 hex digits."""
    from e3.errors import AmbiguousObject, InvalidHash
    from e3.storage.objects import HASH_RE, PREFIX_RE

    if HASH_RE.fullmatch(name):
        path = log_path(repo, name)
        if must_exist and not path.exists():
            raise ExecutionNotFound(f"no log for task_id {name}")
        return path
    if not PREFIX_RE.fullmatch(name):
        raise InvalidHash(f"invalid task_id {name!r} (expected at least 4 lower-case hex digits)")
    try:
        found = sorted(n for n in os.listdir(repo.path("logs")) if n.startswith(name) and n.endswith(SUFFIX))
    except FileNotFoundError:
        found = []
    if not found:
        raise ExecutionNotFound(f"no log for task_id {name}")
    if len(found) > 1:
        raise AmbiguousObject(f"task_id prefix {name} is ambiguous ({len(found)} logs match)")
    return repo.path("logs", found[0])


class LogWriter:
    """Appends records to one log; `write(stream, data)` is what the runner calls.

    A `deferred` writer makes no file until something is printed: the opening
    "start" record waits for the first output, and a task that prints nothing has
    its start and end written at `close()`, in one write. Creating the file is
    then off the path from a task's start to its answer (e3.exec.pool_worker
    answers first, then closes the log).
    """

    def __init__(self, path: str | os.PathLike[str], deferred: bool = False):
        self.path = os.fspath(path)
        self._fd = -1
        self._pending = b""
        if not deferred:
            self._open()

    def _open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if os.fstat(self._fd).st_size:
            _cut_torn_tail(self._fd, self.path)

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def record(self, fields: dict, *, hold: bool = False) -> None:
        data = cbor2.dumps({"time": time.time(), **fields})
        if self._fd < 0:
            if hold:  # a deferred writer's start or end: kept until output or close()
                self._pending += data
                return
            self._open()
        if self._pending:
            data, self._pending = self._pending + data, b""
        # O_APPEND + one write per record: a concurrent reader never sees half of it.
        self._append(data)

    def write(self, stream: str, data: bytes) -> None:
        for i in range(0, len(data), MAX_RECORD_BYTES):
            self.record({"stream": stream, "bytes": bytes(data[i : i + MAX_RECORD_BYTES])})

    def start(self, execution_id: str) -> None:
        self.record({"stream": "start", "executionId": execution_id}, hold=True)

    def end(self, status: str) -> None:
        self.record({"stream": "end", "status": status}, hold=True)

    def make(self) -> None:
        """Make a deferred writer's file now, with what it holds (OSError on a full disk)."""
        if self._fd < 0:
            self._open()
        if self._pending:
            pending, self._pending = self._pending, b""
            self._append(pending)

    def _append(self, data: bytes) -> None:
        n = os.write(self._fd, data)
        if n != len(data):  # only a full disk does this; leave a torn tail rather than lie
            raise OSError(f"short write to {self.path}")

    def close(self) -> None:
        """Write what a deferred writer holds (OSError on a full disk), and close."""
        try:
            if self._pending:
                self.make()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def open_log(repo: "Repository", task_id: str, execution_id: str | None = None, *, deferred: bool = False) -> LogWriter:
    """A writer on the task's log; with `execution_id`, a new execution's "start" record first.
    `deferred`: no file until something is printed or the writer is closed (see LogWriter)."""
    writer = LogWriter(repo.fspath("logs", check_hash(task_id) + SUFFIX), deferred)
    if execution_id is not None:
        writer.start(execution_id)
    return writer


class Tee:
    """A log that also copies task output to a binary stream (e3 run shows it live)."""

    def __init__(self, log: LogWriter | None, out):
        self.log, self.out = log, out

    def write(self, stream: str, data: bytes) -> None:
        if self.log is not None:
            self.log.write(stream, data)
        try:
            self.out.write(data)
            self.out.flush()
        except (OSError, ValueError):
            pass


# ---------------------------------------------------------------- reading


def _decode_from(data: bytes | memoryview, offset: int = 0) -> tuple[list[dict], int]:
    """Every complete record in `data[offset:]`, and the offset just past the last one."""
    found = _decode_with_ends(data, offset)
    return [rec for rec, _ in found], found[-1][1] if found else offset


def _decode_with_ends(data: bytes | memoryview, offset: int = 0) -> list[tuple[dict, int]]:
    """Every complete record in `data[offset:]`, each with the offset just past it."""
    buf = io.BytesIO(data)
    buf.seek(offset)
    decoder = cbor2.CBORDecoder(buf)
    out = []
    end = offset
    size = len(data)
    while end < size:
        try:
            rec = decoder.decode()
        except Exception:  # truncated (torn tail) or garbage: stop at the last good record
            break
        if not isinstance(rec, dict):
            break
        end = buf.tell()
        out.append((rec, end))
    return out


def _cut_torn_tail(fd: int, path: str) -> None:
    """Drop bytes after the last complete record, so the next record starts on a boundary."""
    with open(path, "rb") as f:
        data = f.read()
    _, end = _decode_from(data)
    if end < len(data):
        os.ftruncate(fd, end)


def read_records(path: str | os.PathLike[str]) -> list[dict]:
    """Every complete record of a log; a torn tail is ignored."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ExecutionNotFound(f"no log at {path}") from None
    return _decode_from(data)[0]


def last_execution(records: list[dict]) -> list[dict]:
    """The records of the newest execution: from its "start" (or the beginning) on."""
    for i in range(len(records) - 1, -1, -1):
        if records[i].get("stream") == "start":
            return records[i:]
    return records


@dataclass(frozen=True)
class ReadFrom:
    records: list[tuple[dict, int]]
    """Each record with the offset just past it."""
    offset: int
    """Where to read on from."""
    complete: bool
    """The last record read ends an execution."""


def read_from(path: str | os.PathLike[str], offset: int | None = None, *, all_executions: bool = False) -> ReadFrom:
    """The complete records of a log from `offset` (a record boundary a reader was given), else from
    the newest execution's start (every execution's with `all_executions`)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ExecutionNotFound(f"no log at {path}") from None
    found = _decode_with_ends(data, offset or 0)
    if offset is None and not all_executions:
        found = _from_last_start(found)
    start = offset or 0
    end = found[-1][1] if found else start
    return ReadFrom(found, end, bool(found) and found[-1][0].get("stream") == "end")


def _from_last_start(found: list[tuple[dict, int]]) -> list[tuple[dict, int]]:
    for i in range(len(found) - 1, -1, -1):
        if found[i][0].get("stream") == "start":
            return found[i:]
    return found


def follow(
    path: str | os.PathLike[str],
    *,
    all_executions: bool = False,
    wait_for_file: bool = True,
    poll: float = POLL_SECONDS,
    stop=None,
) -> Iterator[dict]:
    """Yield records as they are written, until the newest execution's "end" record.

    Starts with the newest execution (or every one with `all_executions`); waits
    for the file to appear if `wait_for_file`. `stop()` returning true ends it early.
    """
    for rec, _ in follow_from(path, all_executions=all_executions, wait_for_file=wait_for_file, poll=poll, stop=stop):
        yield rec


def follow_from(
    path: str | os.PathLike[str],
    offset: int | None = None,
    *,
    all_executions: bool = False,
    wait_for_file: bool = True,
    poll: float = POLL_SECONDS,
    stop=None,
) -> Iterator[tuple[dict, int]]:
    """`follow`, from `offset` if given, yielding each record with the offset just past it."""
    path = Path(path)
    while True:
        try:
            f = open(path, "rb")
            break
        except FileNotFoundError:
            if not wait_for_file:
                raise ExecutionNotFound(f"no log at {path}") from None
            if stop is not None and stop():
                return
            time.sleep(poll)
    with f:
        base = offset or 0
        if base:
            f.seek(base)
        data = f.read()
        found = [(rec, base + end) for rec, end in _decode_with_ends(data)]
        read = found[-1][1] - base if found else 0
        pending = data[read:]
        base += read
        if offset is None and not all_executions:
            found = _from_last_start(found)
        for item in found:
            yield item
        if found and found[-1][0].get("stream") == "end":
            return
        while True:
            chunk = f.read()
            if not chunk:
                if stop is not None and stop():
                    return
                time.sleep(poll)
                continue
            pending += chunk
            new = _decode_with_ends(pending)
            used = new[-1][1] if new else 0
            pending = pending[used:]
            for rec, end in new:
                yield rec, base + end
                if rec.get("stream") == "end":
                    return
            base += used
