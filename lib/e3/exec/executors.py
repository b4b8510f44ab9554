"""Where `e3 start` runs executions: the executor interface (what is submitted, what comes back), and its two implementations.

`e3 start` is the coordinator either way: it plans, checks the memo, claims
each execution on the durable queue, writes logs and records, stores outputs
and commits them (e3.exec.queue_executor.QueueExecutor). An executor only runs
executions: it takes a TaskRequest and gives a Future of its Outcome.

- `local` (the default): e3.exec.pool.WorkerPool, warm worker processes on
  this machine.
- `dask://HOST:PORT` or `tcp://HOST:PORT`: e3.exec.dask_executor.DaskPool, the
  workers of a Dask cluster (the `dask` extra: `pip install 'e3-py[dask]'`).

Which one a run uses is e3.exec.executor_choice's to say.
"""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Future, _base
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    from e3.exec.invocation import Outcome


@dataclass(slots=True)
class TaskRequest:
    """One execution to run: the task and its inputs by hash, and how to run and record it."""
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
    """Resolved with the record's hash once the worker wrote it, or None if it did not (the caller
    writes it), or "" for a pipelined request that did not run (`after`: nothing to record)."""
    after: "Future[Outcome] | None" = field(default=None, compare=False)
    """Pipelined (the local pool only): the future of the request whose output is the input given as
    None in `input_hashes`. It runs right behind that one on the same worker, with no round trip
    through the caller, which leaves `task_id` None; its outcome is 'skipped' (nothing ran) if that
    one did not succeed, or 'cached' (with the output) when `memo` finds a reusable success."""
    memo: bool = False
    """The worker checks the memo (e3.storage.records) before running, as the scheduler would have."""

    def frame(self, rid: int) -> dict:
        """The request's map (e3.exec.pool_protocol): keys at the worker's defaults are left out
        (one frame per task is encoded here and decoded there)."""
        out = {
            "id": rid,
            "repo": str(self.repo),
            "task": self.task_hash,
            "inputs": list(self.input_hashes),
            "execution_id": self.execution_id or uuid.uuid4().hex,
        }
        if self.task_id is not None:
            out["task_id"] = self.task_id
        if self.timeout is not None:
            out["timeout"] = self.timeout
        if self.force_spawn:
            out["force_spawn"] = True
        if not self.durable:
            out["durable"] = False
        if not self.log:
            out["log"] = False
        if not self.log_start_end:
            out["log_start_end"] = False
        if self.command_ir is not None:
            out["command"] = self.command_ir
        if self.record_started is not None:
            out["record"] = self.record_started.timestamp()
        if self.memo:
            out["memo"] = True
        return out



class Executor(Protocol):
    """Runs executions somewhere; the caller drives it (wait) from one thread."""

    size: int
    """Executions it runs at once (warm workers, or the cluster's worker threads)."""

    def submit(self, request: "TaskRequest") -> "Future[Outcome]": ...

    def submit_all(self, requests: "Sequence[TaskRequest]") -> "list[Future[Outcome]]":
        """`submit` each, in order (an executor may hand them over together)."""

    def wait(self, futures: Sequence[Future], timeout: float | None) -> list[Future]:
        """Work until one of `futures` is done or `timeout` seconds pass; return the done ones."""

    def cancel(self, future: Future) -> bool:
        """Stop a pending or running execution (its outcome becomes 'cancelled')."""

    def shutdown(self, cancel: bool = False) -> None: ...


class Pumped:
    """The part of an executor driven by whoever waits on it: `pump(timeout)` does the work that
    has come in (answers, deaths, deadlines); `wait` and `run` are built on it."""

    def submit(self, request: "TaskRequest") -> "Future[Outcome]":
        raise NotImplementedError

    def submit_all(self, requests: "Sequence[TaskRequest]") -> "list[Future[Outcome]]":
        """`submit` each, in order."""
        return [self.submit(request) for request in requests]

    def pump(self, timeout: float | None) -> None:
        raise NotImplementedError

    def run(self, request: "TaskRequest") -> "Outcome":
        """Submit and wait for the outcome, and for the record when the request asks for one."""
        future = self.submit(request)
        for waited in (future, request.recorded):
            if waited is not None:
                self.wait([waited], None)
        return future.result()

    def wait(self, futures: Sequence[Future], timeout: float | None) -> list[Future]:
        """Drive the executor until one of `futures` is done or `timeout` seconds pass; return the done ones."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            done = [f for f in futures if f.done()]
            if done:
                return done
            left = None if end is None else max(0.0, end - time.monotonic())
            self.pump(left)  # with no time left, still takes in what has arrived
            if left == 0.0:
                return [f for f in futures if f.done()]


_ENDED = frozenset((_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED, _base.FINISHED))
_SHARED = threading.Condition()
"""The lock of every DrivenFuture: none is ever waited on through it (see DrivenFuture)."""


class DrivenFuture(Future):
    """A Future whose `result()` drives its executor until the answer is in (executors have no
    threads that would resolve it meanwhile: whoever waits does the work).

    Made and looked at once or more per execution, so made cheap: as `result()` and `exception()`
    never wait on the Future's condition (they drive the executor, then look), all share one
    lock, and `done()` and the result of a finished one are read without taking it (a state
    once ended never changes, and is set after the result)."""

    def __init__(self, executor: "Executor"):
        # Future.__init__, but with the shared lock, not a Condition of its own.
        self._condition = _SHARED
        self._state = _base.PENDING
        self._result = None
        self._exception = None
        self._waiters = []
        self._done_callbacks = []
        self._executor = executor
        self.began_at: float | None = None
        """When the execution started (monotonic), once the executor knows: the local pool sets it
        when a worker starts it, not when it is handed over (a request sent behind a busy worker
        waits there); Dask's, which is not told, when it is handed to the cluster."""

    def done(self) -> bool:
        return self._state in _ENDED

    def set_result(self, result) -> None:
        # Future.set_result, less the notify of a condition no one waits on.
        with self._condition:
            if self._state in _ENDED:
                raise _base.InvalidStateError(f"{self._state}: {self!r}")
            self._result = result
            self._state = _base.FINISHED
            for waiter in self._waiters:
                waiter.add_result(self)
        self._invoke_callbacks()

    def result(self, timeout: float | None = None):
        if self._state == _base.FINISHED and self._exception is None:
            return self._result
        if not self.done():
            self._executor.wait([self], timeout)
        return super().result(timeout=0 if not self.done() else None)

    def exception(self, timeout: float | None = None):
        self._executor.wait([self], timeout)
        return super().exception(timeout=0 if not self.done() else None)
