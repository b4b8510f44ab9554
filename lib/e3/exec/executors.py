"""Where `e3 start` runs executions: the executor interface, its two implementations, and choosing one.

`e3 start` is the coordinator either way: it plans, checks the memo, claims
each execution on the durable queue, writes logs and records, stores outputs
and commits them (e3.exec.queue_executor.QueueExecutor). An executor only runs
executions: it takes a TaskRequest and gives a Future of its Outcome.

- `local` (the default): e3.exec.pool.WorkerPool, warm worker processes on
  this machine.
- `dask://HOST:PORT` or `tcp://HOST:PORT`: e3.exec.dask_executor.DaskPool, the
  workers of a Dask cluster (the `dask` extra: `pip install 'e3-py[dask]'`).

The executor of a run is the one named for it (`e3 start --executor`), else
`e3.executor` in the repository's config, else `local`.
"""
from __future__ import annotations

import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    from e3.exec.pool import TaskRequest
    from e3.exec.invocation import Outcome
    from e3.storage.repository import Repository

CONFIG_KEY = "e3.executor"
LOCAL_CONCURRENCY = 4
"""Executions at once on the local pool when not told (its number of warm workers)."""
CLUSTER_CONCURRENCY = 8
"""Executions handed to a Dask cluster at once per worker thread when not told: enough in flight
that no worker waits on a round trip to this process between tasks."""


class Executor(Protocol):
    """Runs executions somewhere; the caller drives it (wait) from one thread."""

    size: int
    """Executions it runs at once (warm workers, or the cluster's worker threads)."""

    def submit(self, request: "TaskRequest") -> "Future[Outcome]": ...

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


class DrivenFuture(Future):
    """A Future whose `result()` drives its executor until the answer is in (executors have no
    threads that would resolve it meanwhile: whoever waits does the work)."""

    def __init__(self, executor: "Executor"):
        super().__init__()
        self._executor = executor

    def result(self, timeout: float | None = None):
        self._executor.wait([self], timeout)
        return super().result(timeout=0 if not self.done() else None)

    def exception(self, timeout: float | None = None):
        self._executor.wait([self], timeout)
        return super().exception(timeout=0 if not self.done() else None)


def configured(repo: "Repository") -> str | None:
    """`e3.executor` from the repository's config, if set."""
    return repo.config(CONFIG_KEY)


def open_executor(repo: "Repository", name: str | None, concurrency: int | None) -> tuple["Executor | None", int]:
    """The executor called `name` (else the configured one, else local), and the concurrency to run it at.

    The local pool is started by its user when first needed (None here); a Dask
    cluster is connected to now, so that a cluster that cannot run the tasks is
    an error before anything runs (e3.errors.ExecutorUnavailable).
    """
    from e3.exec.dask_executor import parse_address

    address = parse_address(name if name is not None else configured(repo) or "local")
    if address is None:
        return None, concurrency or LOCAL_CONCURRENCY
    from e3.exec.dask_executor import DaskPool

    pool = DaskPool(repo, address)
    return pool, concurrency or CLUSTER_CONCURRENCY * pool.size
