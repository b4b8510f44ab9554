"""`e3 start` as a library call: lock the workspace's dataflow, plan, run, commit.

A run holds `locks/dataflow-<WS>` for its whole life, so a second start on the
same workspace is refused at once while `e3 set` may go on alongside (the
scheduler notices and reacts). The embedded executor puts each execution on
the durable queue and serves it from a pool of warm workers; workers started
by hand (`e3-run-task`) on the same repository may take some of them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from e3.errors import Conflict, NotFound
from e3.exec.dataflow import Observer, Scheduler, Summary, select

if TYPE_CHECKING:
    from e3.repository import Repository


def start_workspace(
    repo: "Repository",
    ws: str,
    *,
    task: str | None = None,
    concurrency: int = 4,
    force: bool = False,
    timeout: float | None = None,
    spawn: bool = False,
    observer: Observer | None = None,
) -> Summary:
    from e3.exec import snapshot
    from e3.exec.executor import QueueExecutor
    from e3.exec.locks import Lock, LockHeld

    lock = Lock(repo, f"dataflow-{ws}", "dataflow")
    snap = snapshot.view(repo, ws)  # an unknown workspace is a clear error before anything else
    if snap.package_hash is None:
        raise NotFound(f"workspace {ws} has no package deployed (e3 workspace deploy REPO {ws} PKG@VERSION)")
    try:
        lock.acquire(wait=False)
    except LockHeld as e:
        who = f" ({e.holder.describe()})" if e.holder else ""
        raise Conflict(f"workspace {ws} is already running{who}") from None
    executor = QueueExecutor(repo, ws, concurrency=concurrency, timeout=timeout, spawn=spawn, force=force)
    try:
        from e3.exec import queue

        queue.requeue_dead(repo)  # claims left by a run that was killed go back to the queue
        queue.sweep_temporaries(repo)  # and the entries it was writing
        repo.objects.sweep_temporaries()  # and the partial objects it was writing
        from e3.exec.runner import sweep_scratch

        sweep_scratch(repo)  # and the scratch directories of the tasks it spawned
        snap = snapshot.view(repo, ws)
        if snap.package_hash is None:
            raise NotFound(f"workspace {ws} has no package deployed")
        graph = snapshot.graph(repo, snap.package_hash)
        scheduler = Scheduler(
            repo,
            ws,
            graph,
            snap.datasets,
            snap.commit,
            executor,
            selected=select(graph, task),
            force=force,
            observer=observer,
            read_workspace=lambda known: _read(repo, ws, known),
            commit_outputs=lambda fn, message: _commit(repo, ws, fn, message),
            prepare_commit=lambda: _prepare(repo, ws),
        )
        summary = scheduler.run()
        if scheduler.commit != snap.commit:  # the next run starts from here without git
            snapshot.remember(repo, snapshot.Snapshot(scheduler.commit, snap.package_hash, scheduler.data))
        return summary
    finally:
        executor.close()
        lock.release()


def _commit(repo: "Repository", ws: str, fn, message: str) -> tuple[str, dict]:
    from e3 import workspace
    from e3.exec import snapshot

    repo.objects.sync()  # outputs and records were written without fsync: make them durable first
    view = workspace.transact(repo, ws, lambda v: fn(v.datasets), message)
    return view.commit, view.datasets


def _prepare(repo: "Repository", ws: str) -> None:
    from e3 import workspace

    workspace.read(repo, ws)  # the view the first commit builds on, now cached in this process


def _read(repo: "Repository", ws: str, known: str) -> tuple[str, dict | None]:
    """The workspace's commit, and its datasets only if it is not `known` (one small file read when idle)."""
    from e3 import refs
    from e3.exec import snapshot

    if refs.read(repo, f"refs/workspaces/{ws}") == known:
        return known, None
    snap = snapshot.view(repo, ws)
    return snap.commit, snap.datasets
