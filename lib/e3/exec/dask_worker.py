"""What runs on a Dask worker for `e3 start --executor dask://…`: one execution, bytes in, bytes out.

The coordinator (`e3 start`, e3.exec.dask_executor) sends `run(spec, values)`:
`spec` names the task and its objects by hash; `values` are those objects'
bytes, which Dask moves to this worker only if it does not hold them already
(objects are scattered to the cluster once, and an upstream task's result stays
on the worker that computed it). Nothing here reads the coordinator's
repository: the worker needs no shared filesystem, only e3 and the East
runtime installed.

The execution itself is e3.exec.invocation's, the same code the local warm pool
runs: East functions evaluated in this process (its caches of
compiled functions, keyed by hash, live as long as the worker process, so the
runtime stays warm across tasks), anything else spawned in its own process
group in a scratch directory under the worker's local directory (killed if the
worker closes while it runs: see `Warm`). The invocation
reads and writes objects through `Objects`, this execution's objects in memory,
instead of a repository's store.

The task's output reaches the coordinator's log while it runs: each chunk of
stdout/stderr is a Dask event on `TOPIC`, which the coordinator subscribes to.
`run` returns the outcome and the output's bytes; the coordinator stores them,
records the execution and commits it, exactly as for the local pool.
"""
from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Sequence

from e3.errors import CorruptObject, ObjectNotFound
from e3.storage.objects import hash_bytes

TOPIC = "e3-log"
"""The Dask event topic of task output (one topic, so a long-lived scheduler keeps one bounded list)."""
PLATFORMS = ("east-py-std",)
"""Platform packages a worker imports before its first task (as the local pool's workers do)."""
ANSWER_INLINE = 8 << 10
"""Outputs up to this size also travel with the task's events (the scheduler keeps the last events of a topic)."""
VERIFIED_KEPT = 4096
"""Objects whose bytes this worker process has checked against their hash (large ones are checked once)."""

_spawned: dict[str, int] = {}
"""execution id -> process group of the task it spawned, while it runs (see `cancel`)."""
_verified: dict[str, int] = {}
"""object hash -> id() of the bytes checked; Dask hands the same bytes object to every task that uses it."""
_counter = itertools.count()
_lock = threading.Lock()


# ---------------------------------------------------------------- the invocation's view of this worker


class Objects:
    """One execution's objects, in memory: the part of e3.storage.objects.ObjectStore that e3.exec.invocation uses."""

    def __init__(self, objects: dict[str, bytes], where: str):
        self._objects = objects
        self._where = where

    def read(self, obj: str) -> bytes:
        try:
            return self._objects[obj]
        except KeyError:
            raise ObjectNotFound(f"object {obj} was not sent to {self._where}") from None

    def exists(self, obj: str) -> bool:
        return obj in self._objects

    def nonempty(self, obj: str) -> bool:
        return bool(self._objects.get(obj))

    def write(self, data: bytes | memoryview, durable: bool = True) -> str:
        obj = hash_bytes(data)
        self._objects[obj] = bytes(data)
        return obj

    def write_stream(self, source: BinaryIO, expect: str | None = None, check=None, durable: bool = True) -> str:
        return self.write(source.read())

    def copy(self, obj: str, path: str | os.PathLike[str]) -> None:
        """Write the object's bytes to a new file (a spawned task's input)."""
        data = self.read(obj)
        with open(path, "xb") as f:
            f.write(data)


class _Repository:
    """What e3.exec.invocation.execute needs of a repository: its objects and a root for scratch directories."""

    def __init__(self, root: Path, objects: Objects):
        self.root = root
        self.objects = objects


class _EventLog:
    """A task's log as Dask events: what the invocation writes reaches the coordinator's log file."""

    def __init__(self, worker: Any, spec: dict):
        from e3.storage.logs import MAX_RECORD_BYTES

        self.worker = worker
        self.head = {"run": spec["run"], "e": spec["execution_id"], "a": spec.get("attempt"), "w": worker.address}
        self.output = bool(spec.get("log", True))
        self.limit = MAX_RECORD_BYTES

    def write(self, stream: str, data: bytes) -> None:
        if not self.output:
            return
        for i in range(0, len(data), self.limit):
            self.worker.log_event(TOPIC, {**self.head, "s": stream, "b": bytes(data[i : i + self.limit])})

    def due(self) -> None:
        """The task's timeout has passed while it runs in this process."""
        self.worker.log_event(TOPIC, {**self.head, "due": True})

    def answer(self, answer: dict) -> None:
        """Send a small answer with the events: it reaches the coordinator with the task's completion,
        which then need not fetch the result (one round trip per batch of tasks saved)."""
        data = answer.get("data")
        if data is None or len(data) <= ANSWER_INLINE:
            self.worker.log_event(TOPIC, {**self.head, "answer": answer})


# ---------------------------------------------------------------- the task Dask runs


def run(spec: dict, values: Sequence[Any]) -> dict:
    """Run one execution; return its outcome and output bytes (never raises for the task's faults).

    `spec`: run (the coordinator's run id), execution_id, task_hash,
    command_ir, inputs (hashes, in order), objects (hashes of `values`, in
    order), timeout, force_spawn, log (send output as events).
    """
    worker = _worker()
    where = f"dask worker {worker.address}" if worker is not None else f"process {os.getpid()}"
    log = _EventLog(worker, spec) if worker is not None else None
    missing = _runtime_missing()
    if missing is not None:
        return _failed(log, f"{where} cannot run e3 tasks: {missing}", worker)
    from e3.exec import invocation

    try:
        objects = dict(_checked(spec["objects"], values, where))
    except CorruptObject as e:
        return _answer("error", message=str(e), worker=worker, lost=True)
    root = _root(worker) / f"x-{os.getpid()}-{next(_counter)}"
    store = Objects(objects, where)
    eid = spec["execution_id"]
    timeout = spec.get("timeout")
    # A spawned task's timeout is the invocation's (it kills the process group). A run in this process
    # cannot be stopped: the coordinator is told when it is due (and fails it then), if East lets
    # this process's other threads run meanwhile; either way a run that took longer fails.
    timer = threading.Timer(timeout, log.due) if timeout and log is not None else None
    was_spawned = []

    def spawned(pgid: int) -> None:
        was_spawned.append(pgid)
        if timer is not None:
            timer.cancel()
        with _lock:
            _spawned[eid] = pgid

    if timer is not None:
        timer.daemon = True
        timer.start()
    began = time.monotonic()
    try:
        outcome = invocation.execute(
            _Repository(root, store),
            spec["task_hash"],
            list(spec["inputs"]),
            force_spawn=bool(spec.get("force_spawn")),
            timeout=timeout,
            log=log,
            on_spawn=spawned,
            durable=False,
            command_ir=spec["command_ir"],
        )
    except Exception as e:  # a bug of ours: this execution fails, the worker stays
        return _failed(log, f"internal error on {where}: {type(e).__name__}: {e}", worker)
    finally:
        if timer is not None:
            timer.cancel()
        with _lock:
            _spawned.pop(eid, None)
        shutil.rmtree(root, ignore_errors=True)
    if timeout and not was_spawned and outcome.status != "error" and time.monotonic() - began > timeout:
        return _failed(log, f"timed out after {timeout:g}s", worker)
    data = objects.get(outcome.output_hash) if outcome.status == "success" and outcome.output_hash else None
    answer = _answer(outcome.status, outcome.output_hash, outcome.exit_code, outcome.message, data, worker)
    if log is not None:
        log.answer(answer)
    return answer


def _failed(log: "_EventLog | None", message: str, worker) -> dict:
    answer = _answer("error", message=message, worker=worker)
    if log is not None:
        log.write("stderr", f"e3: {message}\n".encode())
        log.answer(answer)
    return answer


def _answer(status, output_hash=None, exit_code=None, message=None, data=None, worker=None, lost=False) -> dict:
    return {
        "status": status,
        "output": output_hash,
        "exit_code": exit_code,
        "message": message,
        "data": data,
        "worker": None if worker is None else worker.address,
        "lost": lost,
    }


def _checked(hashes: Sequence[str], values: Sequence[Any], where: str):
    """(hash, bytes) for each object sent, its bytes checked against its name (once per bytes object)."""
    for obj, value in zip(hashes, values, strict=True):
        if isinstance(value, dict):  # an upstream task's result, kept on the cluster
            value = value["data"]
        if value is None:
            raise CorruptObject(f"object {obj} arrived empty at {where}")
        if _verified.get(obj) != id(value):
            if hash_bytes(value) != obj:
                raise CorruptObject(f"object {obj} arrived at {where} with other bytes")
            with _lock:
                if len(_verified) >= VERIFIED_KEPT:
                    del _verified[next(iter(_verified))]
                _verified[obj] = id(value)
        yield obj, value


def _worker():
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _root(worker) -> Path:
    base = worker.local_directory if worker is not None else os.environ.get("TMPDIR", "/tmp")
    return Path(base) / "e3"


_missing: list[str | None] = []


def _runtime_missing() -> str | None:
    """Why this process cannot run East tasks (the runtime or a platform will not import), or None."""
    if not _missing:
        try:
            from e3.exec import invocation

            invocation.preload(PLATFORMS)
            _missing.append(None)
        except ImportError as e:
            _missing.append(f"no East runtime ({e})")
    return _missing[0]


# ---------------------------------------------------------------- called on every worker by the coordinator


def check() -> dict:
    """Load the East runtime now (a warm worker); report what this worker has, or raise why it cannot run tasks."""
    from importlib.metadata import PackageNotFoundError, version

    missing = _runtime_missing()
    if missing is not None:
        raise RuntimeError(missing)
    try:
        east = version("elaraai-east-py")
    except PackageNotFoundError:
        east = None
    return {"east": east, "pid": os.getpid()}


def cancel(execution_ids: Sequence[str]) -> int:
    """Kill the process groups of these executions' spawned tasks, if they run here; return how many."""
    from e3.exec.invocation import kill_group

    with _lock:
        groups = [_spawned[e] for e in execution_ids if e in _spawned]
    for g in groups:
        kill_group(g, grace=0.2)
    return len(groups)


try:
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # dask is an optional extra; the coordinator imports this module only with it
    _WorkerPlugin = object  # type: ignore[assignment,misc]


class Warm(_WorkerPlugin):
    """Registered by the coordinator: every worker, including one that joins later, loads East
    before its first task; and a worker that closes (stopped, or it lost its scheduler, which
    cancelled every task) kills the tasks it spawned, which would otherwise outlive it."""

    name = "e3-warm"
    idempotent = True

    def setup(self, worker) -> None:
        _runtime_missing()  # a worker that cannot is named by the task that reaches it (see `run`)

    def teardown(self, worker) -> None:
        with _lock:
            running = list(_spawned)
        cancel(running)
