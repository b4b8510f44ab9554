"""Execution logs: `logs/<TASK_ID>.eastl`, an append-only CBOR sequence per task_id.

Each record is a CBOR map: `{"time": epoch seconds, "stream": "stdout"|"stderr",
"bytes": b"..."}`; an execution opens with `{"time", "stream": "start",
"executionId"}` and closes with `{"time", "stream": "end", "status"}`. A writer
appends each record with one `write()` on an O_APPEND descriptor, so a reader
sees whole records or nothing of them; a crash mid-record leaves a torn tail,
which readers ignore and the next writer cuts off before appending. Plain
files and polling keep it simple: a follower sees a record within ~20 ms.

A task that printed nothing, run by a writer whose caller then records the
execution (`open_log(..., recorded=True)`, e3's warm pool workers), leaves no
file when its task_id has no log and no recorded execution yet: making one cost
a new inode per task for two records its execution record already says. Readers
give such a log as the "start" and "end" records of the task_id's newest
recorded execution (`recorded_bounds`), byte for byte what the writer would have
appended but for their times (the record's start and completion). So at most
that one execution has no records in a file: a writer that makes a task_id's log
later (the next execution) first writes that execution's records, and a silent
execution of a task_id already recorded makes the file.
"""
from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

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
        if must_exist and not exists(path):
            raise ExecutionNotFound(f"no log for task_id {name}")
        return path
    if not PREFIX_RE.fullmatch(name):
        raise InvalidHash(f"invalid task_id {name!r} (expected at least 4 lower-case hex digits)")
    found = set()
    try:
        found.update(n[: -len(SUFFIX)] for n in os.listdir(repo.path("logs")) if n.startswith(name) and n.endswith(SUFFIX))
    except FileNotFoundError:
        pass
    try:  # the logs a silent execution left as its record alone (see the module docstring)
        found.update(n for n in os.listdir(repo.path("tasks")) if n.startswith(name) and HASH_RE.fullmatch(n) and exists(log_path(repo, n)))
    except FileNotFoundError:
        pass
    if not found:
        raise ExecutionNotFound(f"no log for task_id {name}")
    if len(found) > 1:
        raise AmbiguousObject(f"task_id prefix {name} is ambiguous ({len(found)} logs match)")
    return log_path(repo, found.pop())


def _task_of(path: "str | os.PathLike[str]") -> tuple[str, str] | None:
    """The repository root and task_id of a log's path (`<root>/logs/<TASK_ID>.eastl`)."""
    path = os.fspath(path)
    name = os.path.basename(path)
    if not name.endswith(SUFFIX):
        return None
    return os.path.dirname(os.path.dirname(path)), name[: -len(SUFFIX)]


def _ended_summary(path: "str | os.PathLike[str]"):
    """(repository, summary) of the newest execution record of the log's task_id, if it ended; else None."""
    from e3.storage import records
    from e3.storage.repository import Repository

    found = _task_of(path)
    if found is None:
        return None
    repo = Repository(found[0])
    s = records.summary(repo, found[1])
    return (repo, s) if s is not None and s.kind in END_STATUSES else None


def _newest_record(path: "str | os.PathLike[str]"):
    """The newest terminal execution record of the log's task_id, or None."""
    from e3.errors import E3Error
    from e3.storage import records

    try:
        found = _ended_summary(path)
        if found is None:
            return None
        repo, s = found
        rec = records.read(repo, s)
    except (E3Error, OSError, ValueError):
        return None  # a pointer fsck would report: no log to give
    return rec if rec.kind in END_STATUSES and rec.completed_at is not None else None


def bounds(execution_id: str, started: float, status: str, ended: float) -> bytes:
    """An execution's "start" and "end" records, as a writer appends them."""
    return cbor2.dumps({"time": started, "stream": "start", "executionId": execution_id}) + cbor2.dumps(
        {"time": ended, "stream": "end", "status": status}
    )


def recorded_bounds(path: "str | os.PathLike[str]") -> bytes:
    """The log a silent execution left as its record alone: the "start" and "end" records of the
    newest recorded execution of the log's task_id; b"" if it has none (see the module docstring).
    Meaningful where the log file is missing."""
    rec = _newest_record(path)
    if rec is None:
        return b""
    return bounds(rec.execution_id, rec.started_at.timestamp(), rec.kind, rec.completed_at.timestamp())


def exists(path: "str | os.PathLike[str]") -> bool:
    """The log has records to read: its file, or a recorded execution that left none."""
    return os.path.exists(path) or _ended_summary(path) is not None


def _read_whole(path: "str | os.PathLike[str]") -> bytes:
    """A log's bytes: its file's, else a silent execution's records (ExecutionNotFound if neither)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        data = recorded_bounds(path)
        if not data:
            raise ExecutionNotFound(f"no log at {path}") from None
        return data


class LogWriter:
    """Appends records to one log; `write(stream, data)` is what the runner calls.

    A `deferred` writer makes no file until something is printed: the opening
    "start" record waits for the first output, and a task that prints nothing has
    its start and end written at `close()`, in one write. Creating the file is
    then off the path from a task's start to its answer (e3.exec.pool_worker
    answers first, then closes the log). One given the task_id's record `pointer`
    (its caller records the execution after `close()`, see `open_log`) may make
    none at all.
    """

    def __init__(self, path: str | os.PathLike[str], deferred: bool = False, pointer: str | None = None):
        self.path = os.fspath(path)
        self._fd = -1
        self._held: list[dict] = []
        """A deferred writer's start and end records, encoded only if they are written."""
        self._pointer = pointer
        self._printed = False
        self._ended: str | None = None
        if not deferred:
            self._open()

    def _open(self, create: bool = True) -> bool:
        """Open the log to append; False if `create` is false and there is no file yet."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        try:
            self._fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o644) if create else os.open(self.path, flags)
            made = create
        except FileExistsError:
            self._fd = os.open(self.path, flags)
            made = False
        except FileNotFoundError:
            if not create:
                return False
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            return self._open()
        if not made:
            if os.fstat(self._fd).st_size:
                _cut_torn_tail(self._fd, self.path)
            return True
        # A new file: the task_id's newest recorded execution may be one that printed nothing
        # and so left no file (see the module docstring); its records come first, as they would have.
        previous = recorded_bounds(self.path)
        if previous:
            self._append(previous)
        return True

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def record(self, fields: dict, *, hold: bool = False) -> None:
        rec = {"time": time.time(), **fields}
        if self._fd < 0:
            if hold:  # a deferred writer's start or end: kept until output or close()
                self._held.append(rec)
                return
            self._open()
        data = cbor2.dumps(rec)
        if self._held:
            data = self._take_held() + data
        # O_APPEND + one write per record: a concurrent reader never sees half of it.
        self._append(data)

    def _take_held(self) -> bytes:
        held, self._held = self._held, []
        return b"".join(cbor2.dumps(rec) for rec in held)

    def write(self, stream: str, data: bytes) -> None:
        self._printed = True
        for i in range(0, len(data), MAX_RECORD_BYTES):
            self.record({"stream": stream, "bytes": bytes(data[i : i + MAX_RECORD_BYTES])})

    def start(self, execution_id: str) -> None:
        self.record({"stream": "start", "executionId": execution_id}, hold=True)

    def end(self, status: str) -> None:
        self._ended = status
        self.record({"stream": "end", "status": status}, hold=True)

    def make(self) -> None:
        """Make a deferred writer's file now, with what it holds (OSError on a full disk)."""
        if self._fd < 0:
            self._open()
        if self._held:
            self._append(self._take_held())

    def _silent(self) -> bool:
        """A deferred execution, recorded by its caller, that printed nothing and ended: its
        record will say all its log would."""
        return self._pointer is not None and not self._printed and self._fd < 0 and self._ended in ("success", "failed", "error")

    def _leaves_no_file(self) -> bool:
        """A silent execution drops its start and end when its task_id has no log and no recorded
        execution yet (see the module docstring). Safe before the record is written: until then a
        reader sees no execution, as it sees none before a log's records are appended; a kill in
        between runs the task again."""
        if not self._silent():
            return False
        if self._open(create=False):
            return False  # the file exists: append to it
        if os.path.exists(self._pointer):
            return False  # an execution is recorded: its records and this one's go in a file
        self._held = []
        return True

    def close_before_record(self) -> "Callable[[], None] | None":
        """`close`, for a caller that writes the execution's record next with e3.storage.records.write.

        A silent execution whose task_id has no log file yet does not look for a recorded
        execution here: its start and end wait, and the function returned makes the file with
        them (OSError on a full disk). The caller gives it to `records.write` as
        `before_replace`, called only when the task_id has a record already, before the new one
        replaces it: whether there is one is then answered by the pointer's own creation, which
        fails if it exists. If the record is not written the caller makes the file itself.
        None when nothing waits."""
        if self._held and self._silent() and not self._open(create=False):
            return self._make_and_close
        self.close()
        return None

    def _make_and_close(self) -> None:
        try:
            self.make()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _append(self, data: bytes) -> None:
        n = os.write(self._fd, data)
        if n != len(data):  # only a full disk does this; leave a torn tail rather than lie
            raise OSError(f"short write to {self.path}")

    def close(self) -> None:
        """Write what a deferred writer holds (OSError on a full disk), and close."""
        try:
            if self._held and not self._leaves_no_file():
                self.make()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def open_log(
    repo: "Repository", task_id: str, execution_id: str | None = None, *, deferred: bool = False, recorded: bool = False
) -> LogWriter:
    """A writer on the task's log; with `execution_id`, a new execution's "start" record first.
    `deferred`: no file until something is printed or the writer is closed (see LogWriter).
    `recorded`: the caller writes this execution's terminal record (under `execution_id`, its
    kind the status given to `end`) once the writer is closed, or runs the task again if it
    cannot; a deferred writer then may leave no file (see the module docstring)."""
    check_hash(task_id)
    writer = LogWriter(repo.fspath("logs", task_id + SUFFIX), deferred, repo.fspath("tasks", task_id) if recorded else None)
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
    return _decode_from(_read_whole(path))[0]


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
    data = _read_whole(path)
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
            silent = recorded_bounds(path)
            if silent:  # an execution that printed nothing, and ended: its records are all there is
                f = io.BytesIO(silent)
                break
            if not wait_for_file:
                raise ExecutionNotFound(f"no log at {path}") from None
            if stop is not None and stop():
                return
            time.sleep(poll)
    try:
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
                if isinstance(f, io.BytesIO):  # read on, past a silent execution, in the file made later
                    try:
                        real = open(path, "rb")
                    except FileNotFoundError:
                        continue
                    real.seek(f.tell())  # the file begins with the same records (see LogWriter._open)
                    f.close()
                    f = real
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
    finally:
        f.close()
