"""The repository interface over a local directory, made of the library.

Each operation is a thin composition of the library's calls (e3.repo.workspace,
e3.repo.package, e3.repo.datasets, e3.exec.start, …) that turns their results into the
interface's values (e3.api.values). Library modules are imported inside the
operations that need them, so opening a repository to read one object loads
neither pygit2 nor the East runtime.

A dataflow run is carried out by the thread that iterates its events: the
scheduler yields after each batch of settled tasks, and the events of that
batch are handed on, so following a run costs no thread and no queue.
"""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator, Sequence

from e3.api.interface import DataflowRun, ObjectWriter, Repository
from e3.storage.repository import Repository as Directory
from e3.storage.repository import create_repository, discover_repository, open_repository
from e3.storage.objects import Batch

ObjectWriter.register(Batch)  # the store's batch is the local ObjectWriter: same methods

if TYPE_CHECKING:
    from e3.api import values as v
    from e3.repo.workspace import WorkspaceState, WorkspaceView


def repositories_in(directory: str | os.PathLike[str]) -> list[str]:
    """The names of the repositories in `directory` (each `directory/NAME` holding `.e3`, NAME a
    plain name: e3.api.names.REPOSITORY_NAME), sorted: what `e3-api-server --repos` serves.
    Raises UsageError when `directory` is not one."""
    from e3.api.names import REPOSITORY_NAME
    from e3.errors import UsageError

    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"{os.fspath(directory)}: not a directory") from None
    return [e.name for e in entries
            if e.is_dir() and REPOSITORY_NAME.fullmatch(e.name) and ".." not in e.name and LocalRepository.exists(e.path)]


class LocalRepository(Repository):
    """A repository in a directory on this machine."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.location = str(directory.root)

    def __repr__(self) -> str:
        return f"LocalRepository({self.location!r})"

    @classmethod
    def open(cls, target: str | os.PathLike[str]) -> "LocalRepository":
        return cls(open_repository(target))

    @classmethod
    def create(cls, target: str | os.PathLike[str]) -> "LocalRepository":
        return cls(create_repository(target))

    @classmethod
    def discover(cls, explicit: str | None = None) -> "LocalRepository":
        return cls(discover_repository(explicit))

    @staticmethod
    def exists(target: str | os.PathLike[str]) -> bool:
        """Is there a repository at `target` (a directory holding `.e3`, or `.e3` itself)?"""
        from pathlib import Path

        from e3.storage.repository import DIRNAME, is_repository

        p = Path(target)
        return is_repository(p / DIRNAME) or is_repository(p)

    # ------------------------------------------------------------ repository

    def repository_status(self) -> "v.RepositoryStatus":
        from e3.api import values as v
        from e3.repo.repo_status import status

        st = status(self.directory)
        return v.RepositoryStatus(
            location=st.root,
            objects=st.objects,
            object_bytes=st.object_bytes,
            git_loose=st.git_loose,
            git_loose_bytes=st.git_loose_bytes,
            git_packed=st.git_packed,
            git_pack_bytes=st.git_pack_bytes,
            refs=st.refs,
            packages=list(st.packages),
            workspaces=[v.WorkspaceSummary(w.name, w.commit, w.package, w.datasets) for w in st.workspaces],
            task_histories=st.task_histories,
            queue=dict(st.queue),
            executions=dict(st.executions),
            running=list(st.running),
            temporary_files=st.tmp_files,
        )

    def repository_gc(self, *, dry_run: bool = False, prune: str | None = None) -> "v.GcReport":
        from e3.api import values as v
        from e3.repo.gc import DEFAULT_PRUNE, gc

        prune = prune or DEFAULT_PRUNE
        r = gc(self.directory, prune=prune, dry_run=dry_run)
        return v.GcReport(
            dry_run=r.dry_run,
            prune=prune,
            reachable=r.reachable,
            removed=list(r.removed),
            kept_recent=r.kept_recent,
            temporary_removed=r.tmp_removed,
            git_loose_removed=r.git_loose_removed,
            git_packed=r.git_packed,
        )

    def repository_locks(self) -> list["v.LockInfo"]:
        from e3.api import values as v
        from e3.repo.repo_status import held_locks

        out = []
        for lock in held_locks(self.directory):
            who = lock.holder
            out.append(
                v.LockInfo(
                    lock.name,
                    who.operation if who else None,
                    who.describe() if who else None,
                    who.pid if who else None,
                )
            )
        return out

    def repository_remove(self, *, force: bool = False) -> None:
        from e3.errors import Conflict
        from e3.storage.repository import remove_repository

        if not force:
            busy = self.repository_locks()
            if busy:
                raise Conflict(f"repository {self.location} is in use ({busy[0].describe()}); stop it first")
        remove_repository(self.directory)

    # ------------------------------------------------------------ packages

    def package_import(self, zip: BinaryIO, *, replace: bool = False) -> "v.PackageImport":
        from e3.repo import package

        with _seekable(zip, self.directory) as f:
            before = package.list_packages(self.directory) if replace else []
            result = package.import_zip(self.directory, f, replace=replace)
        return _imported(result, before)

    def package_export(self, name: str, version: str | None, into: BinaryIO) -> "v.PackageExport":
        from e3.repo import package
        from e3.api import values as v

        result = package.export_zip(self.directory, name, version, into)
        return v.PackageExport(v.PackageInfo(result.name, result.version, result.package_hash), result.object_count)

    def package_list(self) -> list["v.PackageInfo"]:
        from e3.repo import package
        from e3.api import values as v

        return [v.PackageInfo(p.name, p.version, p.package_hash) for p in package.list_packages(self.directory)]

    def package_get(self, name: str, version: str | None = None) -> "v.PackageDetails":
        from e3.repo import package
        from e3.api import values as v

        found, pkg = package.read_package(self.directory, name, version)
        specs = pkg.datasets()
        return v.PackageDetails(
            v.PackageInfo(found.name, found.version, found.package_hash),
            dict(sorted(pkg.tasks.items())),
            [v.DatasetSpec(path, specs[path].type, specs[path].writable) for path in sorted(specs)],
        )

    def package_remove(self, name: str, version: str | None = None) -> "v.PackageInfo":
        from e3.repo import package
        from e3.api import values as v

        removed = package.remove_package(self.directory, name, version)
        return v.PackageInfo(removed.name, removed.version, removed.package_hash)

    # ------------------------------------------------------------ workspaces

    def workspace_create(self, ws: str) -> "v.WorkspaceInfo":
        from e3.repo import workspace
        from e3.api import values as v

        commit = workspace.create(self.directory, ws)
        return v.WorkspaceInfo(ws, commit, None)

    def workspace_deploy(self, ws: str, package: str, version: str | None = None, *, create: bool = False) -> "v.DeployResult":
        from e3.repo import workspace

        existed = workspace.exists(self.directory, ws)
        if not existed and not create:  # before the package is looked for, as the HTTP client must
            from e3.errors import WorkspaceNotFound

            raise WorkspaceNotFound(f"workspace {ws} does not exist", workspace=ws)
        report = workspace.deploy(self.directory, ws, package, version, create_missing=create)
        return _deployed(ws, report, created=not existed)

    def workspace_list(self) -> list["v.WorkspaceInfo"]:
        from e3.repo import workspace
        from e3.errors import NotFound

        out = []
        for ws in workspace.list_workspaces(self.directory):
            try:
                out.append(_info(workspace.read(self.directory, ws)))
            except NotFound:  # removed meanwhile
                continue
        return out

    def workspace_get(self, ws: str) -> "v.WorkspaceInfo":
        from e3.repo import workspace

        return _info(workspace.read(self.directory, ws))

    def workspace_status(self, ws: str) -> "v.WorkspaceStatus":
        from e3.api import values as v
        from e3.repo.workspace_status import status

        st = status(self.directory, ws)
        return v.WorkspaceStatus(
            workspace=ws,
            deployment=_deployment(st.view.state),
            tasks=[v.TaskState(t.name, t.state, t.detail, list(t.depends_on), list(t.unset_inputs), t.pid) for t in st.tasks],
            unset_inputs=list(st.unset_inputs),
            datasets_total=st.datasets_total,
            datasets_set=st.datasets_set,
            running_pid=st.running_pid,
        )

    def workspace_log(self, ws: str, rev: str | None = None) -> Iterator["v.HistoryEntry"]:
        from e3.repo import workspace
        from e3.api import values as v

        entries = workspace.history(self.directory, ws, rev)  # a bad name or revision is an error now, not when read
        return (v.HistoryEntry(e.commit, e.time, e.message, e.author) for e in entries)

    def workspace_diff(self, ws: str, old: str | None = None, new: str | None = None) -> "v.WorkspaceDiff":
        from e3.repo import workspace
        from e3.api import values as v

        d = self.directory
        new_commit = workspace.resolve(d, ws, new or "")
        old_commit = workspace.resolve(d, ws, old) if old else workspace.parent(d, new_commit)
        before = workspace.state_at(d, old_commit) if old_commit else None
        after = workspace.state_at(d, new_commit)
        changes = workspace.diff_commits(d, old_commit, new_commit)
        return v.WorkspaceDiff(old_commit, new_commit, _deployment(before), _deployment(after), _changes(changes))

    def workspace_reset(self, ws: str, rev: str) -> "v.ResetResult":
        from e3.repo import workspace
        from e3.api import values as v

        view, changes = workspace.reset(self.directory, ws, rev)
        return v.ResetResult(ws, view.commit, _changes(changes))

    def workspace_export(self, ws: str, into: BinaryIO, *, name: str | None = None, version: str | None = None) -> "v.PackageExport":
        from e3.repo import workspace
        from e3.api import values as v

        report = workspace.export(self.directory, ws, into, name, version)
        return v.PackageExport(v.PackageInfo(report.name, report.version, report.package_hash), report.object_count)

    def workspace_import(self, ws: str, zip: BinaryIO) -> "v.WorkspaceImport":
        from e3.repo import workspace
        from e3.api import values as v

        d = self.directory
        workspace.check_name(ws)
        existed = workspace.exists(d, ws)
        with _seekable(zip, d) as f:
            result, report = workspace.import_zip(d, ws, f)
        return v.WorkspaceImport(_imported(result, []), _deployed(ws, report, created=not existed))

    def workspace_remove(self, ws: str) -> None:
        from e3.repo import workspace

        workspace.remove(self.directory, ws)

    # ------------------------------------------------------------ datasets

    def dataset_list(self, ws: str, path: "v.TreePath" = (), *, recursive: bool = False) -> list["v.DatasetEntry"]:
        from e3.repo import datasets

        view = self._deployed(ws)
        return [self._entry(e) for e in datasets.list_entries(view, tuple(path), recursive=recursive)]

    def dataset_status(self, ws: str, path: "v.TreePath") -> "v.DatasetEntry":
        from e3.repo import datasets, workspace

        view = self._deployed(ws)
        workspace.dataset_spec(view, tuple(path))  # a tree or nothing there is an error naming which
        return self._entry(datasets.list_entries(view, tuple(path))[0])

    def dataset_get(self, ws: str, path: "v.TreePath") -> BinaryIO:
        from e3.repo import datasets

        return self.directory.objects.open(datasets.hash_at(self.directory, ws, tuple(path)))

    def dataset_set(self, ws: str, path: "v.TreePath", value: "v.ValueInput", *, type: object = None) -> str:
        from e3.repo import datasets

        h, _ = datasets.set_value_at(self.directory, ws, tuple(path), value.stream, value.format, type)
        return h

    # ------------------------------------------------------------ dataflow

    def dataflow_start(
        self,
        ws: str,
        *,
        task: str | None = None,
        upstream: bool = True,
        concurrency: int | None = None,
        force: bool = False,
        timeout: float | None = None,
        spawn: bool = False,
        executor: str | None = None,
    ) -> DataflowRun:
        from e3.exec.start import WorkspaceRun

        run = WorkspaceRun(
            self.directory, ws, task=task, upstream=upstream, concurrency=concurrency, force=force, timeout=timeout,
            spawn=spawn, executor=executor,
        )
        return LocalRun(self, ws, run)

    def dataflow_plan(self, ws: str, *, task: str | None = None, upstream: bool = True, force: bool = False) -> "v.DataflowPlan":
        from e3.api import values as v
        from e3.exec.start import plan

        steps = plan(self.directory, ws, task=task, upstream=upstream, force=force)
        return v.DataflowPlan(ws, [v.PlannedTask(s.task, s.action, s.reason, s.task_id, list(s.waits_for)) for s in steps])

    def dataflow_cancel(self, ws: str) -> bool:
        import signal

        from e3.repo import workspace

        if not workspace.exists(self.directory, ws):
            from e3.errors import WorkspaceNotFound

            raise WorkspaceNotFound(f"workspace {ws} does not exist", workspace=ws)
        mine = _runs.get((self.location, ws))
        if mine is not None:
            mine.cancel()
            return True
        pid = workspace.running_pid(self.directory, ws)
        if not pid or pid == os.getpid():
            return False
        try:
            os.kill(pid, signal.SIGINT)  # e3 start's own Ctrl-C: running tasks are stopped, the run is recorded
        except ProcessLookupError:
            return False
        return True

    def dataflow_graph(self, ws: str) -> "v.DataflowGraph":
        from e3.api import values as v
        from e3.exec import plan

        view = self._deployed(ws)
        graph = plan.graph_of(self.directory, view.package_hash)
        tasks = []
        for name in graph.order:
            node = graph.nodes[name]
            tasks.append(v.GraphTask(name, node.task_hash, list(node.task.inputs), node.task.output, sorted(node.upstream)))
        return v.DataflowGraph(ws, tasks)

    # ------------------------------------------------------------ tasks

    def task_list(self, ws: str) -> list["v.TaskInfo"]:
        from e3.api import values as v

        view = self._deployed(ws)
        return [v.TaskInfo(name, h) for name, h in sorted(view.package.tasks.items())]

    def task_get(self, ws: str, task: str) -> "v.TaskInfo":
        from e3.api import values as v
        from e3.model.task import load_task

        view = self._deployed(ws)
        h = _task_hash(view, task)
        t = load_task(self.directory.objects, h)
        return v.TaskInfo(task, h, list(t.inputs), t.output, t.command_ir)

    def task_executions(self, ws: str, task: str) -> list["v.ExecutionInfo"]:
        from e3.api import values as v
        from e3.storage import records
        from e3.storage.identity import task_id
        from e3.model.task import load_task

        view = self._deployed(ws)
        h = _task_hash(view, task)
        t = load_task(self.directory.objects, h)
        inputs = [view.datasets.get(p) for p in t.inputs]
        if None in inputs:
            return []
        tid = task_id(h, inputs)
        rec = records.latest(self.directory, tid)
        if rec is None:
            return []
        return [
            v.ExecutionInfo(
                tid, rec.execution_id, rec.kind, list(rec.input_hashes), rec.started_at, rec.completed_at,
                rec.output_hash, rec.exit_code, rec.message, rec.pid,
            )
        ]

    def task_run(
        self,
        package: str,
        version: str | None,
        task: str,
        inputs: Sequence["v.ValueInput"],
        *,
        force: bool = False,
        spawn: bool = False,
        timeout: float | None = None,
        echo: BinaryIO | None = None,
    ) -> "v.TaskRun":
        from e3.api import values as v
        from e3.exec import adhoc

        result = adhoc.run_adhoc(
            self.directory,
            package,
            version,
            task,
            [(i.stream, i.format, i.name) for i in inputs],
            force=force,
            force_spawn=spawn,
            timeout=timeout,
            echo=echo,
        )
        o = result.outcome
        return v.TaskRun(result.name, result.task_id, o.status, result.cached, o.output_hash, o.exit_code, o.message)

    # ------------------------------------------------------------ logs

    def log_read(
        self, ws: str, task: str, *, offset: int | None = None, all_executions: bool = False, markers: bool = False
    ) -> "v.LogRead":
        from e3.api import values as v
        from e3.storage import logs

        path = self._log(ws, task, follow=False)
        read = logs.read_from(path, offset, all_executions=all_executions)
        chunks = [_chunk(rec, end) for rec, end in read.records if _wanted(rec, markers)]
        return v.LogRead(chunks, read.offset, read.complete, path.name[: -len(logs.SUFFIX)])

    def log_follow(
        self, ws: str, task: str, *, offset: int | None = None, all_executions: bool = False, markers: bool = False
    ) -> Iterator["v.LogChunk"]:
        from e3.repo.task_log import follow_task, task_logs
        from e3.storage.logs import follow_from

        if offset is None:
            self._deployed(ws)  # an unknown workspace or task is an error now, not when iterated
            task_logs(self.directory, ws, task)
            records = follow_task(self.directory, ws, task, all_executions=all_executions)
        else:  # reading on from where a reader stopped: that log
            records = follow_from(self._log(ws, task, follow=True), offset, all_executions=all_executions)
        return (_chunk(rec, end) for rec, end in records if _wanted(rec, markers))

    def _log(self, ws: str, task: str, follow: bool):  # noqa: ANN202 - a Path
        from e3.model.paths import format_name
        from e3.repo.task_log import task_log

        return task_log(self.directory, f"{ws}.{format_name(task)}", follow=follow)

    # ------------------------------------------------------------ objects

    def object_exists(self, hash: str) -> bool:
        return self.directory.objects.exists(hash)

    def object_resolve(self, name: str) -> str:
        return self.directory.objects.resolve(name)

    def object_size(self, hash: str) -> int:
        return self.directory.objects.size(hash)

    def object_head(self, hash: str, n: int) -> tuple[int, bytes]:
        return self.directory.objects.peek(hash, n)

    def object_read(self, hash: str) -> BinaryIO:
        return self.directory.objects.open(hash)

    def object_write(self, source: BinaryIO, check: Callable[[BinaryIO], object] | None = None) -> str:
        return self.directory.objects.write_stream(source, check=check)

    def object_writer(self, *, batch: bool = True) -> ObjectWriter:
        return self.directory.objects.batch() if batch else _EachDurable(self.directory.objects)

    # ------------------------------------------------------------ helpers

    def _deployed(self, ws: str) -> "WorkspaceView":
        from e3.repo import workspace

        return workspace.require_deployed(workspace.read(self.directory, ws))

    def _entry(self, e) -> "v.DatasetEntry":  # noqa: ANN001 - an e3.repo.datasets.Entry
        from e3.api import values as v

        size = self.directory.objects.size(e.hash) if e.hash is not None else None
        return v.DatasetEntry(e.path, e.kind, e.type, e.writable, e.hash, e.status, size)


# ---------------------------------------------------------------- dataflow runs


_runs: dict[tuple[str, str], "LocalRun"] = {}
"""(repository, workspace) -> the run this process is carrying out, for dataflow_cancel."""
_runs_lock = threading.Lock()


class LocalRun(DataflowRun):
    """A run carried out in this process, step by step, by whoever iterates its events."""

    def __init__(self, repo: LocalRepository, ws: str, run) -> None:  # noqa: ANN001 - an e3.exec.start.WorkspaceRun
        self.workspace = ws
        self.summary = None
        self.tasks = run.task_count
        self._key = (repo.location, ws)
        self._run = run
        self._iterated = False
        with _runs_lock:
            _runs[self._key] = self

    def events(self) -> Iterator["v.DataflowEvent"]:
        from e3.api import values as v

        if self._iterated:
            raise RuntimeError("a run's events can be iterated once")
        self._iterated = True
        pending: list = []
        settled: dict[str, v.TaskFinished] = {}
        """Each task's newest TaskFinished: the summary's entries, made once."""
        started, finished = v.TaskStarted, v.TaskFinished

        def observe(kind: str, report) -> None:  # noqa: ANN001 - an e3.exec.scheduler.TaskReport
            if kind == "start":
                pending.append(started(report.name, report.task_id))
            else:
                event = settled[report.name] = finished(report.name, report.state, report.seconds, report.message, report.task_id)
                pending.append(event)

        try:
            for _ in self._run.steps(observe):
                if pending:
                    yield from pending
                    pending.clear()
            yield from pending
            pending.clear()
            self.summary = _summary(self.workspace, self._run.summary, self._run.cancelled, settled)
            yield v.RunFinished(self.summary)
        finally:
            self._forget()

    def cancel(self) -> None:
        self._run.cancel()

    def close(self) -> None:
        """Give the run up without carrying it out (releases the workspace); a no-op once iterated."""
        if not self._iterated:
            self._run.close()
            self._forget()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit anything may be gone
            pass

    def _forget(self) -> None:
        with _runs_lock:
            if _runs.get(self._key) is self:
                del _runs[self._key]


def _summary(ws: str, s, cancelled: bool, settled: dict) -> "v.RunSummary":  # noqa: ANN001 - an e3.exec.scheduler.Summary
    """The run's summary, its entries the TaskFinished events already handed on (each task's final report)."""
    from e3.api import values as v

    tasks = []
    for name in sorted(s.reports):
        event = settled.get(name)
        r = s.reports[name]
        if event is None or event.state != r.state:  # cannot happen while every settle is observed; be exact anyway
            event = v.TaskFinished(r.name, r.state, r.seconds, r.message, r.task_id)
        tasks.append(event)
    return v.RunSummary(ws, tasks, s.seconds, s.commits, s.reruns, cancelled, list(s.dropped))


# ---------------------------------------------------------------- conversions


def _deployment(state: "WorkspaceState | None") -> "v.Deployment | None":
    from e3.api import values as v

    if state is None:
        return None
    return v.Deployment(state.package_name, state.package_version, state.package_hash, state.deployed_at)


def _info(view: "WorkspaceView") -> "v.WorkspaceInfo":
    from e3.api import values as v

    return v.WorkspaceInfo(view.name, view.commit, _deployment(view.state))


def _changes(changes) -> list:  # noqa: ANN001 - e3.repo.workspace.DatasetChange values
    from e3.api import values as v

    return [v.DatasetChange(c.path, c.old, c.new) for c in changes]


def _deployed(ws: str, report, created: bool) -> "v.DeployResult":  # noqa: ANN001 - an e3.repo.workspace.DeployReport
    from e3.api import values as v

    package = v.PackageInfo(report.package_name, report.package_version, report.package_hash)
    return v.DeployResult(ws, report.commit, package, list(report.kept), list(report.dropped), created)


def _imported(result, before) -> "v.PackageImport":  # noqa: ANN001 - an e3.repo.package.ImportResult, PackageRefs
    from e3.api import values as v

    replaced = result.imported and any(p.version == result.version and p.name == result.name for p in before)
    return v.PackageImport(v.PackageInfo(result.name, result.version, result.package_hash), result.object_count, result.imported, replaced)


def _task_hash(view: "WorkspaceView", task: str) -> str:
    h = view.package.tasks.get(task)
    if h is None:
        from e3.errors import TaskNotFound

        known = ", ".join(sorted(view.package.tasks)) or "none"
        raise TaskNotFound(f"task {task!r} not found in workspace {view.name} (tasks: {known})", task=task)
    return h


def _wanted(rec: dict, markers: bool) -> bool:
    stream = rec.get("stream")
    if stream in ("stdout", "stderr"):
        return isinstance(rec.get("bytes"), bytes)
    return markers and stream in ("start", "end")


def _chunk(rec: dict, end: int) -> "v.LogChunk":
    from e3.api import values as v

    stream = rec["stream"]
    if stream in ("start", "end"):
        return v.LogChunk(stream, b"", end, rec.get("executionId"), rec.get("time"), rec.get("status"))
    return v.LogChunk(stream, rec["bytes"], end)


class _seekable:
    """A zip stream as zipfile needs it: the stream itself if it can seek, else a spooled copy."""

    def __init__(self, stream: BinaryIO, directory: Directory) -> None:
        self.stream = stream
        self.directory = directory
        self.spool = None

    def __enter__(self) -> BinaryIO:
        try:
            if self.stream.seekable():
                return self.stream
        except (AttributeError, OSError, ValueError):
            pass
        import shutil
        import tempfile

        self.spool = tempfile.TemporaryFile(dir=self.directory.path("tmp"), prefix="import-")
        shutil.copyfileobj(self.stream, self.spool, 1 << 20)
        self.spool.seek(0)
        return self.spool

    def __exit__(self, *exc: object) -> None:
        if self.spool is not None:
            self.spool.close()


class _EachDurable(ObjectWriter):
    """The store itself as an ObjectWriter: each write durable when it returns, nothing to flush."""

    pending = 0

    def __init__(self, store) -> None:  # noqa: ANN001 - an e3.storage.objects.ObjectStore
        self._store = store

    def write(self, data: bytes | memoryview) -> str:
        return self._store.write(data)

    def write_stream(self, source: BinaryIO, check: Callable[[BinaryIO], object] | None = None) -> str:
        return self._store.write_stream(source, check=check)

    def write_reading(self, source: BinaryIO, read: Callable[[BinaryIO, Callable[[bytes], object] | None], object]) -> str:
        return self._store.write_stream(source, read=read)

    def flush(self) -> None:
        pass

    def discard(self) -> None:
        pass
