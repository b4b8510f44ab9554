"""The job runner `e3 start` embeds (e3.exec.scheduler.JobRunner): the durable queue, served by warm workers here or on a cluster.

Each job the scheduler submits gets a queue entry (queue/local/). What this
process has room to run is handed to the run's executor (e3.exec.executors:
the local pool of warm workers, or a Dask cluster), and its entry is written
already claimed only once the execution has run for `CLAIM_AFTER` seconds
(see `_start_fresh`; a job the scheduler pipelines behind a running one goes
straight to that one's warm worker, `follow`): most executions of a large run end sooner and never
touch the queue directory. While workers started by hand (`e3-run-task`)
serve the queue, a window of the rest waits on the queue (written in
batches), where such a worker may claim an entry first; then this process
follows that execution through its record instead.

Records: `success` / `failed` / `error` with the output when a job ends (no
`running` record: the claim's flock says who runs it, once it is written),
written without fsync by the worker that ran the job, after it answered (for a
Dask worker, by this process's writer thread): in a chain of tasks the next
one runs on another worker meanwhile. When a worker could not (it
died), this process writes the record, after handing the jobs the outcome
released to the workers (`settle`). The scheduler syncs the object store once per
batch before committing outputs to the workspace, and only then are the
claims completed (`release`). Whatever dies when, the next
run finds either a recorded outcome (reused) or a requeued entry or none, its
job derived again from the dataflow (run again).
"""
from __future__ import annotations

import concurrent.futures
import time
from collections import deque
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Iterable

from e3.storage import queue, records
from e3.exec.scheduler import Job, uncommitted_limit
from e3.exec.invocation import Outcome

if TYPE_CHECKING:
    from e3.exec.executors import Executor
    from e3.storage.repository import Repository

RUNNER = queue.DEFAULT_RUNNER
PREFETCH = 2
"""Executions handed to each warm worker at a time (the one it runs, the others sent behind it),
so none idles while this process bookkeeps."""
SHORT_PREFETCH = 12
"""...while executions are short (`SHORT`): then this process also takes in several answers per
wake (e3.exec.pool.GATHER), and a request queued behind another waits little."""
SHORT = 0.02
"""Seconds under which the executions' recent average run time counts as short."""
SHARED = 4
"""Further executions per warm worker left on the queue for workers started by hand."""
FOREIGN_POLL = 0.05
"""Seconds between looks at executions claimed by other workers."""
SERVED_CHECK = 0.25
"""Seconds between looks for workers started by hand (e3.storage.queue.served)."""
NOT_RUN = ("cached", "skipped")
"""Outcomes of a job handed over pipelined (`follow`) that the worker did not run."""
CLAIM_AFTER = 0.1
"""Seconds an execution this process started runs before its claimed entry is written (see `_start_fresh`)."""


class _LateClaim:
    """The claim of an execution handed to this process's executor, written only if it runs long
    (`QueueExecutor._write_late_claims`); until then completing or releasing it does nothing.
    Its entry is made only when needed (most executions end first)."""

    __slots__ = ("job", "execution_id", "workspace", "force", "claim")

    def __init__(self, job: Job, execution_id: str, workspace: str, force: bool) -> None:
        self.job = job
        self.execution_id = execution_id
        self.workspace = workspace
        self.force = force
        self.claim: queue.Claim | None = None

    @property
    def entry(self) -> queue.Entry:
        """The execution's entry; a pipelined job's task_id and inputs are known once the job it follows ended."""
        return _entry(self.job, self.execution_id, self.workspace, self.force)

    def complete(self) -> None:
        if self.claim is not None:
            self.claim.complete()

    def release(self) -> None:
        if self.claim is not None:
            self.claim.release()


class QueueExecutor:
    def __init__(
        self,
        repo: "Repository",
        ws: str,
        *,
        concurrency: int = 4,
        timeout: float | None = None,
        spawn: bool = False,
        force: bool = False,
        executor: "Executor | None" = None,
    ) -> None:
        """`executor` runs the executions (e3.exec.executors); None: a local WorkerPool of
        `concurrency` warm workers, started when first needed."""
        self.repo = repo
        self.force = force
        self.ws = ws
        self.concurrency = concurrency
        self.timeout = timeout
        self.spawn = spawn
        self._pool: "Executor | None" = executor
        self._to_enqueue: deque[Job] = deque()
        """Submitted by the scheduler, not yet on the queue (their entries are made when they go)."""
        self._waiting: deque[tuple[Job, queue.Entry]] = deque()
        """Enqueued, not yet claimed by this process."""
        self._running: dict[concurrent.futures.Future, tuple[Job, "queue.Claim | _LateClaim", datetime, concurrent.futures.Future]] = {}
        """Future -> (job, its claim, when it started, the future of its record)."""
        self._unclaimed: dict[concurrent.futures.Future, _LateClaim] = {}
        """Running futures whose claimed entry is not written yet (see `_start_fresh`)."""
        self._foreign: dict[str, Job] = {}
        """execution id -> job, for executions another worker claimed."""
        self._claims: dict[str, "queue.Claim | _LateClaim"] = {}
        """task_id -> claim kept until the job's output is committed."""
        self._starting: tuple[Job, queue.Claim] | None = None
        self._known: list[tuple[Job, queue.Claim, Outcome]] = []
        """Claimed entries whose outcome was already recorded (a worker died before completing them)."""
        self._served_at = -SERVED_CHECK
        self._served = False
        self._announced: set[concurrent.futures.Future] = set()
        """Running futures `began` has reported."""
        self._began: list[Job] = []
        """Jobs that started and that `began` has yet to report."""
        self._unrecorded: list[tuple[Job, "queue.Claim | _LateClaim", datetime, Outcome, concurrent.futures.Future]] = []
        """Finished here and passed to the scheduler, record not yet known to be written (see `settle`)."""
        self._adoptable: dict[tuple[str, str], list[queue.Entry]] = {}
        """(task, task_id) -> entries of this workspace that earlier runs left pending (see `adopt`)."""
        self._adopted: set[str] = set()
        """Execution ids of those entries taken by a job of this run."""
        self._adoptable_tasks: set[str] = set()
        """The tasks of those entries: a job of theirs is not pipelined (`follow`), so that it may take one."""
        self._handed: dict[int, concurrent.futures.Future] = {}
        """id(job) -> its future, for the jobs running in the executor (a job may follow one, `follow`)."""
        self._following = 0
        """Running jobs handed over pipelined (`follow`): they take no room from the others."""
        self._ran = SHORT
        """The executions' recent average run time, in seconds (a moving average): are they short?"""
        self._uncommitted_limit = uncommitted_limit()
        """Finished executions the scheduler lets a batch hold before it commits (see `wait`)."""

    # ------------------------------------------------------------ JobRunner (e3.exec.scheduler)

    def adopt(self, entries: Iterable[queue.Entry]) -> None:
        """Take over entries of this workspace left pending by earlier runs (a killed run's
        claims, requeued; `e3-enqueue` with no worker to serve it): a job for the same execution
        (the same task on the same inputs) runs that entry, under its execution id, instead of
        a new one. What no job takes is in `leftovers()` at the end, for the caller to `drop`.

        An entry whose execution has ended already (its outcome recorded before its run was
        killed) is completed here instead: this run decides on its task afresh, and reusing
        that outcome would report an earlier run's failure as this run's (see
        e3.exec.queue_worker.complete_ended)."""
        from e3.exec.queue_worker import complete_ended

        for entry in complete_ended(self.repo, RUNNER, entries):
            self._adoptable.setdefault((entry.task, entry.task_id), []).append(entry)
            self._adoptable_tasks.add(entry.task)

    def leftovers(self) -> list[queue.Entry]:
        """The adoptable entries that no job of this run took."""
        return sorted((e for found in self._adoptable.values() for e in found), key=lambda e: e.execution_id)

    def drop(self, items: list[tuple[queue.Entry, str]]) -> list[tuple[queue.Entry, str]]:
        """Take these entries off the queue unrun, each with an `error` record giving its reason
        (see e3.exec.queue_worker.drop); return those dropped (an entry a live worker has claimed
        meanwhile is that worker's)."""
        from e3.exec.queue_worker import drop

        reasons = {e.execution_id: why for e, why in items}
        dropped = drop(self.repo, RUNNER, [(e, f"dropped from the queue by e3 start: {why}") for e, why in items])
        return [(e, reasons[e.execution_id]) for e in dropped]

    def submit(self, job: Job) -> None:
        found = self._adoptable.get((job.name, job.task_id))
        for i, entry in enumerate(found or ()):
            # A forced run takes only a forced entry: a worker reuses the memo for any other.
            if entry.force or not self.force:
                del found[i]
                self._adopted.add(entry.execution_id)
                self._waiting.append((job, entry))
                return
        self._to_enqueue.append(job)

    @property
    def pipelines(self) -> bool:
        """Can a job be handed over behind another (`follow`)? The local pool's warm workers can."""
        return self._pool is None or bool(getattr(self._pool, "follows", False))

    def follow(self, job: Job, lead: Job) -> bool:
        """Hand `job` over to run right behind `lead`, which is running in the executor, on its
        output (`Job.after`: the worker computes its task_id and checks the memo; e3.exec.pool);
        False if `lead` is not in the executor (not yet, or no longer).

        Its entry is written (claimed) only if it runs long, as `_start_fresh`'s, once the
        scheduler knows its task_id; a kill before then leaves what `_start_fresh` says."""
        fut = self._handed.get(id(lead))
        if fut is None or fut.done() or not self.pipelines or job.name in self._adoptable_tasks:
            return False
        claim = _LateClaim(job, queue.new_execution_id(), self.ws, self.force)  # its task_id: once `lead` ends
        (fut,) = self._hand_over([(job, claim, claim.execution_id)], after=fut)
        self._unclaimed[fut] = claim
        self._following += 1
        return True

    def settle(self) -> None:
        """Hand submitted jobs to the workers first, then see the records of those that finished written."""
        self._dispatch()
        self._write_records()

    def began(self) -> list[Job]:
        """The jobs whose execution started since the last call: in a warm worker (not when handed
        to one: a request sent behind a busy worker waits there), handed to a Dask cluster (which
        does not say when a worker starts it), or taken by another worker."""
        out, self._began = self._began, []
        if any(fut.done() for fut in self._running):
            # An end not taken in yet (`wait` takes in a few at a time, and driving the workers
            # meanwhile ends more) is told first, so the events never show more tasks running than
            # there are places: the starts behind it are told at the next look.
            return out
        due = time.monotonic() - CLAIM_AFTER
        for fut, (job, *_) in self._running.items():
            began_at = getattr(fut, "began_at", None)
            # A pipelined job may be a memo hit the worker answers at once: one that has not
            # answered after CLAIM_AFTER runs (until then, reported if it ran, when it ends).
            if job.pipelined and (not job.task_id or began_at is None or began_at > due):
                continue
            if fut not in self._announced and began_at is not None:
                self._announced.add(fut)
                job.started = began_at  # its time counts from here, not from its wait for a worker
                out.append(job)
        return out

    def wait(self, timeout: float) -> list[tuple[Job, Outcome]]:
        self.settle()
        done: list[tuple[Job, Outcome]] = []
        for job, claim, outcome in self._known:
            self._claims[job.task_id] = claim
            done.append((job, outcome))
        self._known.clear()
        if self._running:
            wait_for = 0 if done else FOREIGN_POLL if self._foreign else timeout
            if wait_for and self._unclaimed:
                wait_for = min(wait_for, self._next_late_claim(wait_for))
            finished = self._pool.wait(list(self._running), wait_for)
            # Each outcome taken in holds its claim until the scheduler commits its output, which
            # it does once a batch holds its most: no more are taken in at once than that leaves
            # room for (the rest at the next call, at once), or a few.
            finished = finished[: max(PREFETCH * self.concurrency, self._uncommitted_limit - len(self._claims))]
            now, ran = time.monotonic(), self._ran
            for fut in finished:
                job, claim, started, recorded = self._running.pop(fut)
                began_at = getattr(fut, "began_at", None)
                if began_at is not None:
                    ran += (now - began_at - ran) / 8
                self._unclaimed.pop(fut, None)  # ended: its entry is never written
                self._handed.pop(id(job), None)
                outcome = self._outcome(fut)
                run = outcome.status not in NOT_RUN
                if job.pipelined:
                    self._following -= 1
                if fut in self._announced:
                    self._announced.discard(fut)
                elif began_at is not None and run:
                    job.started = began_at
                    self._began.append(job)  # it started and ended between two looks
                if run:
                    self._unrecorded.append((job, claim, started, outcome, recorded))
                    self._claims[job.task_id] = claim
                else:  # pipelined, and the worker did not run it: nothing to record or commit
                    claim.complete()
                done.append((job, outcome))
            self._ran = ran
            self._write_late_claims()
        elif self._foreign or self._waiting or self._to_enqueue:
            time.sleep(min(timeout, FOREIGN_POLL))
        done.extend(self._poll_foreign())
        return done

    def release(self, jobs: list[Job]) -> None:
        self._write_records()  # completion is recorded before a claim goes
        for job in jobs:
            claim = self._claims.pop(job.task_id, None)
            if claim is not None:
                claim.complete()

    def cancel(self) -> list[Job]:
        cancelled = []
        self._write_records()
        pool = self._pool
        for fut, (job, claim, started, recorded) in list(self._running.items()):
            if pool is not None:
                pool.cancel(fut)
            outcome = self._outcome(fut) if fut.done() else None
            if outcome is not None and outcome.status != "cancelled":
                # It ended before it could be stopped: its record is the one of that end (the
                # worker's, or ours if it could not), never a second one saying "cancelled".
                self._unrecorded.append((job, claim, started, outcome, recorded))
                self._write_records()
            else:
                self._record(job, claim, started, Outcome("cancelled", message="cancelled"))
            claim.complete()
            cancelled.append(job)
        self._running.clear()
        self._unclaimed.clear()
        self._handed.clear()
        self._following = 0
        self._announced.clear()
        self._began.clear()
        for job, claim, _ in self._known:
            claim.release()  # recorded already: whoever claims it next only completes it
            cancelled.append(job)
        self._known.clear()
        if self._starting is not None:
            job, claim = self._starting
            self._starting = None
            claim.complete()
            cancelled.append(job)
        cancelled.extend(self._to_enqueue)
        for job, entry in self._waiting:
            cancelled.append(job)
        self._to_enqueue.clear()
        for job, entry in self._waiting:
            claim = queue.claim_entry(self.repo, RUNNER, entry.execution_id)
            if claim is None:
                continue
            if entry.execution_id in self._adopted:
                claim.release()  # an earlier run's entry: left as this run found it
            else:
                claim.complete()  # never started: take it off the queue
        self._waiting.clear()
        cancelled.extend(self._foreign.values())
        self._foreign.clear()
        return cancelled

    def close(self) -> None:
        self._write_records()  # a requeued entry with a record is completed, not run again
        for claim in self._claims.values():
            claim.release()  # not committed: back to the queue state a crash would leave
        self._claims.clear()
        if self._pool is not None:
            self._pool.shutdown(cancel=True)
            self._pool = None
        # Completed queue entries still being deleted in the background are left for the
        # next process that completes a claim: waiting here would make every run pay for them.

    # ------------------------------------------------------------ internals

    def _dispatch(self) -> None:
        """Claim as much as this process has room for; leave a window of the rest on the queue.

        Entries already on the queue go first (oldest first); new ones that fit are handed to
        the executor, their entries written straight into `claimed/` if they run long
        (`_start_fresh`). While workers started by hand (`e3-run-task`) serve the
        queue, a window of the backlog waits there for them; this process follows what they
        take through their records.
        """
        prefetch = SHORT_PREFETCH if self._ran < SHORT else PREFETCH
        room = prefetch * self.concurrency - len(self._running) + self._following
        while room > 0 and self._waiting:
            job, entry = self._waiting.popleft()
            claim = queue.claim_entry(self.repo, RUNNER, entry.execution_id)
            if claim is None:  # a worker started by hand took it: follow its record
                self._foreign[entry.execution_id] = job
                self._began.append(job)
            else:
                self._start(job, claim)
                room -= 1
        if room > 0 and self._to_enqueue:
            self._start_fresh([self._to_enqueue.popleft() for _ in range(min(room, len(self._to_enqueue)))])
        visible = SHARED * self.concurrency if self._to_enqueue and self._hand_started_workers() else 0
        if self._to_enqueue and len(self._waiting) < visible:
            # Only a window of the backlog is on the queue at a time: enough for workers
            # started by hand to take some, few enough that the queue directory stays small.
            n = visible - len(self._waiting)
            batch = [self._to_enqueue.popleft() for _ in range(min(n, len(self._to_enqueue)))]
            entries = [_entry(job, queue.new_execution_id(), self.ws, self.force) for job in batch]
            queue.enqueue_many(self.repo, RUNNER, entries, durable=False)
            self._waiting.extend(zip(batch, entries))

    def _hand_started_workers(self) -> bool:
        """Is a worker started by hand serving the queue? Without one, the backlog stays here
        (the next run derives it again from the dataflow) and every job goes straight to a claim."""
        now = time.monotonic()
        if now - self._served_at >= SERVED_CHECK:
            self._served_at = now
            self._served = queue.served(self.repo, RUNNER)
        return self._served

    def _start(self, job: Job, claim: queue.Claim) -> None:
        """Run an entry claimed from the queue."""
        from e3.exec.queue_worker import known_outcome

        self._starting = (job, claim)  # a Ctrl-C from here on still finds the claim
        # Check after claiming, not before: an entry that a worker ran, recorded and died
        # holding is requeued, and whoever claims it next must not run it again.
        known = known_outcome(self.repo, claim.entry)
        if known is not None:
            self._known.append((job, claim, known[1]))
        else:
            self._hand_over([(job, claim, claim.entry.execution_id)])
        self._starting = None

    def _start_fresh(self, jobs: list[Job]) -> None:
        """Run new jobs, each under an entry which is written on the queue already claimed (it was
        never anyone else's) only if the execution is still running `CLAIM_AFTER` seconds after it
        began.

        No one needs the entry of an execution this process runs before then. Its claim says
        the execution is live to readers (`e3 workspace status`, `e3 repo status`, `e3-enqueue`,
        which then does not queue the task again): for an execution of milliseconds, the delay
        only hides what would soon be gone, as the backlog not yet handed to a worker is never
        on the queue either. And it is not what makes a crash lose nothing: the executor's
        workers die with this process (a pool worker has PR_SET_PDEATHSIG; a Dask worker
        records nothing itself: this process does), and the claim's flock is this process's
        own, so a kill at any moment leaves either a dead claim, which the next run requeues and
        then adopts, or none, and then the next run derives the job again from the dataflow and
        finds a success recorded meanwhile in the memo, or runs it again (a failure, or no
        record), under a new execution id, as it would the adopted entry. So in a run of many
        short tasks the queue costs no file per task; a long one still shows as claimed.
        tests/test_start.py kills a run holding a task that has no entry yet."""
        claims = [_LateClaim(job, queue.new_execution_id(), self.ws, self.force) for job in jobs]
        futures = self._hand_over([(c.job, c, c.execution_id) for c in claims])
        unclaimed = self._unclaimed
        for fut, claim in zip(futures, claims):
            unclaimed[fut] = claim

    def _next_late_claim(self, longest: float) -> float:
        """Seconds until the next running execution's claimed entry is due (at most `longest`)."""
        now = time.monotonic()
        left = longest
        for fut in self._unclaimed:
            began_at = getattr(fut, "began_at", None)
            if began_at is not None:
                left = min(left, max(0.0, began_at + CLAIM_AFTER - now))
        return left

    def _write_late_claims(self) -> None:
        """Write the claimed entry of each execution that began `CLAIM_AFTER` seconds ago and runs still.

        Counted from when the executor says the execution began (not when it was handed over:
        a request sent behind a busy worker waits there, and is not running); and "still" once
        the answers that arrived meanwhile are taken in: after this process was busy for a while
        (a large commit), most of the executions it has not looked at since have ended."""
        if not self._unclaimed:
            return
        due = time.monotonic() - CLAIM_AFTER
        late = [f for f in self._unclaimed if (b := getattr(f, "began_at", None)) is not None and b <= due]
        if not late:
            return
        self._pool.wait(late, 0)
        for fut in late:
            job = self._running[fut][0]
            if not fut.done() and job.task_id:  # (a pipelined job's, once its task_id is known)
                claim = self._unclaimed.pop(fut)
                claim.claim = queue.enqueue_claimed(self.repo, RUNNER, claim.entry)

    def _hand_over(
        self, executions: list[tuple[Job, "queue.Claim | _LateClaim", str]], after: concurrent.futures.Future | None = None
    ) -> list[concurrent.futures.Future]:
        """Hand these executions (job, its claim, execution id) to the executor together (one write
        per worker; `after`: pipelined behind that future's, see `follow`); they are running from
        here on, each with its start time and the future of its record. Their futures."""
        from e3.exec.executors import DrivenFuture, TaskRequest

        # No `running` record: the claim's flock says who runs it (once the execution has run
        # long enough to get one) and dies with its holder, and replacing the record pointer
        # twice per task would double its cost.
        started = records.now()
        now = time.monotonic()
        root, timeout, spawn, pool = str(self.repo.root), self.timeout, self.spawn, self._pool_started()
        requests = []
        for job, _, execution_id in executions:
            job.started = now
            requests.append(TaskRequest(
                repo=root,
                task_hash=job.task_hash,
                input_hashes=job.input_hashes,
                task_id=job.task_id,
                execution_id=execution_id,
                timeout=timeout,
                force_spawn=spawn,
                durable=False,
                command_ir=job.command_ir,
                record_started=started,
                recorded=DrivenFuture(pool),
                after=after,
                memo=after is not None and job.memo,
            ))
        futures = pool.submit_all(requests)
        handed, running = self._handed, self._running
        for fut, (job, claim, _), request in zip(futures, executions, requests):
            handed[id(job)] = fut
            running[fut] = (job, claim, started, request.recorded)
        return futures

    def warm_up(self) -> None:
        """Have the local pool's first worker load East now, before a job needs it (the run will
        likely have one); a worker given no task is stopped at the end of the run."""
        pool = self._pool_started()
        if hasattr(pool, "warm_up"):
            pool.warm_up()

    def _pool_started(self) -> "Executor":
        if self._pool is None:
            self._pool = local_pool(self.concurrency)
        return self._pool

    @staticmethod
    def _outcome(fut: concurrent.futures.Future) -> Outcome:
        try:
            o = fut.result()
        except concurrent.futures.CancelledError:
            return Outcome("cancelled", message="cancelled")
        except Exception as e:  # the pool failed, not the task: still only this task fails
            return Outcome("error", message=f"worker pool: {e}")
        return o

    def _record(self, job: Job, claim: "queue.Claim | _LateClaim", started: datetime, outcome: Outcome) -> None:
        from e3.exec.queue_worker import record_outcome

        if not job.task_id:  # pipelined behind a task that did not succeed: it never ran
            return
        record_outcome(self.repo, claim.entry, outcome, started, durable=False)

    def _write_records(self) -> None:
        """Wait for the workers' records of finished jobs; write those a worker could not."""
        while self._unrecorded:
            job, claim, started, outcome, recorded = self._unrecorded.pop(0)
            if not recorded.done():
                self._pool.wait([recorded], None)  # drives the workers meanwhile
            if recorded.result() is None:
                self._record(job, claim, started, outcome)

    def _poll_foreign(self) -> list[tuple[Job, Outcome]]:
        done: list[tuple[Job, Outcome]] = []
        if not self._foreign:
            return done
        queue.requeue_dead(self.repo, RUNNER)  # a worker that died puts its entry back...
        for eid, job in list(self._foreign.items()):
            outcome = self._foreign_outcome(eid, job)
            if outcome is not None:
                del self._foreign[eid]
                done.append((job, outcome))
                continue
            claim = queue.claim_entry(self.repo, RUNNER, eid)
            if claim is not None:  # ...and we run it ourselves
                del self._foreign[eid]
                self._start(job, claim)
        return done

    def _foreign_outcome(self, eid: str, job: Job) -> Outcome | None:
        """The outcome of an execution another worker took, once it is recorded."""
        s = records.summary(self.repo, job.task_id)
        if s is None or s.kind == "running":
            return None
        reused = records.reusable_output(self.repo, s)
        if reused is not None and not self.force:
            return Outcome("success", reused)  # this execution or an equal one: the memo holds
        from e3.exec.queue_worker import outcome_of

        rec = records.read(self.repo, s)
        if rec.execution_id != eid:
            return None  # an older execution's record: ours is not finished
        o = outcome_of(rec)
        return o if o.status == "success" else replace(o, message=f"{o.message} (in another worker)")


def local_pool(concurrency: int) -> "Executor":
    """The local pool of `concurrency` warm workers a QueueExecutor runs its executions on when
    given no executor (its workers start when first needed, or at `warm_up`)."""
    from e3.exec.pool import WorkerPool

    return WorkerPool(concurrency, behind=SHORT_PREFETCH - 1)


def _entry(job: Job, execution_id: str, workspace: str, force: bool) -> queue.Entry:
    """A job's queue entry (a pipelined job's task_id and inputs once the job it follows ended)."""
    return queue.Entry(
        execution_id=execution_id,
        workspace=workspace,
        task=job.name,
        task_hash=job.task_hash,
        task_id=job.task_id,
        input_hashes=job.input_hashes if job.task_id else (),
        output=job.output,
        # The scheduler already checked the memo; a worker that finds this entry after a
        # crash of this process checks it again and reuses what finished meanwhile.
        force=force,
    )
