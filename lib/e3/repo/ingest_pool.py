"""Ingesting many files in forked workers, with answers in input order.

Storing a small value is Python and system calls (read, check, hash, write a
temporary file): one core's worth per process. For bulk input
(`e3-hash-object -w --stdin-paths` given thousands of names at once) the parent
forks workers, hands out blocks of paths and returns each block's hashes in
input order. A worker writes through its own `store.Batch` and answers a block
only once the block's objects are durable (see `Batch.durable`), so every
answer names a durable object, as in one process.

A block that fails answers with the hashes before the failing path and the
error, which the parent raises after returning those hashes, as one process
would have. Blocks handed out after it may already be stored; nothing reports
them (like any unreferenced object, gc removes them in time).
"""
from __future__ import annotations

import marshal
import os
import select
from collections import deque
from typing import Callable

from e3 import errors
from e3.repo.ingest import Ingest
from e3.storage.objects import Batch
from e3.storage.files import read_exactly, write_exactly

BLOCK = 256
"""Paths per block: one Batch group."""
DEPTH = 2
"""Blocks handed to a worker before its oldest answer is awaited (bounds both pipes' contents)."""


class WorkerFailed(errors.E3Error):
    pass


class IngestPool:
    """Forked workers ingesting blocks of paths; `make()` builds each worker's Ingest and Batch."""

    def __init__(self, make: Callable[[], tuple[Ingest, Batch]], workers: int):
        self._workers: list[tuple[int, int, int]] = []  # (pid, to_worker, from_worker)
        self._outstanding: deque[int] = deque()  # worker index of each block handed out, in order
        self._next = 0
        for _ in range(workers):
            down_r, down_w = os.pipe()
            up_r, up_w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: never returns into the parent's code
                code = 1
                try:
                    os.close(down_w)
                    os.close(up_r)
                    for _, to_worker, from_worker in self._workers:
                        os.close(to_worker)
                        os.close(from_worker)
                    _serve(down_r, up_w, make)
                    code = 0
                finally:
                    os._exit(code)
            os.close(down_r)
            os.close(up_w)
            self._workers.append((pid, down_w, up_r))

    def submit(self, paths: list[str]) -> tuple[list[str], tuple[str, str] | None]:
        """Hand out one block; returns the answer of the oldest block if one had to be awaited first."""
        answer: tuple[list[str], tuple[str, str] | None] = ([], None)
        if len(self._outstanding) >= DEPTH * len(self._workers):
            answer = self._answer()
        worker = self._next
        self._next = (self._next + 1) % len(self._workers)
        _send(self._workers[worker][1], paths)
        self._outstanding.append(worker)
        return answer

    def drain(self) -> tuple[list[str], tuple[str, str] | None]:
        """Await every block handed out; their hashes in order, and the first error (answers after it are dropped)."""
        hashes: list[str] = []
        while self._outstanding:
            done, error = self._answer()
            hashes.extend(done)
            if error is not None:
                return hashes, error
        return hashes, None

    def _answer(self) -> tuple[list[str], tuple[str, str] | None]:
        worker = self._outstanding.popleft()
        answer = _receive(self._workers[worker][2])
        if answer is None:
            return [], ("WorkerFailed", "a hash-object worker died")
        done, error = answer
        return done, (tuple(error) if error else None)

    def close(self) -> None:
        """Let the workers finish what they hold and exit; wait for them."""
        for pid, to_worker, from_worker in self._workers:
            os.close(to_worker)
        for pid, to_worker, from_worker in self._workers:
            os.close(from_worker)  # a worker still answering gets EPIPE and leaves
            os.waitpid(pid, 0)
        self._workers = []


def raise_error(error: tuple[str, str]) -> None:
    """Raise a worker's error as the parent's own (same class, same message)."""
    name, message = error
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.E3Error)):
        cls = WorkerFailed
    raise cls(message)


# ---------------------------------------------------------------- the worker


def _serve(down: int, up: int, make: Callable[[], tuple[Ingest, Batch]]) -> None:
    """Answer blocks in order: a block's hashes once its objects are durable."""
    ingest, batch = make()
    waiting: deque[tuple[int, list[str], list[str] | None]] = deque()  # (writes that end it, hashes, error)
    try:
        with batch:
            _serve_blocks(down, up, ingest, batch, waiting)
    except errors.E3Error as e:  # the store failed (a full disk...): the parent raises it in its turn
        _send(up, ([], [type(e).__name__, str(e)]))


def _serve_blocks(down: int, up: int, ingest: Ingest, batch: Batch, waiting: deque) -> None:
    while (paths := _receive(down)) is not None:
        done: list[str] = []
        error = None
        try:
            for path in paths:
                done.append(ingest.file(path))
                _answer_durable(up, batch, waiting)
        except errors.E3Error as e:
            error = [type(e).__name__, str(e)]
        except Exception as e:  # noqa: BLE001 - reported by the parent as one line
            error = ["WorkerFailed", f"{type(e).__name__}: {e}"]
        waiting.append((batch.durable + batch.pending, done, error))
        if not _readable(down):  # nothing more handed out for now: make everything durable and answer
            batch.flush()
        _answer_durable(up, batch, waiting)
    batch.flush()
    _answer_durable(up, batch, waiting)


def _answer_durable(up: int, batch: Batch, waiting: deque) -> None:
    while waiting and waiting[0][0] <= batch.durable:
        _, done, error = waiting.popleft()
        _send(up, (done, error))


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


# ---------------------------------------------------------------- framing


def _send(fd: int, value: object) -> None:
    data = marshal.dumps(value)
    write_exactly(fd, len(data).to_bytes(4, "little") + data)


def _receive(fd: int) -> object | None:
    head = read_exactly(fd, 4)
    if head is None:
        return None
    data = read_exactly(fd, int.from_bytes(head, "little"))
    return None if data is None else marshal.loads(data)

