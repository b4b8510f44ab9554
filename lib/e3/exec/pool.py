"""A pool of warm worker processes that run task executions in-process.

Spawning `east-py run` costs ~150-250 ms per task; a worker that already has
the East runtime and the platform packages loaded runs a small task in well
under a millisecond, round trip included. `WorkerPool(size)` keeps `size`
workers (e3.exec.worker_main), each driven by one thread of the owner over a
pair of pipes carrying length-prefixed CBOR frames.

`submit(TaskRequest)` returns a Future[Outcome]. A worker runs one execution
at a time: East tasks in-process, shell tasks spawned by the worker in their
own process group (the worker reports the group, so the pool can kill it), so
`size` bounds everything running at once. The worker writes the task's log
(`start` ... `end`). If a worker dies (segfault, `os._exit`) or does not answer
within the task's timeout, only that execution fails ('error', with a message
that says which), its log gets the message and an `end` record, and a fresh
worker takes the slot. `cancel(future)` stops a pending or running execution
('cancelled').
"""
from __future__ import annotations

import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Sequence

from e3.exec.runner import KILL_GRACE, Outcome, kill_group
from e3.exec.worker_main import HEADER, write_frame

DEFAULT_PLATFORMS = ("east-py-std",)
START_TIMEOUT = 60.0
"""Seconds a new worker may take to import East and its platforms before it counts as broken."""
SPAWN_MARGIN = KILL_GRACE + 2.0
"""Extra seconds given to a worker whose spawned task timed out: it kills the group and answers itself."""
RECORD_TIMEOUT = 60.0
"""Seconds a worker may take to write a record after answering before it counts as stuck."""


@dataclass(frozen=True)
class TaskRequest:
    repo: str
    """The repository root (the `.e3` directory)."""
    task_hash: str
    input_hashes: Sequence[str]
    task_id: str | None = None
    """Names the log; computed from task and inputs when None."""
    execution_id: str | None = None
    """Written in the log's "start" record; a fresh id when None."""
    timeout: float | None = None
    force_spawn: bool = False
    durable: bool = True
    log: bool = True
    """The worker appends the task's output to `logs/<TASK_ID>.eastl`."""
    log_start_end: bool = True
    """...and opens the execution with its "start" record and closes it with "end". False when the
    caller writes those itself (it records the execution around the run)."""
    command_ir: str | None = None
    """The task's command IR hash, when the caller has it (spares the worker decoding the task object)."""
    record_started: datetime | None = None
    """When set, the worker also writes the execution's terminal record (started then), after answering."""
    recorded: "Future[str | None] | None" = field(default=None, compare=False)
    """Resolved with the record's hash once the worker wrote it, or None if it did not (the caller writes it)."""

    def frame(self, rid: int) -> dict:
        return {
            "id": rid,
            "repo": str(self.repo),
            "task": self.task_hash,
            "inputs": list(self.input_hashes),
            "task_id": self.task_id,
            "execution_id": self.execution_id or uuid.uuid4().hex,
            "timeout": self.timeout,
            "force_spawn": self.force_spawn,
            "durable": self.durable,
            "log": self.log,
            "log_start_end": self.log_start_end,
            "command": self.command_ir,
            "record": None if self.record_started is None else self.record_started.timestamp(),
        }


class WorkerDied(Exception):
    pass


class _Worker:
    """One worker process and the owner's ends of its pipes."""

    def __init__(self, preload: Sequence[str], env: dict[str, str]):
        req_r, self.req_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "e3.exec.worker_main", str(req_r), str(resp_w), *preload],
                pass_fds=(req_r, resp_w),
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C at the terminal reaches the owner, which decides
            )
        finally:
            os.close(req_r)
            os.close(resp_w)
        self.buf = b""
        self.ready = False

    def send(self, message: dict) -> None:
        try:
            write_frame(self.req_w, message)
        except BrokenPipeError:
            raise WorkerDied() from None

    def receive(self, deadline: float | None) -> dict | None:
        """The next frame, or None at the deadline; WorkerDied at end of file."""
        import cbor2

        while True:
            if len(self.buf) >= HEADER.size:
                (n,) = HEADER.unpack_from(self.buf)
                if len(self.buf) >= HEADER.size + n:
                    body = self.buf[HEADER.size : HEADER.size + n]
                    self.buf = self.buf[HEADER.size + n :]
                    return cbor2.loads(body)
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return None
            ready, _, _ = select.select([self.resp_r], [], [], wait)
            if not ready:
                return None
            chunk = os.read(self.resp_r, 1 << 16)
            if not chunk:
                raise WorkerDied()
            self.buf += chunk

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        frame = self.receive(time.monotonic() + timeout)
        if frame is None or "ready" not in frame:
            self.kill()
            raise WorkerDied()
        self.ready = True

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.close()

    def close(self) -> None:
        for fd in (self.req_w, self.resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.req_w = self.resp_r = -1

    def death(self) -> str:
        """How the process ended, in words."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with status {code}"


class _Slot(threading.Thread):
    """One owner thread driving one worker at a time; replaces it when it fails."""

    def __init__(self, pool: "WorkerPool", index: int):
        super().__init__(name=f"e3-worker-{index}", daemon=True)
        self.pool = pool
        self.worker: _Worker | None = None
        self.current: Future | None = None
        self.cancelled = False
        self.pgid: int | None = None
        self.answered = False
        """The worker answered the current request itself (so it is alive and may record it)."""
        self.lock = threading.Lock()

    def run(self) -> None:
        try:
            self.worker = self.pool._new_worker()
        except OSError:
            self.worker = None  # tried again, and reported, with the first task
        rid = 0
        while True:
            item = self.pool._queue.get()
            if item is None:
                break
            request, future = item
            if not future.set_running_or_notify_cancel():
                _not_recorded(request)
                continue
            rid += 1
            with self.lock:
                self.current, self.cancelled, self.pgid = future, False, None
            try:
                outcome = self._execute(rid, request)
            except BaseException as e:  # a bug of ours must not leave a future hanging
                outcome = Outcome("error", message=f"internal error in worker pool: {type(e).__name__}: {e}")
            with self.lock:
                self.current = None
            future.set_result(outcome)
            if request.recorded is not None:
                # This slot takes no other task until its worker has written the record, so the
                # tasks this outcome released go to a free worker meanwhile.
                request.recorded.set_result(self._recorded(rid) if self.answered else None)
        if self.worker is not None and rid == 0:
            self.worker.kill()  # never given a task (more workers than ready tasks): it may still be loading East
        elif self.worker is not None:
            self.worker.close()  # end of file: the worker exits
            try:
                self.worker.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.worker.kill()

    def _execute(self, rid: int, request: TaskRequest) -> Outcome:
        frame = request.frame(rid)
        self.answered = False
        try:
            if self.worker is None:
                self.worker = self.pool._new_worker()
            self.worker.wait_ready(self.pool.start_timeout)
        except (WorkerDied, OSError) as e:
            self._replace()
            return self._fail(request, frame, "error", f"cannot start a worker process: {e or 'it exited at once'}")
        worker = self.worker
        deadline = None if request.timeout is None else time.monotonic() + request.timeout
        try:
            worker.send(frame)
            while True:
                msg = worker.receive(deadline)
                if msg is None:  # deadline passed with no answer: the task hangs its worker
                    self._kill_task(worker)
                    self._replace()
                    return self._fail(request, frame, "error", f"timed out after {request.timeout:g}s (worker killed)")
                if msg.get("id") != rid:
                    continue
                if "pgid" in msg:
                    with self.lock:
                        self.pgid = msg["pgid"]
                    if deadline is not None:
                        deadline += SPAWN_MARGIN  # the worker enforces the timeout on its child and answers
                    continue
                status, output_hash, exit_code, message = msg["outcome"]
                self.answered = True
                return Outcome(status, output_hash, exit_code, message)
        except WorkerDied:
            if self.cancelled:
                self._kill_task(worker)
                self._replace()
                return self._fail(request, frame, "cancelled", "cancelled")
            how = worker.death()
            self._kill_task(worker)
            self._replace()
            return self._fail(request, frame, "error", f"worker process {worker.proc.pid} {how} while running the task")

    def _recorded(self, rid: int) -> str | None:
        """The hash of the record the worker writes after answering request `rid`, or None if it fails."""
        worker = self.worker
        if worker is None:
            return None
        deadline = time.monotonic() + RECORD_TIMEOUT
        try:
            while True:
                msg = worker.receive(deadline)
                if msg is None:
                    worker.kill()  # its task is over: only the worker itself is stuck
                    self._replace()
                    return None
                if msg.get("id") == rid and "recorded" in msg:
                    return msg["recorded"]
        except WorkerDied:
            self._replace()
            return None

    def _kill_task(self, worker: _Worker) -> None:
        worker.kill()
        if self.pgid is not None:
            kill_group(self.pgid, grace=0.2)

    def _replace(self) -> None:
        if self.worker is not None:
            self.worker.close()
        self.worker = None
        if not self.pool._closing:
            try:
                self.worker = self.pool._new_worker()  # warm up the successor now, not at the next task
            except OSError:
                pass

    def _fail(self, request: TaskRequest, frame: dict, status: str, message: str) -> Outcome:
        if request.log:
            self.pool._log_failure(request, frame, status, message)
        return Outcome(status, message=message)

    def cancel(self, future: Future) -> bool:
        with self.lock:
            if self.current is not future or self.worker is None:
                return False
            self.cancelled = True
            worker, pgid = self.worker, self.pgid
        try:
            worker.proc.kill()
        except ProcessLookupError:
            pass
        if pgid is not None:
            kill_group(pgid, grace=0.2)
        return True


class WorkerPool:
    def __init__(
        self,
        size: int,
        *,
        preload: Sequence[str] = DEFAULT_PLATFORMS,
        start_timeout: float = START_TIMEOUT,
        env: dict[str, str] | None = None,
    ):
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self.preload = tuple(preload)
        self.start_timeout = start_timeout
        self._env = _worker_env(env)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = False
        self._slots = [_Slot(self, i) for i in range(size)]
        for slot in self._slots:
            slot.start()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown(cancel=exc[0] is not None)

    def _new_worker(self) -> _Worker:
        return _Worker(self.preload, self._env)

    def submit(self, request: TaskRequest) -> "Future[Outcome]":
        if self._closing:
            raise RuntimeError("worker pool is shut down")
        future: Future = Future()
        self._queue.put((request, future))
        return future

    def run(self, request: TaskRequest) -> Outcome:
        return self.submit(request).result()

    def cancel(self, future: Future) -> bool:
        """Cancel a pending execution, or kill a running one (its outcome becomes 'cancelled')."""
        if future.cancel():
            return True
        return any(slot.cancel(future) for slot in self._slots)

    def shutdown(self, wait: bool = True, cancel: bool = False) -> None:
        """Stop the workers once queued work is done; with `cancel`, drop queued work and kill running work."""
        if self._closing:
            return
        self._closing = True
        if cancel:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[1].cancel()
                    _not_recorded(item[0])
            for slot in self._slots:
                current = slot.current
                if current is not None:
                    slot.cancel(current)
        for _ in self._slots:
            self._queue.put(None)
        if wait:
            for slot in self._slots:
                slot.join()

    def _log_failure(self, request: TaskRequest, frame: dict, status: str, message: str) -> None:
        """The worker could not finish the log: say what happened and close the execution."""
        from e3.exec import identity, logs
        from e3.repository import Repository

        task_id = request.task_id or identity.task_id(request.task_hash, list(request.input_hashes))
        try:
            with logs.open_log(Repository(request.repo), task_id) as log:
                log.write("stderr", f"e3: {message}\n".encode())
                if request.log_start_end:
                    log.end(status)
        except OSError:
            pass


def _not_recorded(request: TaskRequest) -> None:
    if request.recorded is not None and not request.recorded.done():
        request.recorded.set_result(None)


def _worker_env(extra: dict[str, str] | None) -> dict[str, str]:
    """The owner's environment, with this e3 importable (it may run from a checkout)."""
    env = dict(os.environ if extra is None else extra)
    lib = str(Path(__file__).resolve().parents[2])
    path = env.get("PYTHONPATH", "")
    if lib not in path.split(os.pathsep):
        env["PYTHONPATH"] = f"{lib}{os.pathsep}{path}" if path else lib
    return env
