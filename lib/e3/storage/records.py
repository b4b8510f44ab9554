"""Execution records: what happened to one task_id, newest first.

A record is an ExecutionStatus value (running / success / failed / error, see
e3.model.types) in Beast2. `tasks/<TASK_ID>` holds the newest record for that id,
replaced atomically: a line "<record hash> <kind> [<output hash>]" (the hash is
the SHA-256 of the record's bytes) and then the record's bytes themselves, so an
execution creates its output and this one file. A pointer written before records
were embedded is the line alone, its record an object in the store; `store`
keeps a record as an object for anything else that names it by hash (a
task-history commit), and `e3.recordObjects` in the repository's config stores
every record as an object as well (a history of every outcome). A `running`
record carries the holder's pid, process start time and boot id so a dead
holder is recognised.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from e3.errors import CorruptObject, FormatError
from e3.storage import record_bytes
from e3.storage.files import link_new_file, unlink_if_present, write_exactly

if TYPE_CHECKING:
    from e3.storage.repository import Repository

KINDS = ("running", "success", "failed", "error")


@dataclass(frozen=True)
class Record:
    kind: str
    execution_id: str
    input_hashes: tuple[str, ...]
    started_at: datetime
    completed_at: datetime | None = None
    output_hash: str | None = None
    exit_code: int | None = None
    message: str | None = None
    pid: int | None = None
    pid_start_time: int | None = None
    boot_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_east(self):
        from e3.east import value_struct as struct, value_variant as variant

        common = {"executionId": self.execution_id, "inputHashes": list(self.input_hashes), "startedAt": self.started_at}
        if self.kind == "running":
            body = {**common, "pid": self.pid, "pidStartTime": self.pid_start_time, "bootId": self.boot_id}
        elif self.kind == "success":
            body = {**common, "outputHash": self.output_hash, "completedAt": self.completed_at}
        elif self.kind == "failed":
            body = {**common, "exitCode": self.exit_code, "completedAt": self.completed_at}
        else:
            body = {**common, "message": self.message or "", "completedAt": self.completed_at}
        return variant(self.kind, struct(body))

    @classmethod
    def from_east(cls, value) -> "Record":
        v = value.value
        get = lambda k: v[k] if k in v.keys() else None  # noqa: E731
        return cls(
            kind=value.type,
            execution_id=str(v["executionId"]),
            input_hashes=tuple(str(h) for h in v["inputHashes"]),
            started_at=v["startedAt"],
            completed_at=get("completedAt"),
            output_hash=get("outputHash"),
            exit_code=get("exitCode"),
            message=get("message"),
            pid=get("pid"),
            pid_start_time=get("pidStartTime"),
            boot_id=get("bootId"),
        )


def now() -> datetime:
    return datetime.now(timezone.utc)


def terminal(execution_id: str, input_hashes, outcome, started_at: datetime) -> Record:
    """The record that ends an execution with `outcome` (an e3.exec.invocation.Outcome): success,
    failed with its exit code, or error with its message (a cancelled run is an error saying so)."""
    done = now()
    inputs = tuple(input_hashes)
    if outcome.status == "success":
        return Record("success", execution_id, inputs, started_at, done, output_hash=outcome.output_hash)
    if outcome.status == "failed":
        code = outcome.exit_code if outcome.exit_code is not None else 1
        return Record("failed", execution_id, inputs, started_at, done, exit_code=code)
    return Record("error", execution_id, inputs, started_at, done, message=outcome.message or outcome.status)


def pointer_path(repo: "Repository", task_id: str) -> str:
    return repo.fspath("tasks", task_id)


_encoder = None
"""The record type's Beast2 encoder, made at the first record (a worker writes one per task)."""


def encode_record(record: Record) -> bytes:
    """The record's Beast2 bytes, as the East runtime encodes them (e3.storage.record_bytes)."""
    return record_bytes.encode(record, _runtime_encode)


def _runtime_encode(record: Record) -> bytes:
    global _encoder
    if _encoder is None:
        from e3.east import encoder_for
        from e3.model.types import ExecutionStatusType

        _encoder = encoder_for(ExecutionStatusType)
    return _encoder(record.to_east())


def store(repo: "Repository", record: Record, durable: bool = True) -> str:
    """Store `record` as an object (for a name other than its pointer, such as a task-history
    commit's `execution` leaf); return its hash."""
    return repo.objects.write(encode_record(record), durable=durable)


_keeps_objects: dict[str, bool] = {}
"""Repository root -> its `e3.recordObjects`, read once per process (`write` asks per record)."""


def keeps_objects(repo: "Repository") -> bool:
    """Whether `write` also stores each record as an object (`e3.recordObjects` set true)."""
    root = repo.fspath()
    keep = _keeps_objects.get(root)
    if keep is None:
        value = repo.config("e3.recordObjects")
        word = "false" if value is None else value.strip().lower()
        if word not in _BOOLEAN:
            raise FormatError(f"bad boolean config value {value!r} for e3.recordObjects in {repo.fspath('config')}")
        keep = _keeps_objects[root] = _BOOLEAN[word]
    return keep


_BOOLEAN = {"true": True, "yes": True, "on": True, "1": True, "": True, "false": False, "no": False, "off": False, "0": False}
"""git's booleans (a name with no `=` is true)."""


def write(repo: "Repository", task_id: str, record: Record, durable: bool = True, before_replace: Callable[[], None] | None = None) -> str:
    """Make `record` the newest for `task_id`; return its hash. `before_replace()` is called when
    `task_id` has a record already, before `record` replaces it (and where the file system makes
    no unnamed files, whether or not it has one)."""
    data = encode_record(record)
    record_hash = hashlib.sha256(data).hexdigest()
    if keeps_objects(repo):
        repo.objects.write(data, durable=durable)
    path = pointer_path(repo, task_id)
    # The line also names the kind and output, so a no-op run can check the
    # memo without decoding the record (and without importing the East runtime).
    summary = " ".join([record_hash, record.kind] + ([record.output_hash] if record.output_hash else []))
    content = f"{summary}\n".encode() + data
    if link_new_file(repo.fspath("tasks"), path, content, durable, 0o666):
        return record_hash  # the task_id's first record
    if before_replace is not None:
        before_replace()
    tmp = f"{path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            write_exactly(fd, content)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        unlink_if_present(tmp)
        raise
    return record_hash


@dataclass(frozen=True)
class Summary:
    record_hash: str
    kind: str
    output_hash: str | None
    task_id: str = field(default="", compare=False, repr=False)
    embedded: bytes | None = field(default=None, compare=False, repr=False)
    """The record's bytes as the pointer held them (unverified; `read` checks them), or None
    for a pointer written before records were embedded."""


READ = 4096
"""Bytes `summary` asks for at once: a whole pointer but for a record with a very long message."""


def summary(repo: "Repository", task_id: str) -> Summary | None:
    """The newest record's hash, kind and output, read from the pointer's first line (the record's
    bytes that follow are kept for `read`, not decoded)."""
    # Plain descriptor calls: a no-op run reads one pointer per task, and a text-mode file
    # object cost as much again as the read itself.
    try:
        fd = os.open(pointer_path(repo, task_id), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        data = os.read(fd, READ)
        if len(data) == READ:  # a long record: the rest, in the same open (the pointer may be replaced meanwhile)
            while more := os.read(fd, 1 << 16):
                data += more
    finally:
        os.close(fd)
    end = data.find(b"\n")
    if end < 0:
        return None  # torn (no whole line) or foreign: treat as no record
    try:
        fields = data[:end].decode("ascii").split()
    except UnicodeDecodeError:
        return None
    if len(fields) < 2 or fields[1] not in KINDS:
        return None  # torn or foreign: treat as no record
    embedded = data[end + 1 :] if len(data) > end + 1 else None
    return Summary(fields[0], fields[1], fields[2] if len(fields) > 2 else None, task_id, embedded)


def reusable_output(repo: "Repository", s: Summary | None) -> str | None:
    """The memo, decided here for every caller: the output hash of the success `s` records, if
    its object is stored with its bytes; else None, and the execution runs (again).

    Outputs and records are written without fsync and made durable per batch, so a power loss
    can keep an output's name and lose its bytes: one stat here keeps such an output from being
    reused (or written into a workspace) as if it were whole. Whether to ask at all (`--force`)
    is the caller's; whether a workspace already holds the output is e3.exec.ready's question."""
    if s is None or s.kind != "success" or not s.output_hash:
        return None
    return s.output_hash if repo.objects.nonempty(s.output_hash) else None


def load(repo: "Repository", record_hash: str) -> Record:
    """The record stored as object `record_hash` (a task-history commit's, or one named by a
    pointer written before records were embedded)."""
    return _decoded(repo.objects.read(record_hash), f"object {record_hash}")


def _decoded(data: bytes, what: str) -> Record:
    from e3.east import decode, type_equal
    from e3.model.types import ExecutionStatusType

    t, value = decode(data)
    if not type_equal(t, ExecutionStatusType):
        raise FormatError(f"{what} is not an execution record")
    return Record.from_east(value)


def read(repo: "Repository", s: Summary) -> Record:
    """The record `s` names: the bytes its pointer embeds, once they hash to its hash and agree
    with its line (else CorruptObject, one line naming the pointer); from the object store for
    a pointer written before records were embedded."""
    if s.embedded is None:
        return load(repo, s.record_hash)
    where = f"tasks/{s.task_id}"
    problem = embedded_problem(s.record_hash, s.embedded)
    if problem is not None:
        raise CorruptObject(f"{where}: {problem}")
    try:
        rec = _decoded(s.embedded, f"the record in {where}")
    except FormatError as e:
        raise CorruptObject(f"{where}: its execution record does not decode ({e})") from None
    if rec.kind != s.kind or rec.output_hash != s.output_hash:
        raise CorruptObject(f"{where}: its line does not match its execution record (a {rec.kind})")
    return rec


def embedded_problem(record_hash: str, data: bytes) -> str | None:
    """Why a pointer's embedded record bytes are not the record its line names, or None."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != record_hash:
        return f"its execution record is damaged (its bytes hash to {actual}, not {record_hash})"
    return None


def latest(repo: "Repository", task_id: str) -> Record | None:
    s = summary(repo, task_id)
    return None if s is None else read(repo, s)
