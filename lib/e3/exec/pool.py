"""A pool of warm worker processes that run task executions in-process.

Spawning `east-py run` costs ~150-250 ms per task; a worker that already has
the East runtime and the platform packages loaded runs a small task in well
under a millisecond, round trip included. `WorkerPool(size)` keeps `size`
workers (e3.exec.pool_worker), each reached over a pair of pipes carrying
length-prefixed CBOR frames.

The pool has no threads of its own: whoever waits on it drives it. `pump`
waits on every worker's pipe at once (select) and acts on what arrives:
answers resolve futures, a free worker gets the next request. `wait`, a
future's `result()` and `run` pump until their answer is in. A thread per
worker would cost the owner a thread hand-off and a wake-up per task, and the
owner (e3 start) is what bounds a run of many small tasks.

Workers start when requests need them, not with the pool: a request goes to
an idle worker, else behind one that is only writing its last record (free
within milliseconds; a second worker then starts loading East, so that the
next request of a chain runs while this one records), else to a worker still
starting, else to a new worker while fewer than `size` run, else behind a
running one (up to `behind` requests deep, the fewest behind each). A run of one
large task loads East once, not `size` times on the cores the task needs. What
one `_dispatch` gives a worker goes in one write; while every worker has work
queued behind its running request, `pump` lets answers gather a moment
(`GATHER`) and takes several in per wake.

`submit(TaskRequest)` returns a Future[Outcome]. A worker runs one execution
at a time: East tasks in-process, shell tasks spawned by the worker in their
own process group (the worker reports the group, so the pool can kill it), so
`size` bounds everything running at once. A request may be pipelined
(`TaskRequest.after`): sent behind the request whose output it takes, on the
same worker, as soon as that one is sent, so that a chain runs without a
round trip through the owner between two tasks; `_followers` holds those
whose predecessor is not sent yet. The worker writes the task's log
(`start` ... `end`). If a worker dies (segfault, `os._exit`) or does not answer
within the task's timeout, only that execution fails ('error', with a message
that says which), its log gets the message and an `end` record, and a fresh
worker takes its place. `cancel(future)` stops a pending or running execution
('cancelled').

Calls are serialised by a lock, so any thread may drive the pool; a worker
dies with the thread that started it (PR_SET_PDEATHSIG), so drive a pool from
a thread that outlives it (e3 start drives it from its main thread).
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Sequence

from e3.exec.executors import DrivenFuture, Pumped, TaskRequest
from e3.exec.invocation import KILL_GRACE, Outcome, kill_group
from e3.exec.pool_protocol import split_frames, take_tokens, write_frame

DEFAULT_PLATFORMS = ("east-py-std",)
START_TIMEOUT = 60.0
"""Seconds a new worker may take to import East and its platforms before it counts as broken."""
SPAWN_MARGIN = KILL_GRACE + 2.0
"""Extra seconds given to a worker whose spawned task timed out: it kills the group and answers itself."""
RECORD_TIMEOUT = 60.0
"""Seconds a worker may take to write a record after answering before it counts as stuck."""
RETRACT_AFTER = 0.02
"""Seconds a request may wait behind a running one while another worker is free, before it is
taken back for that worker (a request is sent behind another only when no worker is free)."""
GATHER = 0.002
"""Seconds `pump` lets answers gather before it takes them in, while every worker has at least
half of `behind` requests queued behind its running one: none can run out of work meanwhile, and
the owner then wakes once for several answers, not once for each."""



class WorkerDied(Exception):
    pass


class _Worker:
    """One worker process and the owner's ends of its pipes."""

    def __init__(self, preload: Sequence[str], env: dict[str, str]):
        req_r, self.req_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        # One byte per request sent behind a running one; the worker takes one before it starts
        # such a request, and the pool may take it back by reading its byte first (see
        # WorkerPool._retract). A request sent to an idle worker has none (e3.exec.pool_protocol).
        self.token_r, self.token_w = os.pipe()
        os.set_blocking(self.token_r, False)  # the worker's end shares this open file: neither waits
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "e3.exec.pool_worker", str(req_r), str(resp_w), str(self.token_r), *preload],
                pass_fds=(req_r, resp_w, self.token_r),
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C at the terminal reaches the owner, which decides
            )
        finally:
            os.close(req_r)
            os.close(resp_w)
        self.buf = b""

    def send(self, messages: list[dict], tokens: int) -> None:
        """Send requests in one write; those with a token (sent behind a running one) get a byte
        each on the token pipe, written first, so that they can be taken back (one sent to an idle
        worker, marked `direct`, never is)."""
        try:
            if tokens:
                os.write(self.token_w, b"." * tokens)
            write_frame(self.req_w, *messages)
        except BrokenPipeError:
            raise WorkerDied() from None

    def take_back(self, most: int) -> int:
        """Take back up to `most` of the last requests sent with a token, those the worker has not
        started (their bytes are still there); how many."""
        return take_tokens(self.token_r, most)

    def read(self) -> list[dict]:
        """The frames that arrived (the pipe is readable); WorkerDied at end of file."""
        try:
            chunk = os.read(self.resp_r, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            raise WorkerDied()
        frames, self.buf = split_frames(self.buf + chunk if self.buf else chunk)
        return frames

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.close()

    def close(self) -> None:
        for fd in (self.req_w, self.resp_r, self.token_r, self.token_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.req_w = self.resp_r = self.token_r = self.token_w = -1

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



# What a slot's worker is doing.
EMPTY = "empty"  # no process: it could not be started, or it died with nothing to do
STARTING = "starting"  # loading East; it may already hold the request to send once it is ready
IDLE = "idle"
RUNNING = "running"  # the request is sent; waiting for its outcome
RECORDING = "recording"  # answered; waiting for the record the request asked for


class _Slot:
    """One place in the pool: its worker process, the execution it holds, and until when."""

    def __init__(self, index: int):
        self.index = index
        self.worker: _Worker | None = None
        self.state = EMPTY
        self.request: TaskRequest | None = None
        self.future: Future | None = None
        self.rid = 0
        self.deadline: float | None = None
        self.pgid: int | None = None
        """The process group of the task the worker spawned, if it did."""
        self.queued: deque[tuple[TaskRequest, Future, int]] = deque()
        """Requests already sent behind the one running, so the worker goes on without a round trip:
        from the queue (each has a token; at most `WorkerPool.behind` of all those queued), and
        those pipelined, each right behind the request whose output it takes (`TaskRequest.after`)."""
        self.started = 0.0
        """When the running execution started (monotonic)."""
        self.skipping: int | None = None
        """A request taken back whose frame the worker has yet to read and skip: until it says so,
        nothing more is sent (the byte of a request sent meanwhile would let it run the old one)."""
        self.given = 0
        """Requests its current worker was sent (a worker never given one may still be loading East)."""


class WorkerPool(Pumped):
    follows = True
    """It takes pipelined requests (`TaskRequest.after`)."""

    def __init__(
        self,
        size: int,
        *,
        preload: Sequence[str] = DEFAULT_PLATFORMS,
        start_timeout: float = START_TIMEOUT,
        env: dict[str, str] | None = None,
        behind: int = 1,
    ):
        """`behind`: requests from the queue sent behind a running one, at most, per worker (so
        that it goes on while the owner is busy); those beyond wait here for the next free worker."""
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self.preload = tuple(preload)
        self.start_timeout = start_timeout
        self._env = _worker_env(env)
        self._pending: deque[tuple[TaskRequest, Future]] = deque()
        self._followers: dict[Future, tuple[TaskRequest, Future]] = {}
        """The future of a request not sent yet (or not yet ended, when taken back) -> the request
        pipelined behind it (`TaskRequest.after`), sent right behind it on the same worker."""
        self.behind = behind
        self._held: dict[_Worker, tuple[_Slot, list[dict], int]] | None = None
        """While `_dispatch` gives requests out: each worker's frames and tokens, sent in one write at its end."""
        self._lock = threading.RLock()
        self._closing = False
        self._rid = 0
        self._slots = [_Slot(i) for i in range(size)]

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown(cancel=exc[0] is not None)

    # ------------------------------------------------------------ the caller's side

    def submit(self, request: TaskRequest) -> "Future[Outcome]":
        return self.submit_all([request])[0]

    def submit_all(self, requests: Sequence[TaskRequest]) -> "list[Future[Outcome]]":
        """`submit` each; what goes to one worker goes in one write."""
        with self._lock:
            if self._closing:
                raise RuntimeError("worker pool is shut down")
            futures = []
            for request in requests:
                future = DrivenFuture(self)
                if request.after is not None:
                    self._follow(request, future)
                else:
                    self._pending.append((request, future))
                futures.append(future)
            self._dispatch()
            return futures

    def pump(self, timeout: float | None) -> None:
        """Wait up to `timeout` seconds for the workers; act on every answer, death and deadline."""
        with self._lock:
            if self._pending:
                self._dispatch()
            slots = self._slots
            watched = {}
            until = None  # the nearest deadline
            queued = False
            for s in slots:
                if s.worker is not None:
                    watched[s.worker.resp_r] = s
                if s.deadline is not None and (until is None or s.deadline < until):
                    until = s.deadline
                queued = queued or _retractable(s)
            if queued and self._idle_worker():  # when to take back a request stuck behind a long run
                for s in slots:
                    if _retractable(s) and (until is None or s.started + RETRACT_AFTER < until):
                        until = s.started + RETRACT_AFTER
            wait = timeout
            if until is not None:
                left = max(0.0, until - time.monotonic())
                wait = left if wait is None else min(wait, left)
            if watched:
                if self._gathering() and (wait is None or wait > 0):
                    time.sleep(GATHER if wait is None else min(wait, GATHER))
                readable, _, _ = select.select(list(watched), [], [], wait)
            else:
                readable = []
                time.sleep(wait if wait is not None else 0.05)
            for fd in readable:
                slot = watched[fd]
                worker = slot.worker
                if worker is None or worker.resp_r != fd:
                    continue  # replaced meanwhile
                self._read(slot, worker)
            now = time.monotonic()
            for slot in slots:
                if slot.deadline is not None and slot.deadline <= now:
                    self._expired(slot)
            if self._pending:
                self._dispatch()
            if queued or any(_retractable(s) for s in slots):
                self._retract(now)

    def cancel(self, future: Future) -> bool:
        """Cancel a pending execution, or kill a running one (its outcome becomes 'cancelled')."""
        with self._lock:
            for slot in self._slots:
                if slot.future is future or any(q[1] is future for q in slot.queued):
                    self._take_in(slot)  # the group of a task it spawned, or the outcome if it just finished
            held = [item for item in self._pending if item[1] is future]
            for after, item in list(self._followers.items()):
                if item[1] is future:
                    del self._followers[after]
                    held.append(item)
            for item in held:
                if item in self._pending:
                    self._pending.remove(item)
                # an outcome, not Future.cancel(): whoever waits sees 'cancelled' wherever it was
                _not_recorded(item[0])
                self._end(future, Outcome("cancelled", message="cancelled"))  # (one cancelled through the Future itself stays so)
                return True
            for slot in self._slots:
                if slot.future is future and slot.state in (STARTING, RUNNING):
                    self._cancel(slot)
                    return True
                if any(q[1] is future for q in slot.queued):
                    self._cancel_behind(slot, future)
                    return True
            return future.cancel()

    def shutdown(self, cancel: bool = False) -> None:
        """Stop the workers once queued work is done; with `cancel`, drop queued work and kill running work."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            if cancel:
                for slot in self._slots:
                    if slot.future is not None and slot.state in (STARTING, RUNNING):
                        self._cancel(slot)  # what was sent behind it comes back to the queue...
                while self._pending or self._followers:  # ...which is dropped
                    if self._pending:
                        request, future = self._pending.popleft()
                    else:
                        request, future = self._followers.pop(next(iter(self._followers)))
                    _not_recorded(request)
                    self._end(future, Outcome("cancelled", message="cancelled"))
            while self._pending or any(s.state in (RUNNING, RECORDING) or s.request is not None for s in self._slots):
                self.pump(1.0)
            for slot in self._slots:
                worker = slot.worker
                if worker is not None and slot.given == 0:
                    worker.kill()  # never given a task (more workers than tasks): it may still be loading East
                elif worker is not None:
                    worker.close()  # end of file: the worker exits
            for slot in self._slots:
                worker, slot.worker, slot.state = slot.worker, None, EMPTY
                if worker is not None and slot.given:
                    try:
                        worker.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        worker.kill()

    # ------------------------------------------------------------ the workers' side

    def _spawn(self, slot: _Slot) -> OSError | None:
        """Start a worker in this slot; the error if none could be started."""
        slot.worker, slot.given, slot.pgid, slot.skipping = None, 0, None, None
        try:
            slot.worker = _Worker(self.preload, self._env)
        except OSError as e:
            slot.state, slot.deadline = EMPTY, None
            return e
        slot.state, slot.deadline = STARTING, time.monotonic() + self.start_timeout
        return None

    def _dispatch(self) -> None:
        """Give pending requests out: to an idle worker, then behind one that is only recording,
        then to one still starting, then to a new worker, then behind a running one. What goes
        to one worker goes in one write, at the end."""
        if self._held is not None:
            self._give_out()
            return
        self._held = {}
        try:
            self._give_out()
        finally:
            held, self._held = self._held, None
            for worker, (slot, frames, tokens) in held.items():
                if slot.worker is worker:
                    try:
                        worker.send(frames, tokens)
                    except WorkerDied:
                        self._died(slot)

    def _give_out(self) -> None:
        while self._pending:
            slot, behind = self._place()
            if slot is None and behind is None:
                return
            request, future = self._pending.popleft()
            # A request taken back from a worker that died before starting it is running already.
            if not (future.running() or future.set_running_or_notify_cancel()):
                _not_recorded(request)
                self._resolved(future)
                continue
            self._rid += 1
            if behind is not None:
                self._send_behind(behind, request, future, self._rid)
                continue
            slot.request, slot.future, slot.rid = request, future, self._rid
            if slot.state == EMPTY:
                error = self._spawn(slot)
                if error is not None:
                    self._fail(slot, "error", f"cannot start a worker process: {error}")
                    continue
            if slot.state == IDLE:
                self._send(slot)

    def _place(self) -> tuple[_Slot | None, _Slot | None]:
        """Where the next request goes, in one look at the slots: (a slot to run it, None) for an
        idle worker, one still starting or a new one; (None, a slot to send it behind) for a
        worker only recording, or else one running with fewer than `behind` requests queued (the
        fewest); (None, None) if nowhere yet."""
        recording = starting = empty = running = None
        most = self.behind
        for slot in self._slots:
            state = slot.state
            if state == RUNNING:
                n = len(slot.queued)
                if n < most and slot.skipping is None and (running is None or n < len(running.queued)):
                    running = slot
            elif state == IDLE:
                if slot.request is None and slot.skipping is None:
                    return slot, None
            elif state == RECORDING:
                if recording is None and not slot.queued and slot.skipping is None:
                    recording = slot
            elif state == STARTING:
                if starting is None and slot.request is None and slot.skipping is None:
                    starting = slot
            elif empty is None and slot.request is None:  # EMPTY
                empty = slot
        if recording is not None:
            self.warm_up()  # a second worker starts loading East, for the next request
            return None, recording
        if starting is not None or empty is not None:
            return starting or empty, None
        return None, running

    def warm_up(self) -> None:
        """Start one more worker, without a request, unless one is starting already or the pool is full."""
        if any(slot.state == STARTING for slot in self._slots):
            return
        slot = self._empty_slot()
        if slot is not None:
            self._spawn(slot)

    def _empty_slot(self) -> _Slot | None:
        """A place for one more worker (it starts with the request given to it)."""
        for slot in self._slots:
            if slot.state == EMPTY and slot.request is None:
                return slot
        return None

    @property
    def workers(self) -> int:
        """Worker processes this pool has now (started, loading East, or busy)."""
        with self._lock:
            return sum(1 for slot in self._slots if slot.worker is not None)

    def _retract(self, now: float) -> None:
        """A worker is free and nothing waits here: take back the requests stuck behind a long run."""
        if not self._idle_worker():
            return
        for slot in self._slots:
            if (_retractable(slot) and slot.state == RUNNING and slot.skipping is None
                    and now - slot.started >= RETRACT_AFTER):
                # The bytes read are the last ones written: the worker skips the last requests
                # sent with a token (and those pipelined behind them), and runs those before.
                tokened = [i for i, q in enumerate(slot.queued) if q[0].after is None]
                got = slot.worker.take_back(len(tokened))
                if got:
                    taken = list(slot.queued)[tokened[-got]:]
                    for _ in taken:
                        slot.queued.pop()
                    slot.skipping = taken[-1][2]
                    for request, future, _ in taken:
                        if request.after is None:
                            self._pending.append((request, future))  # for the free worker...
                        else:
                            self._followers[request.after] = (request, future)  # ...and behind it there
                    self._dispatch()
                    if not self._idle_worker():
                        return

    def _gathering(self) -> bool:
        """May answers wait a little (`GATHER`)? Every worker is busy with requests queued behind."""
        least = self.behind // 2
        return least > 0 and all(s.state in (RUNNING, RECORDING) and len(s.queued) >= least for s in self._slots)

    def _idle_worker(self) -> bool:
        """Is a started worker waiting for work that nothing here waits for?"""
        return not self._pending and any(s.state == IDLE and s.request is None and s.skipping is None for s in self._slots)

    def _send_behind(self, slot: _Slot, request: TaskRequest, future: Future, rid: int) -> None:
        """Send a request to a busy worker, which reads it once done: it never waits on this
        process between tasks, and a write to a pipe nobody sleeps on wakes no one."""
        slot.queued.append((request, future, rid))
        self._write_request(slot, request, rid, record_first=True, behind=True)  # queued: nothing waits on its answer alone
        self._send_followers(slot, future)

    # ------------------------------------------------------------ pipelined requests

    def _follow(self, request: TaskRequest, future: Future) -> None:
        """A request that takes the output of `request.after`'s: sent at once behind that one on
        its worker, if it is sent already, else when it is; run on its output if it ended well."""
        after = request.after
        if after.done():
            self._followers[after] = (request, future)
            self._resolved(after)
            return
        self._followers[after] = (request, future)
        for slot in self._slots:
            tail = slot.queued[-1][1] if slot.queued else slot.future if slot.state in (RUNNING, RECORDING) else None
            if tail is after and slot.worker is not None:
                self._send_followers(slot, after)
                return

    def _send_followers(self, slot: _Slot, future: Future) -> None:
        """`future`'s request was just sent to the slot's worker: send the chain pipelined behind it.
        Such a request has no token (it is never taken back alone: the worker skips it when the
        one it follows was taken back) and names the request it follows (`after`)."""
        while (item := self._followers.pop(future, None)) is not None and slot.worker is not None:
            request, future = item
            if not (future.running() or future.set_running_or_notify_cancel()):
                _not_recorded(request)
                self._resolved(future)
                return
            self._rid += 1
            after = slot.queued[-1][2] if slot.queued else slot.rid
            slot.queued.append((request, future, self._rid))
            self._write_request(slot, request, self._rid, record_first=True, behind=True, after=after)

    def _resolved(self, future: Future) -> None:
        """`future` ended without its follower (if any) having been sent behind it: that one goes
        to the queue with the output for its input, or, if there is none, ends 'skipped'."""
        while (item := self._followers.pop(future, None)) is not None:
            request, future = item
            if _fill(request):
                request.after = None
                self._pending.appendleft((request, future))
                return
            _nothing_recorded(request)
            if not future.done():
                future.set_result(Outcome("skipped"))

    def _end(self, future: Future, outcome: Outcome) -> None:
        """Resolve an execution's future (unless it was cancelled through the Future itself), and
        settle what was pipelined behind it and not sent yet."""
        if not future.done():
            future.set_result(outcome)
        self._resolved(future)

    def _next(self, slot: _Slot) -> None:
        """The execution the worker was sent behind the one that just ended starts now."""
        if not slot.queued:
            return
        request, future, rid = slot.queued.popleft()
        slot.request, slot.future, slot.rid = request, future, rid
        self._began(slot)

    def _began(self, slot: _Slot) -> None:
        """The slot's execution starts now: its timeout counts from here."""
        slot.state, slot.pgid, slot.started = RUNNING, None, time.monotonic()
        if isinstance(slot.future, DrivenFuture):
            slot.future.began_at = slot.started
        timeout = slot.request.timeout
        slot.deadline = None if timeout is None else slot.started + timeout

    def _send(self, slot: _Slot) -> None:
        assert slot.request is not None and slot.worker is not None
        self._began(slot)
        # With requests still queued here, a chain's next task is not waiting on this answer:
        # the worker then answers once, with its record, and the owner wakes once per task.
        self._write_request(slot, slot.request, slot.rid, record_first=bool(self._pending), behind=False)
        self._send_followers(slot, slot.future)

    def _write_request(
        self, slot: _Slot, request: TaskRequest, rid: int, record_first: bool, behind: bool, after: int | None = None
    ) -> None:
        frame = request.frame(rid)
        if record_first:
            frame["record_first"] = True
        if not behind:
            frame["direct"] = True  # the worker is idle: it starts this at once, nothing takes it back
        if after is not None:
            frame["after"] = after
        slot.given += 1
        token = behind and after is None
        if self._held is not None:
            worker = slot.worker
            _, frames, tokens = self._held.get(worker) or (slot, [], 0)
            frames.append(frame)
            self._held[worker] = (slot, frames, tokens + token)
            return
        try:
            slot.worker.send([frame], int(token))
        except WorkerDied:
            self._died(slot)

    def _answer(self, slot: _Slot, message: dict) -> None:
        if "ready" in message:
            if slot.state == STARTING:
                slot.state, slot.deadline = IDLE, None
                if slot.request is not None:
                    self._send(slot)
            return
        if "skipped" in message:
            if message.get("id") == slot.skipping:
                slot.skipping = None
            return
        if message.get("id") != slot.rid:
            return  # about an execution this pool already gave up on
        if "pgid" in message and slot.state == RUNNING:
            slot.pgid = message["pgid"]
            if slot.deadline is not None:
                slot.deadline += SPAWN_MARGIN  # the worker enforces the timeout on its child and answers
        elif "outcome" in message and slot.state == RUNNING:
            status, output_hash, exit_code, text = message["outcome"]
            request, future = slot.request, slot.future
            if "recorded" in message and request.recorded is not None:  # recorded first, said in the same frame
                self._free(slot)
                self._next(slot)
                self._end(future, Outcome(status, output_hash, exit_code, text))
                request.recorded.set_result(message["recorded"])
                return
            if request.recorded is not None and status not in NOT_RUN:
                # Nothing new goes to this worker until it has written the record (only a request
                # sent behind), so the tasks this outcome releases go to a free worker meanwhile.
                slot.state, slot.deadline = RECORDING, time.monotonic() + RECORD_TIMEOUT
            else:
                self._free(slot)
                self._next(slot)
                if status in NOT_RUN:
                    _nothing_recorded(request)
            self._end(future, Outcome(status, output_hash, exit_code, text))
        elif "recorded" in message and slot.state == RECORDING:
            recorded = slot.request.recorded
            self._free(slot)
            self._next(slot)
            recorded.set_result(message["recorded"])

    def _take_in(self, slot: _Slot) -> None:
        """Act on what the slot's worker has already said, without waiting."""
        worker = slot.worker
        if worker is not None and select.select([worker.resp_r], [], [], 0)[0]:
            self._read(slot, worker)

    def _read(self, slot: _Slot, worker: _Worker) -> None:
        try:
            frames = worker.read()
        except WorkerDied:
            self._died(slot)
            return
        for message in frames:
            if slot.worker is worker:
                self._answer(slot, message)

    def _died(self, slot: _Slot) -> None:
        """The worker's pipe reached end of file: it exited or was killed."""
        worker = slot.worker
        state = slot.state
        if state == RUNNING:
            how = worker.death()
            self._kill_task(slot)
            self._fail(slot, "error", f"worker process {worker.proc.pid} {how} while running the task")
            self._replace(slot)
        elif state == RECORDING:
            self._free(slot, recorded=None)
            self._replace(slot)
        elif state == STARTING:
            worker.kill()
            self._drop(slot)
            if slot.request is not None:
                self._fail(slot, "error", "cannot start a worker process: it exited at once")
        else:
            worker.kill()
            self._drop(slot)  # an idle worker killed from outside: a new one starts with the next request

    def _expired(self, slot: _Slot) -> None:
        rid = slot.rid
        self._take_in(slot)  # an answer that came in meanwhile
        if slot.rid != rid or slot.deadline is None or slot.deadline > time.monotonic():
            return
        state = slot.state
        if state == RUNNING:  # no answer in time: the task hangs its worker
            self._kill_task(slot)
            self._fail(slot, "error", f"timed out after {slot.request.timeout:g}s (worker killed)")
            self._replace(slot)
        elif state == RECORDING:  # its task is over: only the worker itself is stuck
            slot.worker.kill()
            self._free(slot, recorded=None)
            self._replace(slot)
        elif state == STARTING:
            slot.worker.kill()
            self._drop(slot)
            if slot.request is not None:
                self._fail(slot, "error", f"cannot start a worker process: not ready after {self.start_timeout:g}s")

    def _cancel(self, slot: _Slot) -> None:
        if slot.state == STARTING:  # never sent: nothing ran, nothing to log
            request, future = slot.request, slot.future
            self._free(slot, recorded=None)
            self._end(future, Outcome("cancelled", message="cancelled"))
            return
        self._kill_task(slot)
        self._fail(slot, "cancelled", "cancelled")
        self._replace(slot)

    def _cancel_behind(self, slot: _Slot, future: Future) -> None:
        """Cancel a request sent behind a running one, before it started (the worker would run
        it next): the worker is killed, and the execution it was running starts again on the
        next free worker (or, when it had answered, the caller writes its record); the others
        sent behind go back to the queue, and those pipelined behind the cancelled one are skipped."""
        (item,) = [q for q in slot.queued if q[1] is future]
        slot.queued.remove(item)
        self._kill_task(slot)
        if slot.state == RECORDING:  # answered: only its record is lost (the caller writes it)
            self._free(slot, recorded=None)
        elif slot.request is not None:
            self._pending.appendleft((slot.request, slot.future))
            slot.request = slot.future = None
        _not_recorded(item[0])
        self._end(future, Outcome("cancelled", message="cancelled"))
        self._replace(slot)

    def _kill_task(self, slot: _Slot) -> None:
        slot.worker.kill()
        if slot.pgid is not None:
            kill_group(slot.pgid, grace=0.2)

    def _replace(self, slot: _Slot) -> None:
        """Warm up the successor of a worker that died or was killed now, not at the next task."""
        if slot.worker is not None:
            slot.worker.close()
        self._drop(slot)
        if not self._closing:
            self._spawn(slot)

    def _drop(self, slot: _Slot) -> None:
        """The slot's worker is gone; a request sent behind its execution never started: it goes
        back to the front of the queue, for the next free worker."""
        slot.worker, slot.state, slot.deadline, slot.pgid, slot.skipping = None, EMPTY, None, None, None
        back = []
        for request, future, _ in slot.queued:
            if request.after is None:
                back.append((request, future))
            else:  # sent again behind the one it follows, or run on its output, or skipped
                self._followers[request.after] = (request, future)
                if request.after.done():
                    self._resolved(request.after)
        slot.queued.clear()
        self._pending.extendleft(reversed(back))

    def _free(self, slot: _Slot, **recorded) -> None:
        """The slot's execution is over; with `recorded=...`, resolve its record's future with that."""
        request = slot.request
        slot.request, slot.future, slot.deadline = None, None, None
        if slot.state in (RUNNING, RECORDING):
            slot.state = IDLE
        if recorded and request is not None and request.recorded is not None and not request.recorded.done():
            request.recorded.set_result(recorded["recorded"])

    def _fail(self, slot: _Slot, status: str, message: str) -> None:
        """End the slot's execution without the worker's answer: log why, resolve its futures."""
        request, future = slot.request, slot.future
        if request.log and (request.after is None or _fill(request)):  # else it never ran: nothing to log
            self._log_failure(request, status, message)
        self._free(slot, recorded=None)
        self._end(future, Outcome(status, message=message))

    def _log_failure(self, request: TaskRequest, status: str, message: str) -> None:
        """The worker could not finish the log: say what happened and close the execution."""
        from e3.storage import identity, logs
        from e3.storage.repository import Repository

        task_id = request.task_id or identity.task_id(request.task_hash, list(request.input_hashes))
        try:
            with logs.open_log(Repository(request.repo), task_id) as log:
                log.write("stderr", f"e3: {message}\n".encode())
                if request.log_start_end:
                    log.end(status)
        except OSError:
            pass


NOT_RUN = ("cached", "skipped")
"""Outcomes of a pipelined request the worker did not run: nothing to record (see TaskRequest.after)."""


def _not_recorded(request: TaskRequest) -> None:
    if request.recorded is not None and not request.recorded.done():
        request.recorded.set_result(None)


def _nothing_recorded(request: TaskRequest) -> None:
    """A pipelined request that did not run: its record future says there is nothing to write."""
    if request.recorded is not None and not request.recorded.done():
        request.recorded.set_result("")


def _retractable(slot: _Slot) -> bool:
    """Has the slot a request sent behind from the queue (it has a token: it may be taken back)?"""
    return any(q[0].after is None for q in slot.queued)


def _fill(request: TaskRequest) -> bool:
    """Put the output of the request it follows (ended) in a pipelined request's inputs; False if there is none."""
    after = request.after
    if after.cancelled():
        return False
    o = after.result()
    if o.status not in ("success", "cached") or not o.output_hash:
        return False
    request.input_hashes = tuple(o.output_hash if h is None else h for h in request.input_hashes)
    return True


def _worker_env(extra: dict[str, str] | None) -> dict[str, str]:
    """The owner's environment, with this e3 importable (it may run from a checkout)."""
    env = dict(os.environ if extra is None else extra)
    lib = str(Path(__file__).resolve().parents[2])
    path = env.get("PYTHONPATH", "")
    if lib not in path.split(os.pathsep):
        env["PYTHONPATH"] = f"{lib}{os.pathsep}{path}" if path else lib
    return env
