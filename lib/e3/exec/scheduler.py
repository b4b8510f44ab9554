"""Run a workspace's dataflow: every task that is not up to date, in dataflow order.

The scheduler keeps the dataset tree in memory (the workspace's last commit
plus outputs not yet committed) and walks the graph event by event:

- A task is *evaluated* once every task upstream of it is settled. Its inputs'
  hashes give its task_id; a success recorded for that id is reused at once
  (a cache hit costs one small file read, or none when e3 start's memo index,
  e3.repo.memo_index, answers for it, and a stat of its output), otherwise it
  is queued and run.
- A finished task's output enters the in-memory tree and releases its
  dependents; outputs reach the workspace in batches (one commit per flush,
  at most every `FLUSH_INTERVAL` seconds, less often when commits get
  expensive, and at the end; the batch is made durable and committed on a
  thread of its own while the tasks go on, one at a time, except the last), so
  history stays readable and the cost stays linear in the number of tasks. A batch never
  holds more than `uncommitted_limit()` finished tasks, whatever the time:
  each holds its queue entry's claim, an open file, until its commit.
- Reactive, like the original engine: a flush re-reads the workspace. If an
  input changed under us (a concurrent `e3 set`), every task downstream of
  the change is evaluated again in the same run, and an output computed from
  inputs that have since changed is never written.
- A failed task blocks only its dependents; independent tasks go on (the
  original engine stops everything: we keep going and report at the end).
- Pipelined: a task waiting on nothing but a running task's output is handed
  to the runner at once, to run right behind it (`_pipeline`), its task_id
  and memo check left to the worker; this process settles it as any other
  once it has taken in the output it waited on (`_resolve`).

Completion of an execution is recorded (output stored, record written) by
whoever ran it; the claim on its queue entry is released only after its
output is committed to the workspace, so a crash at any point loses nothing
and the next run reuses what finished.
"""
from __future__ import annotations

import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol

from e3 import collector
from e3.errors import E3Error, ExecutorUnavailable, TaskNotFound
from e3.storage import records
from e3.storage.identity import task_id as make_task_id
from e3.exec.invocation import Outcome
from e3.model.paths import TreePath, format_tree_path

if TYPE_CHECKING:
    from e3.exec.plan import Graph, Node
    from e3.storage.repository import Repository

FLUSH_INTERVAL = 0.25
"""Least seconds between workspace commits while tasks are finishing."""
FLUSH_SHARE = 0.1
"""Most of a run's time spent committing: a commit's cost grows with the dataset tree, so
the interval grows with it (keeps a 10,000-task run linear, not quadratic)."""

PIPELINE_DEPTH = 16
"""Most jobs of a chain pipelined ahead of what this process has taken in (see `Scheduler._pipeline`):
enough for the workers to go on while it commits, few enough for the pipe to a worker."""

MAX_UNCOMMITTED = 4096
"""Most finished tasks a batch holds before it is committed, however recent the last commit."""


def uncommitted_limit() -> int:
    """Finished tasks a batch may hold: `MAX_UNCOMMITTED`, or a quarter of this process's open-file
    limit if that is less (a task that ran long holds its claim's file open until its batch is
    committed; a run of 100,000 tasks whose commits had grown slow once ran out of files)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_UNCOMMITTED
    return min(MAX_UNCOMMITTED, max(16, soft // 4))


# Task states reported to observers and in the summary.
RAN, CACHED, FAILED, SKIPPED, STUCK, CANCELLED = "ran", "cached", "failed", "skipped", "stuck", "cancelled"


class RunError(E3Error):
    pass


@dataclass(slots=True)
class Job:
    """One execution the scheduler wants: a task on exact inputs."""

    name: str
    task_hash: str
    input_hashes: tuple[str, ...]
    task_id: str
    output: TreePath
    started: float = field(default_factory=time.monotonic)
    """When it was submitted, until the runner says when a worker began it (time.monotonic)."""
    command_ir: str | None = None
    """The task's command (IR hash), from the plan: the worker need not decode the task object."""
    after: "Job | None" = None
    """Pipelined behind this running job, whose output it takes (see `Scheduler._pipeline`): until
    that one ends here, its `input_hashes` hold None for that output and its `task_id` is ""."""
    follower: "Job | None" = None
    """The job pipelined behind this one, if any."""
    pipelined: bool = False
    """Handed over before its inputs were known here: the worker checks the memo (unless `memo` is False)."""
    memo: bool = True
    """May a recorded success stand for it (False: --force)?"""


class JobRunner(Protocol):
    """What the scheduler hands its jobs to: it claims each on the durable queue, has it run (by an
    executor of e3.exec.executors), and keeps the claim until `release`. e3 start's is
    e3.exec.queue_executor.QueueExecutor. It may also have `began() -> list[Job]`: the jobs a
    worker started since the last call (see `Scheduler._began`)."""

    def submit(self, job: Job) -> None: ...

    # It may also have `follow(job, lead) -> bool`: hand over `job` (pipelined, `Job.after`) to run
    # right behind `lead` where that runs, without waiting for this process (False: not now), and
    # `pipelines`: whether its executor can (see `Scheduler._pipeline`).

    def settle(self) -> None:
        """Start what was submitted, then do the bookkeeping of what finished (records)."""

    def wait(self, timeout: float) -> list[tuple[Job, Outcome]]: ...

    def release(self, jobs: list[Job]) -> None:
        """The jobs' outputs are committed: their queue claims may go."""

    def cancel(self) -> list[Job]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class TaskReport:
    name: str
    state: str
    seconds: float = 0.0
    message: str | None = None
    task_id: str | None = None


@dataclass
class Summary:
    reports: dict[str, TaskReport] = field(default_factory=dict)
    commits: int = 0
    seconds: float = 0.0
    reruns: int = 0
    """Tasks evaluated again because an input changed during the run."""
    dropped: list[tuple[str, str, str]] = field(default_factory=list)
    """(task, execution id, why) of queue entries left by earlier runs that this run dropped unrun."""

    def count(self, state: str) -> int:
        return sum(1 for r in self.reports.values() if r.state == state)

    @property
    def ok(self) -> bool:
        return all(r.state in (RAN, CACHED) for r in self.reports.values())


Observer = Callable[[str, TaskReport | None], None]
"""Called with (event, report): 'start' when a job is submitted, 'end' when a task settles."""


@dataclass(slots=True)
class _State:
    pending_upstream: int = 0
    settled: str | None = None  # RAN / CACHED / FAILED / SKIPPED / STUCK, or None while open
    running: Job | None = None
    forced: bool = False  # a --force run already happened for this task in this run


class Scheduler:
    def __init__(
        self,
        repo: "Repository",
        ws: str,
        graph: "Graph",
        datasets: dict[TreePath, str],
        commit: str,
        runner: JobRunner,
        *,
        selected: set[str] | None = None,
        force: bool | set[str] = False,
        observer: Observer | None = None,
        read_workspace: Callable[[str], tuple[str, dict[TreePath, str] | None]],
        commit_outputs: Callable[[Callable[[Mapping[TreePath, str]], dict[TreePath, str] | None], str], tuple[str, dict[TreePath, str] | None]],
        make_durable: Callable[[], None] = lambda: None,
        prepare_commit: Callable[[], None] = lambda: None,
        cancelled: threading.Event | None = None,
        memo: Callable[[str], str | None] | None = None,
        run_times: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self.repo = repo
        self.memo = memo or (lambda task_id: records.reusable_output(repo, records.summary(repo, task_id)))
        """task_id -> the output of its recorded success, if reusable (e3 start's reads a memo index,
        e3.repo.memo_index, instead of every pointer)."""
        self.ws = ws
        self.graph = graph
        self.data = dict(datasets)
        """The dataset tree as this run sees it: last commit plus outputs not yet committed."""
        self.commit = commit
        self.moved = False
        """Another writer moved the workspace during the run (its tree was taken in, `_rebase`)."""
        self.runner = runner
        self.selected = set(graph.nodes) if selected is None else selected
        self.force = set(graph.nodes) if force is True else set(force or ())
        """The tasks run once even if a cached result exists (--force: every task, or the ones --filter names)."""
        self.observer = observer or (lambda event, report: None)
        self.read_workspace = read_workspace
        self.commit_outputs = commit_outputs
        """Commits `fn(the workspace's datasets)`'s changes: the new commit, and the workspace's
        datasets if another writer had moved it (None: this run's tree is the workspace's).
        Called on the background thread (`flush_behind`) or this one, one call at a time."""
        self.make_durable = make_durable
        """Makes the outputs and records written so far durable (a sync of the object store):
        called before their batch is committed, on a thread of its own while tasks go on."""
        self.prepare_commit = prepare_commit
        """Loads what the first commit needs (git, the workspace's state): called once jobs are
        running, while the workers start up, instead of at the first flush."""
        self.state = {name: _State() for name in self.selected}
        self.pending: dict[str, tuple[Job, str]] = {}
        """Task name -> (job, output hash) finished but not yet committed."""
        self.in_flight = 0
        """Jobs submitted and not yet finished (kept as a count: the loop asks after every event)."""
        self.ready: deque[str] = deque()
        self.run_times = run_times
        """Loads task name -> seconds of its last run (e3.repo.run_times), when tasks ready at once
        are to be handed out longest path first; None: in the graph's order."""
        self._longest: dict[str, float] | None = None
        self._to_submit: list[Job] = []
        """Jobs evaluated in this drain, handed to the runner together at its end, ordered."""
        self._leads: list[Job] = []
        """Running jobs that a waiting task may yet be pipelined behind (`_pipeline`)."""
        self.seconds: dict[str, float] = {}
        """Task name -> seconds its execution in this run took on a worker (ran or failed)."""
        self.blocked: deque[tuple[str, str]] = deque()
        self.settled_jobs: list[Job] = []
        """Finished jobs with nothing to commit: their claims go at the next flush."""
        self.summary = Summary()
        self.cancelled = cancelled or threading.Event()
        """Set (from any thread) to end the run at its next step, as Ctrl-C does but without raising."""
        self.last_flush = time.monotonic()
        self.flush_interval = FLUSH_INTERVAL
        self.max_uncommitted = uncommitted_limit()
        self._syncer = None
        """The thread batches are made durable on in the background (flush_behind), once one is."""
        self._syncing: tuple[tuple[dict[str, tuple[Job, str]], list[str]], Any] | None = None
        """The batch being made durable in the background, and the future of that."""

    # ------------------------------------------------------------ evaluation

    def start(self) -> None:
        """Open every selected task, then evaluate those with nothing unsettled upstream, in order."""
        with collector.paused():  # all of a no-op run: a state, a report and an event per task
            self._start()

    def _start(self) -> None:
        nodes, selected, state = self.graph.nodes, self.selected, self.state
        everything = len(selected) == len(nodes)  # every upstream task is selected too
        for name in selected:
            st = state[name]
            if st.running is None:
                st.settled = None
            upstream = nodes[name].upstream
            st.pending_upstream = len(upstream) if everything else sum(1 for u in upstream if u in selected)
        self.ready.extend(n for n in self.graph.order if n in selected and state[n].pending_upstream == 0)
        self._drain()

    def _evaluate(self, node: "Node") -> None:
        data = self.data
        task = node.task
        inputs = []
        for path in task.inputs:
            h = data.get(path)
            if h is None:
                why = "upstream task did not produce it" if path in self.graph.producer else "input is unassigned"
                self._settle(node, STUCK, f"waiting on {format_tree_path(path)} ({why})")
                return
            inputs.append(h)
        tid = make_task_id(node.task_hash, inputs)
        st = self.state[node.name]
        if not (node.name in self.force and not st.forced):
            reused = self.memo(tid)
            if reused is not None:
                if data.get(task.output) != reused:  # else nothing to commit (a no-op run: every task)
                    self._produce(node, reused, Job(node.name, node.task_hash, tuple(inputs), tid, task.output))
                self._settle(node, CACHED, task_id=tid, st=st)
                return
        job = Job(node.name, node.task_hash, tuple(inputs), tid, node.task.output, command_ir=node.task.command_ir)
        st.running = job
        self.in_flight += 1
        st.forced = node.name in self.force
        if not hasattr(self.runner, "began"):  # else reported when a worker starts it (_began)
            self.observer("start", TaskReport(node.name, "running", task_id=tid))
        self._to_submit.append(job)
        self._leads.append(job)

    def _produce(self, node: "Node", output_hash: str, job: Job) -> None:
        if self.data.get(node.task.output) != output_hash:
            self.data[node.task.output] = output_hash
            self.pending[node.name] = (job, output_hash)

    def _settle(
        self, node: "Node", state: str, message: str | None = None, task_id: str | None = None, seconds: float = 0.0,
        st: _State | None = None,
    ) -> None:
        """`st`: the task's state, when the caller has it at hand (one lookup per task less)."""
        (st or self.state[node.name]).settled = state
        report = TaskReport(node.name, state, seconds, message, task_id)
        self.summary.reports[node.name] = report
        self.observer("end", report)
        selected, states = self.selected, self.state
        for d in node.downstream:
            if d not in selected:
                continue
            ds = states[d]
            ds.pending_upstream -= 1
            if ds.pending_upstream == 0 and ds.settled is None and ds.running is None:
                if state in (RAN, CACHED):
                    self.ready.append(d)
                else:
                    why = f"upstream task {node.name} {'failed' if state == FAILED else 'did not finish'}"
                    self.blocked.append((d, why))

    def _drain(self) -> None:
        """Evaluate every task made ready, breadth first (a 10,000-task chain must not recurse)."""
        ready, blocked, nodes, states = self.ready, self.blocked, self.graph.nodes, self.state
        while ready or blocked:
            while blocked:
                name, why = blocked.popleft()
                self._settle(nodes[name], SKIPPED, why)
            if ready:
                name = ready.popleft()
                st = states[name]
                if st.pending_upstream == 0 and st.settled is None and st.running is None:
                    self._evaluate(nodes[name])
        self._submit()

    def _submit(self) -> None:
        """Hand the evaluated jobs to the runner: when several became ready at once, those on the
        longest path of known run times first (e3.repo.run_times), so no long task waits behind
        short ones for a worker."""
        jobs, self._to_submit = self._to_submit, []
        if len(jobs) > 1 and self.run_times is not None:
            if self._longest is None:
                times = self.run_times()  # none known (a first run): every path is 0, the graph's order stands
                self._longest = longest_paths(self.graph, times) if times else {}
            longest = self._longest
            if longest:
                jobs.sort(key=lambda job: -longest.get(job.name, 0.0))  # stable: ties keep the graph's order
        for job in jobs:
            self.runner.submit(job)

    def _pipeline(self) -> None:
        """Hand over, behind each running job, the task that waits on nothing but its output, to run
        right after it on the same worker (which computes its task_id and checks the memo, as
        `_evaluate` would): a chain then never waits for this process between two tasks. Up to
        `PIPELINE_DEPTH` jobs of a chain go ahead of what this process has taken in; its tasks
        are then settled here as they would have been (`_finish_one`)."""
        follow = getattr(self.runner, "follow", None)
        if follow is None or not self._leads or not self.runner.pipelines:
            return
        leads, self._leads = self._leads, []
        keep = []
        nodes, states = self.graph.nodes, self.state
        while leads:
            lead = leads.pop()
            if states[lead.name].running is not lead or lead.follower is not None:
                continue  # it ended (or runs again on other inputs), or has one already
            ahead, j = 0, lead
            while j is not None and j.after is not None:
                ahead, j = ahead + 1, j.after
            if ahead >= PIPELINE_DEPTH:
                keep.append(lead)
                continue
            found = self._waiting_on(nodes[lead.name])
            if found is None:
                continue
            node, inputs = found
            st = states[node.name]
            forced = node.name in self.force and not st.forced
            job = Job(node.name, node.task_hash, inputs, "", node.task.output, command_ir=node.task.command_ir,
                      after=lead, pipelined=True, memo=not forced)
            if not follow(job, lead):
                keep.append(lead)  # not handed to a worker yet
                continue
            lead.follower = job
            st.running = job
            st.forced = node.name in self.force
            self.in_flight += 1
            leads.append(job)
        self._leads.extend(keep)

    def _waiting_on(self, node: "Node") -> "tuple[Node, tuple[str | None, ...]] | None":
        """The first task downstream of `node` (running) that waits on nothing else, and its inputs
        with None for `node`'s output."""
        out, nodes, states, data = node.task.output, self.graph.nodes, self.state, self.data
        for d in node.downstream:
            ds = states.get(d)
            if ds is None or ds.pending_upstream != 1 or ds.settled is not None or ds.running is not None:
                continue
            dn = nodes[d]
            inputs = tuple(None if p == out else data.get(p) for p in dn.task.inputs)
            if all(h is not None for h, p in zip(inputs, dn.task.inputs) if p != out):
                return dn, inputs
        return None

    # ------------------------------------------------------------ completion

    def _finished(self, job: Job, outcome: Outcome) -> None:
        self._finish_one(job, outcome)
        self._drain()

    def _finish_one(self, job: Job, outcome: Outcome) -> None:
        node = self.graph.nodes[job.name]
        st = self.state[job.name]
        st.running = None
        self.in_flight -= 1
        follower = job.follower
        if follower is not None:
            job.follower = None
            self._resolve(follower, job, outcome)
        if outcome.status == "skipped":  # pipelined behind a task that did not succeed: it never ran
            self.runner.release([job])
            self._skipped(node, st, job)
            return
        seconds = time.monotonic() - job.started
        current = tuple(map(self.data.get, node.task.inputs))
        if outcome.status != "success" or current != job.input_hashes:
            self.runner.release([job])  # its record says all there is to say
        if outcome.status in ("success", "failed"):
            self.seconds[job.name] = seconds
        if current != job.input_hashes:
            # An input changed while it ran: its result belongs to the old inputs.
            self.summary.reruns += 1
            if st.pending_upstream == 0 and st.settled is None:
                self._evaluate(node)
            return
        if outcome.status == "cached":  # pipelined: the worker found it in the memo, as `_evaluate` would have
            self.memo(job.task_id)  # the lookup `_evaluate` would have made: e3 start's memo index keeps the hit
            if self.data.get(node.task.output) != outcome.output_hash:
                self._produce(node, outcome.output_hash, job)
            self._settle(node, CACHED, task_id=job.task_id, st=st)
        elif outcome.status == "success" and outcome.output_hash:
            self._produce(node, outcome.output_hash, job)
            if node.name not in self.pending:
                self.settled_jobs.append(job)
            self._settle(node, RAN, seconds=seconds, task_id=job.task_id)
        elif outcome.status == "cancelled":
            self._settle(node, CANCELLED, outcome.message, job.task_id, seconds)
        else:
            self._settle(node, FAILED, outcome.message or outcome.status, job.task_id, seconds)

    def _resolve(self, job: Job, lead: Job, outcome: Outcome) -> None:
        """The job pipelined behind `lead` takes its output: its inputs and task_id are known now
        (the worker computed the same; unknown if `lead` did not succeed: then it does not run)."""
        if outcome.status in ("success", "cached") and outcome.output_hash:
            job.after = None
            job.input_hashes = tuple(outcome.output_hash if h is None else h for h in job.input_hashes)
            job.task_id = make_task_id(job.task_hash, job.input_hashes)

    def _skipped(self, node: "Node", st: _State, job: Job) -> None:
        """A pipelined job did not run, the task it followed having failed: reported as `_settle`
        reports a task whose upstream did not finish (or evaluated as usual, if that one reran)."""
        if st.pending_upstream or st.settled is not None:
            return  # what it followed runs again (an input changed): it is evaluated after that
        up = job.after.name if job.after is not None else None
        settled = self.state[up].settled if up in self.state else None
        if settled in (RAN, CACHED, None):  # not what the worker saw: evaluated as usual
            self.ready.append(node.name)
            return
        why = f"upstream task {up} {'failed' if settled == FAILED else 'did not finish'}"
        self._settle(node, SKIPPED, why, st=st)

    # ------------------------------------------------------------ the workspace

    def flush(self) -> None:
        """Commit finished outputs whose inputs still hold, waiting for it (and for a batch being
        made durable in the background first); notice changes made by others."""
        self._collect(wait=True)
        began = self.last_flush = time.monotonic()
        try:
            self._release_settled()
            taken = self._take_batch()
            if taken is None:
                self._notice_others()
                return
            self.make_durable()
            commit, data, _ = self._commit_batch(*taken)
            self._apply(*taken, commit, data)
        finally:
            self.flush_interval = max(FLUSH_INTERVAL, (time.monotonic() - began) / FLUSH_SHARE)

    def _flush_due(self) -> bool:
        """Is a batch due: the flush interval passed, or the batch holds its most?"""
        return time.monotonic() - self.last_flush >= self.flush_interval or self._uncommitted() >= self.max_uncommitted

    def flush_behind(self) -> None:
        """`flush`, with the batch's outputs and records made durable, then committed, in the
        background while the tasks go on (a sync of the file system, then the git objects of a
        tree that has an entry per task: in a large run, seconds of waiting that would stop
        every worker); it is taken in here once done (`_collect`). One batch at a time: what
        finishes meanwhile waits for the next."""
        self._collect(wait=self._uncommitted() >= self.max_uncommitted)
        if self._syncing is not None:
            return
        if not self._flush_due():
            return  # called for the full batch just committed: what finished since waits for its turn
        self.last_flush = time.monotonic()
        self._release_settled()
        taken = self._take_batch()
        if taken is None:
            self._notice_others()
            return
        if self._syncer is None:
            import concurrent.futures

            self._syncer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="e3-sync")
        self._syncing = (taken, self._syncer.submit(self._durable_commit, taken))

    def _durable_commit(self, taken: tuple[dict[str, tuple[Job, str]], list[str]]) -> tuple[str, dict[TreePath, str] | None, float]:
        """On the background thread: the batch made durable, then committed (`_commit_batch`).
        Nothing else commits meanwhile: `flush` and `_notice_others` wait for it (`_collect`)."""
        self.make_durable()
        return self._commit_batch(*taken)

    def _collect(self, wait: bool) -> None:
        """Take in the batch committed in the background, once that is done (`wait`: wait for
        it): its claims go, the workspace's tree is taken in; an error of either step is raised here."""
        if self._syncing is None:
            return
        taken, fut = self._syncing
        if not wait and not fut.done():
            return
        self._syncing = None
        commit, data, took = fut.result()
        self.flush_interval = max(FLUSH_INTERVAL, took / FLUSH_SHARE)
        self._apply(*taken, commit, data)

    def _abandon_sync(self) -> None:
        """The run ends: no thread of it outlives it. A batch still being made durable or committed
        is left so, its claims held, as after a crash (committed or not, its tasks' records say
        they ran: the next run reuses them)."""
        self._syncing = None
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)
            self._syncer = None

    def _uncommitted(self) -> int:
        """Finished tasks whose claims are held until a commit: each holds an open file."""
        behind = len(self._syncing[0][1]) if self._syncing is not None else 0
        return len(self.pending) + len(self.settled_jobs) + behind

    def _release_settled(self) -> None:
        if self.settled_jobs:
            self.runner.release(self.settled_jobs)
            self.settled_jobs = []

    def _notice_others(self) -> None:
        commit, data = self.read_workspace(self.commit)
        if commit != self.commit:
            self._rebase(commit, data)

    def _take_batch(self) -> tuple[dict[str, tuple[Job, str]], list[str]] | None:
        """The finished outputs to commit next, and their tasks in dataflow order; None if none."""
        if not self.pending:
            return None
        batch = dict(self.pending)
        self.pending.clear()
        return batch, sorted(batch, key=lambda n: self.graph.nodes[n].index)

    def _commit_batch(self, batch: dict[str, tuple[Job, str]], names: list[str]) -> tuple[str, dict[TreePath, str] | None, float]:
        """Commit a batch's outputs whose inputs still hold: the new commit, the workspace's tree
        if it is not this run's (see `commit_outputs`), and the seconds it took."""
        began = time.monotonic()
        nodes = self.graph.nodes
        taken: list[str] = []

        def changes(current: Mapping[TreePath, str]) -> dict[TreePath, str] | None:
            # Read through the batch's own outputs, in dataflow order (no copy of the whole tree).
            out: dict[TreePath, str] = {}
            taken.clear()
            for name in names:
                job, output_hash = batch[name]
                node = nodes[name]
                if tuple(out.get(p) or current.get(p) for p in node.task.inputs) == job.input_hashes:
                    out[node.task.output] = output_hash
                    taken.append(name)
            return out or None

        commit, data = self.commit_outputs(changes, _message(names))
        if data is None and len(taken) < len(names):  # an output left out: the tree is not ours alone
            commit, data = self.read_workspace("")
        return commit, data, time.monotonic() - began

    def _apply(self, batch: dict[str, tuple[Job, str]], names: list[str], commit: str, data: dict[TreePath, str] | None) -> None:
        self.summary.commits += commit != self.commit
        self.runner.release([batch[n][0] for n in names])
        self._rebase(commit, data)

    def _rebase(self, commit: str, data: dict[TreePath, str] | None) -> None:
        """Take the workspace's newest tree (None: ours, nobody else wrote); re-open every task
        downstream of a change we did not make."""
        self.commit = commit
        if data is None:
            return
        self.moved = True
        ours = {self.graph.nodes[n].task.output: h for n, (_, h) in self.pending.items()}
        merged = dict(data)
        merged.update(ours)
        if merged == self.data:  # the usual case, compared in C: nobody else wrote
            return
        changed = {p for p in set(merged) | set(self.data) if merged.get(p) != self.data.get(p)}
        self.data = merged
        touched = {c for p in changed for c in self.graph.consumers.get(p, ()) if c in self.selected}
        if not touched:
            return
        reopen = self.graph.downstream_closure(touched) & self.selected
        for name in reopen:
            st = self.state[name]
            if st.settled is not None:
                self.summary.reruns += 1
            st.settled = None
            self.summary.reports.pop(name, None)
        for name in reopen:
            # Upstream tasks not settled yet count too (still running, or reopened by an earlier
            # change): a task reopened alone must not be evaluated before they settle.
            self.state[name].pending_upstream = sum(
                1 for u in self.graph.nodes[name].upstream
                if u in self.selected and (u in reopen or self.state[u].settled is None)
            )
        self.ready.extend(sorted(reopen, key=lambda n: self.graph.nodes[n].index))
        self._drain()

    # ------------------------------------------------------------ the loop

    def running(self) -> int:
        return self.in_flight

    def run(self) -> Summary:
        """Run to the end; Ctrl-C cancels cleanly and re-raises KeyboardInterrupt."""
        for _ in self.steps():
            pass
        return self.summary

    def steps(self) -> Iterator[None]:
        """`run()`, handing control back after the start and after each batch of finished tasks,
        so a caller can pass on what the observer saw meanwhile. Ctrl-C (or closing the
        generator) cancels cleanly and re-raises; `cancelled` being set ends the run the same
        way without raising. An executor lost mid-run (ExecutorUnavailable) ends it the same
        way, and the error is re-raised."""
        t0 = time.monotonic()
        interrupted = threading.Event()
        # Ctrl-C is noted and acted on between steps, never in the middle of a claim or a commit.
        restore = _defer_sigint(interrupted)
        cancelled = self.cancelled
        try:
            self.start()
            if self.in_flight:
                self.runner.settle()
                self._pipeline()
                self.prepare_commit()
            self._announce(self._began())
            yield
            while True:
                while self.running():
                    if interrupted.is_set():
                        raise KeyboardInterrupt
                    if cancelled.is_set():
                        break
                    done = self.runner.wait(timeout=FLUSH_INTERVAL / 2)
                    self._finish_all(done)
                    self._collect(wait=False)
                    if self._flush_due():
                        self.flush_behind()
                    yield
                if interrupted.is_set():
                    raise KeyboardInterrupt
                if cancelled.is_set():
                    self._cancel()
                    break
                self.flush()  # may notice a change made meanwhile and re-open tasks
                if not self.running() and not self.pending:
                    break
        except (KeyboardInterrupt, GeneratorExit):
            self._cancel()
            raise
        except ExecutorUnavailable:
            # The executor was lost mid-run (a Dask scheduler gone): what ran there ended with it
            # and is recorded so, what finished is committed, and the run ends with the error.
            self._cancel()
            raise
        finally:
            self._abandon_sync()  # none is left on a run's normal end: its last flush waited
            restore()
            self.summary.seconds = time.monotonic() - t0

    def _finish_all(self, done: list[tuple[Job, Outcome]]) -> None:
        """Take in the finished jobs and start the tasks they release; only then tell the observer
        (a chain's next task waits on nothing but the first part)."""
        seen: list[tuple[str | None, Any]] = []
        emit = self.observer
        self.observer = lambda event, report: seen.append((event, report))
        try:
            for job, outcome in done:
                seen.append((None, job))
                self._finished(job, outcome)
            self.runner.settle()  # the released tasks start before this process bookkeeps
            self._pipeline()
        finally:
            self.observer = emit
            began = {id(job): job for job in self._began()}
            # A task that started and ended meanwhile is reported started just before it
            # ended; those still running, after every end: the events never show more
            # tasks running than there are places to run them.
            for event, item in seen:
                if event is not None:
                    emit(event, item)
                elif began.pop(id(item), None) is not None:
                    self._announce([item])
            self._announce(list(began.values()))

    def _began(self) -> list[Job]:
        """The jobs a worker started since the last look: running, not merely handed over (the
        runner holds more than it runs at once, so that no worker idles)."""
        began = getattr(self.runner, "began", None)
        return began() if began is not None else []

    def _announce(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.observer("start", TaskReport(job.name, "running", task_id=job.task_id))

    def _cancel(self) -> None:
        jobs = self.runner.cancel()
        for job in jobs:
            self.state[job.name].running = None
            self.in_flight -= 1
        # Pipelined behind a task whose output never came: skipped, as then (first: the settling
        # of what it followed, below, skips the others through `_settle`).
        for job in jobs:
            if not job.task_id:
                self._skipped(self.graph.nodes[job.name], self.state[job.name], job)
        for job in jobs:
            if job.task_id:
                self._settle(self.graph.nodes[job.name], CANCELLED, "cancelled", job.task_id)
        self._leads.clear()
        self.ready.clear()
        self._drain()  # dependents of cancelled tasks are reported as skipped
        try:
            self.flush()  # what finished before Ctrl-C is kept
        except E3Error:
            pass


def longest_paths(graph: "Graph", seconds: dict[str, float]) -> dict[str, float]:
    """Task name -> its own known run time plus the longest chain of known times below it (0: unknown)."""
    out: dict[str, float] = {}
    nodes = graph.nodes
    for name in reversed(graph.order):  # downstream first
        below = [out[d] for d in nodes[name].downstream if d in out]
        out[name] = seconds.get(name, 0.0) + (max(below) if below else 0.0)
    return out


def _defer_sigint(flag: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGINT, lambda signum, frame: flag.set())
    return lambda: signal.signal(signal.SIGINT, previous)


def _message(names: list[str]) -> str:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"dataflow: {len(names)} task output{'s' if len(names) != 1 else ''} ({shown})"


def matching(graph: "Graph", pattern: str) -> set[str]:
    """`--filter TASK`: the tasks named by a name or a shell pattern (`load-*`); none is an error."""
    from fnmatch import fnmatchcase

    if pattern in graph.nodes:
        return {pattern}
    found = {name for name in graph.nodes if fnmatchcase(name, pattern)}
    if not found:
        known = ", ".join(sorted(graph.nodes)[:10]) or "none"
        raise TaskNotFound(f"no task named {pattern!r} in this workspace (tasks: {known})", task=pattern)
    return found


def select(graph: "Graph", pattern: str | None, upstream: bool = True) -> set[str] | None:
    """The tasks a run settles: every task (None), or those `pattern` names and, with `upstream`,
    every task they need first (Snakemake's and the newer original engine's `--filter`; the
    older original ran the named task alone, which `upstream=False` still does)."""
    if pattern is None:
        return None
    named = matching(graph, pattern)
    return graph.upstream_closure(named) if upstream else named
