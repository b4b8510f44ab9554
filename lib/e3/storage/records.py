"""Execution records: what happened to one task_id, newest first.

A record is an ExecutionStatus value (running / success / failed / error, see
e3.model.types) stored as an object; `tasks/<TASK_ID>` holds the hash of the
newest record for that id, replaced atomically. A `running` record carries the
holder's pid, process start time and boot id so a dead holder is recognised.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from e3.errors import FormatError
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


def write(repo: "Repository", task_id: str, record: Record, durable: bool = True) -> str:
    """Store `record` and make it the newest for `task_id`; return its hash."""
    from e3.east import encode
    from e3.model.types import ExecutionStatusType

    record_hash = repo.objects.write(encode(record.to_east(), ExecutionStatusType), durable=durable)
    path = pointer_path(repo, task_id)
    # The pointer also names the kind and output, so a no-op run can check the
    # memo without decoding the record (and without importing the East runtime).
    summary = " ".join([record_hash, record.kind] + ([record.output_hash] if record.output_hash else []))
    line = f"{summary}\n".encode()
    if link_new_file(repo.fspath("tasks"), path, line, durable, 0o666):
        return record_hash  # the task_id's first record
    tmp = f"{path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            write_exactly(fd, line)
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


def summary(repo: "Repository", task_id: str) -> Summary | None:
    """The newest record's hash, kind and output, read from the pointer alone."""
    # Plain descriptor calls: a no-op run reads one pointer per task, and a text-mode file
    # object cost as much again as the read itself.
    try:
        fd = os.open(pointer_path(repo, task_id), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        data = os.read(fd, 512)
    finally:
        os.close(fd)
    try:
        fields = data.decode("ascii").split()
    except UnicodeDecodeError:
        return None
    if len(fields) < 2 or fields[1] not in KINDS:
        return None  # torn or foreign: treat as no record (the object store still has it)
    return Summary(fields[0], fields[1], fields[2] if len(fields) > 2 else None)


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


def latest_hash(repo: "Repository", task_id: str) -> str | None:
    s = summary(repo, task_id)
    return None if s is None else s.record_hash


def load(repo: "Repository", record_hash: str) -> Record:
    from e3.east import decode, type_equal
    from e3.model.types import ExecutionStatusType

    try:
        t, value = decode(repo.objects.read(record_hash))
    except FormatError:
        raise
    if not type_equal(t, ExecutionStatusType):
        raise FormatError(f"object {record_hash} is not an execution record")
    return Record.from_east(value)


def latest(repo: "Repository", task_id: str) -> Record | None:
    h = latest_hash(repo, task_id)
    return None if h is None else load(repo, h)
