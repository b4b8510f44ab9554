"""`e3 start` as a library call: lock the workspace's dataflow, plan, run, commit.

`WorkspaceRun` is a run taken in two steps (e3.api.local drives it): made, it
holds the lock (so every refusal is raised at once); `steps()` carries it
out, handing control back after each batch of settled tasks.

A run holds `locks/dataflow-<WS>` for its whole life, so a second start on the
same workspace is refused at once while `e3 set` may go on alongside (the
scheduler notices and reacts). The scheduler's job runner
(e3.exec.queue_executor) puts each execution on the durable queue and has it
run by an executor (e3.exec.executors): a pool of warm workers, or the
workers of a Dask cluster; workers started by hand
(`e3-run-task`) on the same repository may take some of them.

Entries of the workspace that earlier runs left pending (a killed run's
claims, `e3-enqueue` with no worker) are decided on by a run that completes:
one for an execution the run wants (the same task on the same inputs) is run,
under its own execution id; the rest of those of its tasks are dropped, each
with an `error` record saying why. A run with `--filter` decides on its task's
entries only (and on those of tasks the workspace no longer has); a cancelled
run leaves them as it found them.

A run of every task that finds the workspace where the last complete run left
it (e3.repo.fixpoint) settles each task cached from that entry, without the
scheduler; anything the entry cannot vouch for sends it the long way.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Iterator

from e3.errors import WorkspaceLocked, WorkspaceNotDeployed
from e3.exec.scheduler import Observer, Scheduler, Summary, matching, select

if TYPE_CHECKING:
    from e3.storage.repository import Repository


class WorkspaceRun:
    """One run of a workspace's dataflow. Made, it holds the workspace's dataflow lock (every
    error known before anything runs is raised by then); `steps()` carries it out."""

    def __init__(
        self,
        repo: "Repository",
        ws: str,
        *,
        task: str | None = None,
        upstream: bool = True,
        concurrency: int | None = None,
        force: bool = False,
        timeout: float | None = None,
        spawn: bool = False,
        executor: str | None = None,
    ) -> None:
        """`executor`: where the executions run (e3.exec.executors: `local`, `dask://HOST:PORT`);
        None: the repository's `e3.executor`, else local. `concurrency` None: the executor's default."""
        from e3.storage.locks import Lock, LockHeld

        self.repo, self.ws = repo, ws
        self.force, self.timeout, self.spawn = force, timeout, spawn
        self.summary: Summary | None = None
        self._cancel = threading.Event()
        self._started = False
        lock = Lock(repo, f"dataflow-{ws}", "dataflow")
        # A run of every task may find the workspace where the last no-op run left it: then it
        # needs neither the dataset tree nor the task graph (e3.repo.fixpoint).
        self._fixpoint = _fixpoint(repo, ws) if task is None and not force else None
        snap = None
        if self._fixpoint is None:
            snap = _deployed(repo, ws)  # an unknown workspace is a clear error before anything else
        try:
            lock.acquire(wait=False)
        except LockHeld as e:
            who = f" ({e.holder.describe()})" if e.holder else ""
            raise WorkspaceLocked(f"workspace {ws} is already running{who}", workspace=ws) from None
        self._lock = lock
        self._executor = None
        try:
            # The package cannot change while the lock is held (deploy takes it too).
            self.graph = None
            self.selected: set[str] | None = None
            self.forced: bool | set[str] = False
            from e3.exec.executor_choice import open_executor

            # A cluster that cannot run the tasks is an error now, before anything runs.
            self._executor, self.concurrency = open_executor(repo, executor, concurrency)
            if snap is not None:
                if self._executor is None:  # the local pool: one worker loads East while the graph is read
                    from e3.exec.queue_executor import local_pool

                    self._executor = local_pool(self.concurrency)
                    self._executor.warm_up()
                self._plan(snap, task, upstream, force)
            else:
                self.package_hash = self._fixpoint.package_hash
        except BaseException:
            if self._executor is not None:
                self._executor.shutdown(cancel=True)
            lock.release()
            raise

    def _plan(self, snap, task: str | None, upstream: bool, force: bool) -> None:  # noqa: ANN001 - a workspace Snapshot
        from e3.exec import plan

        self.package_hash = snap.package_hash
        self._snap = snap
        self.graph = plan.graph_of(self.repo, snap.package_hash)
        self.selected = select(self.graph, task, upstream)
        # --force with --filter runs again what the filter names, not the upstream it needs.
        self.forced = force and (matching(self.graph, task) if task is not None else True)

    @property
    def task_count(self) -> int:
        """How many tasks the run settles."""
        if self.graph is None:
            return len(self._fixpoint.names)
        return len(self.graph.nodes) if self.selected is None else len(self.selected)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """End the run at its next step: running tasks are stopped and reported cancelled."""
        self._cancel.set()

    def close(self) -> None:
        """Give up a run that was never started: release the workspace."""
        if not self._started:
            self._started = True
            if self._executor is not None:
                self._executor.shutdown(cancel=True)
            self._lock.release()

    def steps(self, observer: Observer | None = None) -> Iterator[None]:
        """Carry the run out, yielding after each batch of settled tasks (see Scheduler.steps)."""
        from e3.exec.queue_executor import RUNNER, QueueExecutor
        from e3.repo import snapshot

        if self._started:
            raise RuntimeError("a run is carried out once")
        self._started = True
        repo, ws = self.repo, self.ws
        runner = None
        try:
            runner = QueueExecutor(
                repo, ws, concurrency=self.concurrency, timeout=self.timeout, spawn=self.spawn, force=self.force, executor=self._executor
            )
            from e3.storage import queue

            queue.requeue_dead(repo)  # claims left by a run that was killed go back to the queue
            queue.sweep_temporaries(repo)  # and the entries it was writing
            repo.objects.sweep_temporaries()  # and the partial objects it was writing
            from e3.exec.invocation import sweep_scratch

            sweep_scratch(repo)  # and the scratch directories of the tasks it spawned
            pending = [q.entry for q in queue.list_entries(repo, RUNNER) if q.state == "pending" and q.entry.workspace == ws]
            if self.graph is None:
                if not pending and self._settle_from_fixpoint(observer):
                    yield
                    return
                self._plan(_deployed(repo, ws), None, True, False)  # the long way, as if there were no entry
            runner.adopt(pending)
            # The tree read before the lock, unless the workspace moved since (one small file read).
            commit, datasets = _read(repo, ws, self._snap.commit)
            if datasets is None:
                datasets = self._snap.datasets
            from e3.repo import run_times
            from e3.repo.memo_index import MemoIndex
            from e3.repo.workspace_writer import WorkspaceWriter

            memo = MemoIndex(repo, ws)  # before the first pointer is read
            writer = WorkspaceWriter(repo, ws, commit, datasets)
            scheduler = Scheduler(
                repo,
                ws,
                self.graph,
                datasets,
                commit,
                runner,
                selected=self.selected,
                force=self.forced,
                observer=observer,
                read_workspace=lambda known: _read(repo, ws, known),
                commit_outputs=writer.transact,
                make_durable=lambda: repo.objects.sync(),  # outputs and records were written without fsync
                prepare_commit=writer.prepare,
                cancelled=self._cancel,
                memo=memo.reusable_output,
                run_times=lambda: run_times.load(repo, ws),
            )
            self.summary = scheduler.summary
            del datasets  # the writer and the scheduler keep copies: this one would last the run for nothing
            self._snap = None
            try:
                yield from scheduler.steps()
            finally:  # a cancelled or failed run's times are as good as any
                run_times.save(repo, ws, scheduler.seconds, self.graph.nodes)
            # Nothing runs any more: the workers go now, not after the bookkeeping below (which
            # reads every task's pointer again after a large run), holding their memory meanwhile.
            runner.close()
            memo.save()
            if not self._cancel.is_set():
                summary = scheduler.summary
                decided = [(e, why) for e in runner.leftovers() if (why := _why_not_run(e, ws, self.graph, scheduler.selected, summary))]
                summary.dropped = [(e.task, e.execution_id, why) for e, why in runner.drop(decided)]
            self._keep_fixpoint(scheduler, memo)  # after the drops: the records they write move tasks/
            if scheduler.commit != commit:  # the next run starts from here without git
                snapshot.remember(repo, snapshot.Snapshot(scheduler.commit, self.package_hash, scheduler.data))
        finally:
            if runner is not None:
                runner.close()
            elif self._executor is not None:
                self._executor.shutdown(cancel=True)
            self._lock.release()


    def _settle_from_fixpoint(self, observer: Observer | None) -> bool:
        """Settle every task cached, as the fixpoint entry says, if each output still has its bytes
        and the workspace has not moved since the entry was read; False: nothing was reported."""
        from e3.exec.scheduler import CACHED, TaskReport
        from e3.repo import workspace
        from e3.storage import refs

        began = time.monotonic()
        fix = self._fixpoint
        objects = self.repo.objects
        if not all(objects.nonempty_checked(h) for h in fix.outputs):
            return False  # an output lost its bytes: the memo decides, and its task runs again
        if refs.read(self.repo, workspace.ref_name(self.ws)) != fix.commit:
            return False  # set meanwhile
        summary = Summary()
        reports = summary.reports
        observe = observer or (lambda event, report: None)
        for name, task_id in zip(fix.names, fix.task_ids):
            report = reports[name] = TaskReport(name, CACHED, 0.0, None, task_id)
            observe("end", report)
        summary.seconds = time.monotonic() - began
        self.summary = summary
        return True

    def _keep_fixpoint(self, scheduler: Scheduler, memo) -> None:  # noqa: ANN001 - a MemoIndex
        """A run of every task that settled each, cached or run, on a workspace no other writer
        moved, leaves a fixpoint entry for the commit it ended on (e3.repo.fixpoint)."""
        from e3.exec.scheduler import CACHED, RAN
        from e3.repo import fixpoint

        s, commit = scheduler.summary, scheduler.commit
        if (
            self._cancel.is_set() or self.selected is not None or self.forced
            or scheduler.moved or scheduler.pending
            or len(s.reports) != len(self.graph.nodes)
            or any(r.state not in (CACHED, RAN) for r in s.reports.values())
        ):
            return
        nodes, data = self.graph.nodes, scheduler.data
        names = list(s.reports)
        found = fixpoint.Fixpoint(
            commit, self.package_hash, names, [s.reports[n].task_id for n in names], [data[nodes[n].task.output] for n in names],
        )
        tasks = memo.unchanged_signature()  # every pointer read under it: no record changed since
        if tasks is not None:
            fixpoint.store(self.repo, self.ws, found, tasks)
        elif (tasks := fixpoint.store_checked(self.repo, self.ws, found)) is not None:
            memo.save_checked(tasks, dict(zip(found.task_ids, found.outputs)))  # read with the entry's


def _fixpoint(repo: "Repository", ws: str):  # noqa: ANN202 - an e3.repo.fixpoint.Fixpoint or None
    """The fixpoint entry of the workspace's commit, if one holds (e3.repo.fixpoint)."""
    from e3.repo import fixpoint, workspace
    from e3.storage import refs

    commit = refs.read(repo, workspace.ref_name(ws))
    return fixpoint.load(repo, ws, commit) if commit is not None else None


def _deployed(repo: "Repository", ws: str):  # noqa: ANN202 - a workspace Snapshot
    from e3.repo import workspace

    snap = workspace.read_snapshot(repo, ws)
    if snap.package_hash is None:
        raise WorkspaceNotDeployed(f"workspace {ws} has no package deployed (e3 workspace deploy REPO {ws} PKG@VERSION)", workspace=ws)
    return snap


def _why_not_run(entry, ws: str, graph, selected: set[str], summary: Summary) -> str | None:  # noqa: ANN001 - queue entry, plan graph
    """Why a completed run does not run an entry an earlier run left, or None: not this run's to decide."""
    from e3.exec.scheduler import CACHED, FAILED, RAN

    node = graph.nodes.get(entry.task)
    if node is None:
        return f"workspace {ws} no longer has task {entry.task}"
    if node.task_hash != entry.task_hash:
        return f"task {entry.task} changed since it was queued (another package deployed)"
    if entry.task not in selected:
        return None
    report = summary.reports.get(entry.task)
    if report is None:
        return "this run did not reach its task"
    if report.task_id == entry.task_id:
        return "this run reused that execution's result" if report.state == CACHED else "this run ran that execution itself"
    if report.state in (RAN, CACHED, FAILED):
        return "its inputs changed since it was queued"
    return f"its task was not run ({report.state}: {report.message})"


def _read(repo: "Repository", ws: str, known: str) -> tuple[str, dict | None]:
    """The workspace's commit, and its datasets only if it is not `known` (one small file read when idle)."""
    from e3.repo import workspace
    from e3.storage import refs

    if refs.read(repo, f"refs/workspaces/{ws}") == known:
        return known, None
    snap = workspace.read_snapshot(repo, ws)
    return snap.commit, snap.datasets


def plan(repo: "Repository", ws: str, *, task: str | None = None, upstream: bool = True, force: bool = False) -> list:
    """What a run with these options would do now, without doing it (e3.exec.preview); locks nothing."""
    from e3.exec.plan import graph_of
    from e3.exec.preview import preview
    from e3.repo import workspace

    snap = workspace.read_snapshot(repo, ws)
    if snap.package_hash is None:
        raise WorkspaceNotDeployed(f"workspace {ws} has no package deployed (e3 workspace deploy REPO {ws} PKG@VERSION)", workspace=ws)
    graph = graph_of(repo, snap.package_hash)
    selected = select(graph, task, upstream)
    forced = force and (matching(graph, task) if task is not None else set(graph.nodes))
    return preview(repo, graph, snap.datasets, selected, forced or set())
