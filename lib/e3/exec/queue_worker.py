"""The worker: claim queued executions and carry each to completion, exactly once.

Shared by `e3-run-task` and the pool embedded in `e3 start`. For one claim:

1. The memo: a success already recorded for the task_id (and no `force`) is
   reused, not run. An outcome already recorded under this very execution id
   means a worker finished it and died before completing the claim: it is not
   run again either.
2. The task runs (e3.exec.invocation), its output streaming into
   `logs/<TASK_ID>.eastl`. (Who runs it is known from its claim, whose flock
   dies with the worker: no `running` record is written, as in `e3 start`.)
3. The outcome's record (`success` / `failed` / `error`) is stored.
4. A success's output is written into the workspace with e3.repo.workspace.transact,
   only if the task's input datasets still hold the hashes it ran on and the
   workspace still has that task: an output computed from inputs that have
   since changed is never written (it stays in the memo, under its task_id).
5. Only then is the claim completed.

A crash anywhere before 5 requeues the entry (e3.storage.queue), and the next
worker resumes at the first step not yet done: so every execution's outcome is
recorded once, and its output written once, whatever dies when. The task itself
runs at least once: a crash between its end and step 3 runs it again
(e3-run-task(1) says what that means for a shell task's side effects). Step 3
is done when `tasks/<task_id>` holds the record (it is written there, whole, by
one rename or link; with `e3.recordObjects`, a record object stored just before
a crash, unnamed, is no outcome, and gc removes it).

Durability is batched (git's core.fsyncMethod=batch idea): an fsync costs
5-10 ms on this machine, several per execution when each write is made durable
alone. A worker writes outputs and records without fsync, and finishes
executions in groups: one syncfs(2), then one workspace commit for the group's
outputs, then the group's claims are completed. A group is closed after
`FLUSH_SECONDS`, at `MAX_BATCH` executions, or when the queue is empty. A kill
-9 loses nothing (the page cache survives the process); a power loss may lose
the records of a group not yet synced, whose claims are then still on the
queue, and those executions run again.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from e3.errors import E3Error, NotFound, StorageError
from e3.storage import queue, records

if TYPE_CHECKING:
    from e3.storage.queue import Claim, Entry
    from e3.exec.invocation import Outcome
    from e3.storage.repository import Repository

# How a claim ended, reported per execution.
RAN, CACHED, RECORDED = "ran", "cached", "recorded"
POLL_SECONDS = 0.05
"""Pause between looks at an empty queue (a new entry waits at most this long)."""
REQUEUE_SECONDS = 0.5
"""How often an idle worker looks for claims of dead workers (so they return within a second)."""
FLUSH_SECONDS = 0.2
"""Longest a finished execution waits for its group's sync and workspace commit."""
MAX_BATCH = 256


@dataclass(frozen=True)
class Result:
    entry: "Entry"
    how: str  # RAN | CACHED | RECORDED
    status: str  # success | failed | error | cancelled
    output_hash: str | None = None
    message: str | None = None
    written: bool = False
    """The output was written into the workspace by this worker."""
    stale: str | None = None
    """Why a success's output was not written (its inputs changed, the task is gone)."""
    seconds: float = 0.0


Execute = Callable[..., "Outcome"]


# ---------------------------------------------------------------- one execution


def known_outcome(repo: "Repository", entry: "Entry") -> tuple[str, "Outcome"] | None:
    """(how, outcome) if this entry needs no run: a reusable success, or its own outcome already recorded."""
    from e3.exec.invocation import Outcome

    s = records.summary(repo, entry.task_id)
    if s is None:
        return None
    reused = records.reusable_output(repo, s)
    if reused is not None and not entry.force:
        return CACHED, Outcome("success", output_hash=reused, exit_code=0)
    if s.kind == "running":
        return None  # a crashed attempt (or a concurrent duplicate): run it
    if s.kind == "success" and reused is None:
        return None  # its output's bytes were lost (a power loss): run it again
    try:
        rec = records.read(repo, s)
    except E3Error:
        return None
    if rec.execution_id != entry.execution_id:
        return None  # an earlier execution's outcome: a failure is retried, a forced success re-run
    return RECORDED, outcome_of(rec)


def outcome_of(rec: records.Record) -> "Outcome":
    from e3.exec.invocation import Outcome

    if rec.kind == "success":
        return Outcome("success", output_hash=rec.output_hash, exit_code=0)
    if rec.kind == "failed":
        return Outcome("failed", exit_code=rec.exit_code, message=f"exited with status {rec.exit_code}")
    return Outcome("error", message=rec.message)


def run_execution(
    repo: "Repository",
    entry: "Entry",
    *,
    execute: Execute | None = None,
    timeout: float | None = None,
    on_spawn: Callable[[int], None] | None = None,
    durable: bool = True,
) -> "Outcome":
    """Steps 2-3: run the task with its log, record the outcome; return it.

    With `durable=False` nothing is fsynced: the caller syncs before the outcome counts (see `Batch`).
    """
    from e3.storage import logs

    if execute is None:
        from e3.exec.invocation import execute
    # No `running` record: the claim's flock says who runs it and dies with its holder
    # (`e3 workspace status` reads the queue), and a record costs two file writes.
    started = records.now()
    log = logs.open_log(repo, entry.task_id, entry.execution_id)
    try:
        try:
            outcome = execute(
                repo, entry.task_hash, list(entry.input_hashes), timeout=timeout, log=log, on_spawn=on_spawn, durable=durable
            )
        except KeyboardInterrupt:
            from e3.exec.invocation import Outcome

            outcome = Outcome("cancelled", message="cancelled")
        if outcome.status == "error" and _disk_full(outcome.message):
            # The machine's fault, not the task's: record nothing, so the entry runs again
            # once there is space (its claim is left for requeue_dead when this worker stops).
            raise StorageError(outcome.message or "no space left on device")
        record_outcome(repo, entry, outcome, started, durable=durable)
        try:
            log.end(outcome.status)
        except OSError:
            pass  # a full disk may refuse the log's last line; the record above is what counts
    finally:
        log.close()
    return outcome


def _disk_full(message: str | None) -> bool:
    # e3.storage.objects words every ENOSPC this way (StorageError); the runner passes its message on.
    return bool(message) and "no space left on device" in message.lower()


def record_outcome(repo: "Repository", entry: "Entry", outcome: "Outcome", started, durable: bool = True) -> str:
    """Store the terminal record of an execution (a cancelled one is an `error` saying so)."""
    rec = records.terminal(entry.execution_id, entry.input_hashes, outcome, started)
    return records.write(repo, entry.task_id, rec, durable=durable)


def drop(repo: "Repository", runner: str, items: Sequence[tuple["Entry", str]]) -> list["Entry"]:
    """Take pending entries off the queue without running them; return those dropped.

    Each is claimed first (one that a live worker claimed meanwhile is left to it). One
    whose own outcome is recorded already (its worker died before completing it) is simply
    completed; it is not among those returned. The others end with an `error` record
    carrying their message, in their log too, unless their task_id has a success (the memo
    stays) or the outcome of a later execution. The records are made durable together
    before the claims are completed.
    """
    from e3.storage import logs
    from e3.exec.invocation import Outcome

    claims = []
    dropped = []
    try:
        for entry, message in items:
            claim = queue.claim_entry(repo, runner, entry.execution_id)
            if claim is None:
                continue
            claims.append(claim)
            newest = _newest_outcome(repo, entry.task_id)
            if newest is not None and newest[1] == entry.execution_id:
                continue  # it ran: only its completion was missing
            dropped.append(entry)
            if newest is not None and (newest[0] == "success" or newest[1] > entry.execution_id):
                continue
            started = records.now()
            with logs.open_log(repo, entry.task_id, entry.execution_id) as log:
                log.write("stderr", f"e3: {message}\n".encode())
                record_outcome(repo, entry, Outcome("error", message=message), started, durable=False)
                log.end("error")
        if claims:
            repo.objects.sync()
        for claim in claims:
            claim.complete()
    finally:
        for claim in claims:
            claim.release()  # not completed (an error above): back to the queue as it was
    return dropped


def complete_ended(repo: "Repository", runner: str, entries: Iterable["Entry"]) -> list["Entry"]:
    """Complete the entries whose own execution has ended (its outcome is recorded: the run or
    worker that ran it died before completing its claim); return the others.

    Such an entry needs no run, and its outcome belongs to the run that ended: whoever
    decides on its task afresh (`e3 start`) finds a success in the memo and tries a failure
    again, as every run does. One that a live worker claims meanwhile is left to it.
    """
    pending = []
    for entry in entries:
        newest = _newest_outcome(repo, entry.task_id)
        if newest is None or newest[1] != entry.execution_id:
            pending.append(entry)
            continue
        claim = queue.claim_entry(repo, runner, entry.execution_id)
        if claim is not None:
            claim.complete()  # its record is already on disk: only the completion was missing
    return pending


def _newest_outcome(repo: "Repository", task_id: str) -> tuple[str, str] | None:
    """(kind, execution id) of the task_id's newest record, if it has one that can be read."""
    s = records.summary(repo, task_id)
    if s is None:
        return None
    try:
        return s.kind, records.read(repo, s).execution_id
    except E3Error:
        return None


def write_outputs(repo: "Repository", ws: str, items: Sequence[tuple["Entry", str]]) -> dict[str, str | None]:
    """Step 4 for a batch of one workspace's successes, as one commit.

    Returns execution id -> None if written (or already there), else why not.
    Entries are applied in order, so a batch may hold a task and its consumer.
    """
    from e3.repo import workspace
    from e3.model.task import load_task

    inputs = {e.execution_id: load_task(repo.objects, e.task_hash).inputs for e, _ in items}
    verdict: dict[str, str | None] = {}

    def changes(view):
        verdict.clear()
        if view.package_hash is None:
            for e, _ in items:
                verdict[e.execution_id] = f"workspace {ws} is not deployed"
            return None
        data = dict(view.datasets)
        out = {}
        for e, output_hash in items:
            if view.package.tasks.get(e.task) != e.task_hash:
                verdict[e.execution_id] = f"task {e.task} changed in workspace {ws}"
                continue
            current = tuple(data.get(p) for p in inputs[e.execution_id])
            if current != tuple(e.input_hashes):
                verdict[e.execution_id] = "its inputs changed while it ran"
                continue
            verdict[e.execution_id] = None
            data[e.output] = output_hash
            out[e.output] = output_hash
        return out or None

    names = [e.task for e, _ in items]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    try:
        workspace.transact(repo, ws, changes, f"e3-run-task: {len(names)} task output{'s' if len(names) != 1 else ''} ({shown})")
    except NotFound:
        return {e.execution_id: f"workspace {ws} does not exist" for e, _ in items}
    return verdict


@dataclass
class _Done:
    claim: "Claim"
    how: str
    outcome: "Outcome"
    seconds: float


class Batch:
    """Executions finished but not yet counted: synced, written into workspaces and completed together."""

    def __init__(self, repo: "Repository", write_output: bool = True):
        self.repo = repo
        self.write_output = write_output
        self.items: list[_Done] = []
        self.opened = 0.0

    def __len__(self) -> int:
        return len(self.items)

    def add(self, claim: "Claim", how: str, outcome: "Outcome", seconds: float) -> None:
        if not self.items:
            self.opened = time.monotonic()
        self.items.append(_Done(claim, how, outcome, seconds))

    def due(self) -> bool:
        return bool(self.items) and (len(self.items) >= MAX_BATCH or time.monotonic() - self.opened >= FLUSH_SECONDS)

    def flush(self) -> list[Result]:
        """Sync, commit the outputs (one commit per workspace), complete the claims; return the results."""
        items, self.items = self.items, []
        if not items:
            return []
        if any(d.how == RAN for d in items):
            self.repo.objects.sync()  # outputs and records are durable before anything counts on them
        verdicts: dict[str, str | None] = {}
        if self.write_output:
            by_ws: dict[str, list[tuple["Entry", str]]] = {}
            for d in items:
                if d.outcome.status == "success" and d.outcome.output_hash:
                    by_ws.setdefault(d.claim.entry.workspace, []).append((d.claim.entry, d.outcome.output_hash))
            for ws, group in by_ws.items():
                verdicts.update(write_outputs(self.repo, ws, group))
        results = []
        for d in items:
            e, o = d.claim.entry, d.outcome
            stale = verdicts.get(e.execution_id)
            written = e.execution_id in verdicts and stale is None
            d.claim.complete()
            results.append(Result(e, d.how, o.status, o.output_hash, o.message, written, stale, d.seconds))
        return results

    def abandon(self) -> None:
        """Leave every claim for requeue_dead, as a crash would (after an error in flush or a run)."""
        items, self.items = self.items, []
        for d in items:
            d.claim.abandon()


def start(
    repo: "Repository",
    claim: "Claim",
    *,
    execute: Execute | None = None,
    timeout: float | None = None,
    on_spawn: Callable[[int], None] | None = None,
    durable: bool = False,
) -> tuple[str, "Outcome", float]:
    """Steps 1-3 for one claim: the memo, or a run; (how, outcome, seconds). Counted when its batch flushes."""
    t0 = time.monotonic()
    known = known_outcome(repo, claim.entry)
    if known is not None:
        how, outcome = known
    else:
        how, outcome = RAN, run_execution(repo, claim.entry, execute=execute, timeout=timeout, on_spawn=on_spawn, durable=durable)
    return how, outcome, time.monotonic() - t0


def process(
    repo: "Repository",
    claim: "Claim",
    *,
    execute: Execute | None = None,
    timeout: float | None = None,
    write_output: bool = True,
    on_spawn: Callable[[int], None] | None = None,
) -> Result:
    """Carry one claimed execution to completion (steps 1-5) alone; the claim is completed on return."""
    batch = Batch(repo, write_output)
    try:
        how, outcome, seconds = start(repo, claim, execute=execute, timeout=timeout, on_spawn=on_spawn)
        batch.add(claim, how, outcome, seconds)
        [result] = batch.flush()
    except BaseException:
        batch.abandon()
        claim.abandon()
        raise
    return result


# ---------------------------------------------------------------- the loop


class Worker:
    """Claims and processes executions of one runner with `workers` threads until told to stop.

    Threads suit spawned tasks (they wait on children); East functions run
    in-process under the GIL, so CPU-bound parallelism comes from running
    several worker processes on one repository, which the queue allows.
    """

    def __init__(
        self,
        repo: "Repository",
        runner: str = queue.DEFAULT_RUNNER,
        *,
        workers: int = 1,
        once: bool = False,
        timeout: float | None = None,
        execute: Execute | None = None,
        on_result: Callable[[Result], None] | None = None,
        poll: float = POLL_SECONDS,
        write_output: bool = True,
    ):
        self.repo = repo
        self.runner = queue.check_runner(runner)
        self.workers = max(1, workers)
        self.once = once
        self.timeout = timeout
        self.execute = execute
        self.on_result = on_result or (lambda r: None)
        self.poll = poll
        self.write_output = write_output
        self.stopping = threading.Event()
        self.results: list[Result] = []
        self._mutex = threading.Lock()
        self._claimer = queue.Claimer(repo, runner)
        self._last_requeue = 0.0
        self._groups: set[int] = set()
        self._errors: list[BaseException] = []

    def _claim(self) -> "Claim | None":
        with self._mutex:
            c = self._claimer.claim()
            if c is not None:
                return c
            now = time.monotonic()
            if now - self._last_requeue >= REQUEUE_SECONDS or self.once:
                self._last_requeue = now
                if queue.requeue_dead(self.repo, self.runner):
                    return self._claimer.claim()
            return None

    def _loop(self) -> None:
        batch = Batch(self.repo, self.write_output)
        c = None
        try:
            while not self.stopping.is_set():
                if batch.due():
                    self._report(batch.flush())
                c = self._claim()
                if c is None:
                    self._report(batch.flush())  # idle: count what finished now
                    if self.once:
                        return
                    self.stopping.wait(self.poll)
                    continue
                if self.stopping.is_set():
                    c.release()
                    c = None
                    break
                mine: list[int] = []

                def spawned(pgid: int) -> None:
                    with self._mutex:
                        mine.append(pgid)
                        self._groups.add(pgid)

                try:
                    how, outcome, seconds = start(self.repo, c, execute=self.execute, timeout=self.timeout, on_spawn=spawned)
                finally:
                    with self._mutex:  # a finished group's id may be reused: never signal it later
                        self._groups.difference_update(mine)
                batch.add(c, how, outcome, seconds)
                c = None
            self._report(batch.flush())
        except BaseException as e:  # noqa: BLE001 - reported by run()
            if c is not None:
                c.abandon()  # left for requeue_dead, exactly as if this process had died
            batch.abandon()
            self._errors.append(e)
            self.stopping.set()

    def _report(self, results: list[Result]) -> None:
        if not results:
            return
        with self._mutex:
            self.results.extend(results)
        for r in results:
            self.on_result(r)

    def run(self) -> list[Result]:
        """Process until the queue is empty (`once`) or `stop()`; re-raise the first error a thread hit."""
        threads = [threading.Thread(target=self._loop, name=f"e3-worker-{i}", daemon=True) for i in range(self.workers)]
        serving = queue.serving_lock(self.repo, self.runner).acquire()  # so e3 start leaves us work
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            self.stop()
            deadline = time.monotonic() + 10  # what is still running after that is left to requeue_dead
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            raise
        finally:
            serving.release()
        if self._errors:
            raise self._errors[0]
        return self.results

    def stop(self) -> None:
        """Claim nothing more; kill running spawned tasks (they are recorded as failed or cancelled)."""
        self.stopping.set()
        from e3.exec.invocation import kill_group

        with self._mutex:
            groups = list(self._groups)
        for g in groups:
            try:
                os.killpg(g, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for g in groups:
            kill_group(g)


def run_queue(repo: "Repository", runner: str = queue.DEFAULT_RUNNER, **kw) -> list[Result]:
    """Process `runner`'s queue until it is empty; return what happened to each execution."""
    return Worker(repo, runner, once=True, **kw).run()


__all__: Iterable[str] = ["Result", "Worker", "process", "run_queue", "known_outcome", "write_outputs"]
