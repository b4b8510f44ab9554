"""The repository interface: every operation a user or a script performs on a repository.

`Repository` names them in e3's words, grouped by what they act on
(repository, package, workspace, dataset, dataflow, task, log, object). The
local directory is one implementation (e3.api.local); an HTTP client is
another. Commands in e3.cli call only these methods, so each works the same on
either. The contract tests (tests/test_api_contract.py) are written once and
run against every implementation.

Rules every implementation keeps:

- Arguments and results are plain values (e3.api.values) or East values;
  never a path into `.e3`.
- Large payloads are streams, never one `bytes`: a value, an object or a zip
  comes in as a readable binary file object and goes out as one (the caller
  closes it) or is written into a writable one the caller gives. The
  implementation reads and writes them in chunks where it can.
- Failures are e3.errors.E3Error subclasses; each has a `kind` that maps one to
  one onto a class, so a server sends the kind and a client raises the same
  class (`e3.errors.error_class`). The kinds each operation raises are listed
  in its docstring; any operation may also raise `UsageError` (kind
  `invalid_input`; `BadRefName` for a package or version name) for a
  malformed argument and `StorageError` when the disk refuses.
- Names are checked the same way everywhere: a workspace name is one ref
  component of letters, digits and `_.@+=-`; a package is NAME or
  NAME@VERSION; `version=None` means the only version imported.

Importing this module is cheap (no pygit2, no East runtime, no dataclasses):
plumbing that opens a repository to read one object starts fast.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator, Sequence

if TYPE_CHECKING:
    from e3.api.values import (
        DataflowEvent,
        DataflowGraph,
        DataflowPlan,
        DatasetEntry,
        DeployResult,
        ExecutionInfo,
        GcReport,
        HistoryEntry,
        LockInfo,
        LogChunk,
        LogRead,
        PackageDetails,
        PackageExport,
        PackageImport,
        PackageInfo,
        RepositoryStatus,
        ResetResult,
        RunSummary,
        TaskInfo,
        TaskRun,
        TreePath,
        ValueInput,
        WorkspaceDiff,
        WorkspaceImport,
        WorkspaceInfo,
        WorkspaceStatus,
    )


class ObjectWriter(ABC):
    """Writes many objects and makes them durable together (a batch): for bulk ingest.

    A hash is only to be handed on (printed, put in a ref) once `flush()` has
    returned, or once `pending` says its object is no longer waiting.
    """

    @abstractmethod
    def write(self, data: bytes | memoryview) -> str:
        """Store a value's Beast2 bytes; return the hash."""

    @abstractmethod
    def write_stream(self, source: BinaryIO, check: Callable[[BinaryIO], object] | None = None) -> str:
        """Store bytes read from `source` in chunks; `check(file)` may refuse them before they are kept."""

    def write_reading(self, source: BinaryIO, read: Callable[[BinaryIO, Callable[[bytes], object] | None], object]) -> str:
        """Store the bytes that `read(source, sink)` gives `sink` as it reads `source` (seekable) to its
        end: a check that reads the value itself, so the bytes are read once. If it raises, nothing
        is kept. By default, `write_stream` with `read(file, None)` as its check of the copy."""
        return self.write_stream(source, check=lambda f: read(f, None))

    @property
    @abstractmethod
    def pending(self) -> int:
        """How many of the newest writes are not yet durable."""

    @abstractmethod
    def flush(self) -> None:
        """Make every write so far durable."""

    @abstractmethod
    def discard(self) -> None:
        """Drop the writes not yet durable."""

    def __enter__(self) -> "ObjectWriter":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.flush()
        else:
            self.discard()


class DataflowRun(ABC):
    """A dataflow run started by `Repository.dataflow_start`.

    Iterate `events()` to see it go: TaskStarted and TaskFinished values as
    tasks go, and RunFinished last, after which `summary` is set. A local run
    is carried out by the thread that iterates (nothing runs between two
    `next()` calls but the workers), so a caller that wants only the outcome
    calls `wait()`. Ctrl-C while iterating cancels the running tasks and
    raises KeyboardInterrupt; `cancel()` (from another thread, or between
    events) ends the run with the running tasks reported `cancelled`.
    """

    workspace: str
    summary: "RunSummary | None" = None
    tasks: int | None = None
    """How many tasks the run is to settle (a progress display's total), if known."""

    @abstractmethod
    def events(self) -> Iterator["DataflowEvent"]:
        """The run's events, in order, ending with RunFinished. Iterate once."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop the run: no new task starts, running ones are stopped; the run still ends with RunFinished."""

    def close(self) -> None:
        """Give the run up: one not followed to its end is cancelled (a local run never iterated
        does not start at all), and the workspace is free again when this returns."""
        if self.summary is None:
            self.cancel()
            for _ in self.events():
                pass

    def wait(self) -> "RunSummary":
        """Run (or follow) to the end; return the summary."""
        for _ in self.events():
            pass
        assert self.summary is not None
        return self.summary

    def __iter__(self) -> Iterator["DataflowEvent"]:
        return self.events()


class Repository(ABC):
    """One e3 repository, wherever it is. Get one from `e3.api.open(target)` or `e3.api.create(target)`."""

    location: str
    """How to name the repository to a person: the `.e3` directory, or the URL."""

    def close(self) -> None:
        """Let go of what the handle holds (connections, caches). The handle is not used afterwards."""

    def __enter__(self) -> "Repository":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ repository

    @abstractmethod
    def repository_status(self) -> "RepositoryStatus":
        """Objects and sizes, refs, packages, workspaces, queued and running executions.
        Reads without taking a lock: safe beside a running start."""

    @abstractmethod
    def repository_gc(self, *, dry_run: bool = False, prune: str | None = None) -> "GcReport":
        """Remove objects nothing reaches and that are older than `prune` (git's expiry:
        'now', 'never', '2.weeks.ago' (the default), a date); pack git's objects.
        Raises Conflict (another gc runs), UsageError (bad expiry), E3Error (damage found: nothing removed)."""

    @abstractmethod
    def repository_locks(self) -> list["LockInfo"]:
        """The locks held right now (a running start, a deploy, a gc), in name order."""

    @abstractmethod
    def repository_remove(self, *, force: bool = False) -> None:
        """Delete the repository and everything in it. Without `force`, refused with
        Conflict while any lock is held. The handle is not used afterwards."""

    # ------------------------------------------------------------ packages

    @abstractmethod
    def package_import(self, zip: BinaryIO, *, replace: bool = False) -> "PackageImport":
        """Import a package zip (a readable binary file; `zip.name`, if it has one, names it in errors).
        All or nothing; the same package again is a no-op (`imported` False).
        Raises PackageExists (NAME@VERSION holds other contents, unless `replace`),
        PackageInvalid / FormatError / ObjectNotFound (a bad zip)."""

    @abstractmethod
    def package_export(self, name: str, version: str | None, into: BinaryIO) -> "PackageExport":
        """Write NAME@VERSION and every object it reaches as a zip into `into` (a writable binary
        file; seekable for the deterministic bytes a file gets). Raises PackageNotFound."""

    @abstractmethod
    def package_list(self) -> list["PackageInfo"]:
        """Every imported package, by name then version (1.10 after 1.9)."""

    @abstractmethod
    def package_get(self, name: str, version: str | None = None) -> "PackageDetails":
        """A package's tasks and datasets. Raises PackageNotFound, UsageError (several versions, none named)."""

    @abstractmethod
    def package_remove(self, name: str, version: str | None = None) -> "PackageInfo":
        """Remove a package's ref (its objects stay until gc); returns what was removed. Raises PackageNotFound."""

    # ------------------------------------------------------------ workspaces

    @abstractmethod
    def workspace_create(self, ws: str) -> "WorkspaceInfo":
        """Make an empty, undeployed workspace. Raises WorkspaceExists, UsageError (bad name)."""

    @abstractmethod
    def workspace_deploy(self, ws: str, package: str, version: str | None = None, *, create: bool = False) -> "DeployResult":
        """Deploy NAME@VERSION, keeping the inputs set by hand that still fit. A missing workspace
        is WorkspaceNotFound, as for every other operation, unless `create` (then it is made first).
        Raises PackageNotFound, WorkspaceLocked (a run holds it)."""

    @abstractmethod
    def workspace_list(self) -> list["WorkspaceInfo"]:
        """Every workspace, by name."""

    @abstractmethod
    def workspace_get(self, ws: str) -> "WorkspaceInfo":
        """One workspace: its newest commit and deployment. Raises WorkspaceNotFound."""

    @abstractmethod
    def workspace_status(self, ws: str) -> "WorkspaceStatus":
        """Each task's state and the inputs still unset. Raises WorkspaceNotFound, WorkspaceNotDeployed."""

    @abstractmethod
    def workspace_log(self, ws: str, rev: str | None = None) -> Iterator["HistoryEntry"]:
        """The workspace's history, newest first, from `rev` (default: now). Revisions as
        e3-rev-parse(1) reads them, relative to the workspace (`~2`, `@{1}`, a commit).
        Raises WorkspaceNotFound, NotFound (bad revision)."""

    @abstractmethod
    def workspace_diff(self, ws: str, old: str | None = None, new: str | None = None) -> "WorkspaceDiff":
        """Datasets (and deployment) that differ between two revisions; `old` defaults to the
        commit before `new`, `new` to now. Raises WorkspaceNotFound, NotFound (bad revision)."""

    @abstractmethod
    def workspace_reset(self, ws: str, rev: str) -> "ResetResult":
        """Put an earlier revision's datasets (and deployment) back, as a new commit.
        Raises WorkspaceNotFound, NotFound (bad revision), WorkspaceLocked (a run holds it and the deployment would change)."""

    @abstractmethod
    def workspace_export(self, ws: str, into: BinaryIO, *, name: str | None = None, version: str | None = None) -> "PackageExport":
        """Write the workspace as a package zip carrying its current values into `into`.
        Name defaults to the deployed package's, version to `VERSION-HASH8`.
        Raises WorkspaceNotFound, WorkspaceNotDeployed."""

    @abstractmethod
    def workspace_import(self, ws: str, zip: BinaryIO) -> "WorkspaceImport":
        """Import a package zip and deploy it to `ws` (created if needed). Refused with
        WorkspaceLocked before anything is imported if a run holds the workspace."""

    @abstractmethod
    def workspace_remove(self, ws: str) -> None:
        """Delete a workspace and its task histories (objects stay until gc).
        Raises WorkspaceNotFound, WorkspaceLocked."""

    # ------------------------------------------------------------ datasets

    @abstractmethod
    def dataset_list(self, ws: str, path: "TreePath" = (), *, recursive: bool = False) -> list["DatasetEntry"]:
        """The children of the subtree at `path` (every descendant with `recursive`, trees before their
        contents); a dataset's path lists that dataset. Raises WorkspaceNotFound, WorkspaceNotDeployed,
        DatasetNotFound."""

    @abstractmethod
    def dataset_status(self, ws: str, path: "TreePath") -> "DatasetEntry":
        """One dataset: its type, whether it is set, its hash and size. Raises DatasetNotFound (also for a tree)."""

    @abstractmethod
    def dataset_get(self, ws: str, path: "TreePath") -> BinaryIO:
        """A readable binary stream of the dataset's value (Beast2 with its type header); close it.
        Raises DatasetNotFound (no such dataset, or it has no value yet)."""

    @abstractmethod
    def dataset_set(self, ws: str, path: "TreePath", value: "ValueInput", *, type: object = None) -> str:
        """Set an input dataset from a stream in a value format; return the value's hash.
        The value must have exactly the dataset's type (a Beast2 header must name it; text is
        parsed with it); `type`, an East type, if given, must be that type too. The value is
        stored in its canonical encoding. Raises DatasetNotFound, DatasetNotWritable (a task's
        output), TypeMismatch, FormatError."""

    # ------------------------------------------------------------ dataflow

    @abstractmethod
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
        """Start running every task that is not up to date, in dataflow order, reusing cached results.

        `task` (a name, or a shell pattern such as `load-*`) runs the tasks it names and, with
        `upstream`, every task they need first; without `upstream`, only them. `force` ignores
        the cache (with `task`, for the tasks it names only); `timeout` fails a task that runs
        longer; `spawn` runs every task as its own process; `executor` says where tasks run
        (`local`, or a Dask cluster `dask://HOST:PORT`; None: the repository's `e3.executor`,
        else local), and `concurrency` how many at once (None: the executor's default).
        ExecutorUnavailable: the cluster cannot run the tasks. Errors known before anything runs
        are raised here: WorkspaceNotFound, WorkspaceNotDeployed, WorkspaceLocked (a run holds
        it already), TaskNotFound.
        """

    @abstractmethod
    def dataflow_plan(self, ws: str, *, task: str | None = None, upstream: bool = True, force: bool = False) -> "DataflowPlan":
        """What `dataflow_start` with the same options would do now, task by task, without doing
        anything or taking a lock: which results are reused, what runs, what waits on what, and
        what cannot run and why. Raises WorkspaceNotFound, WorkspaceNotDeployed, TaskNotFound."""

    @abstractmethod
    def dataflow_cancel(self, ws: str) -> bool:
        """Cancel the run of `ws` started elsewhere (another process, a server's background run);
        False if none runs. Raises WorkspaceNotFound."""

    @abstractmethod
    def dataflow_graph(self, ws: str) -> "DataflowGraph":
        """The deployed package's tasks with their inputs, output and dependencies.
        Raises WorkspaceNotFound, WorkspaceNotDeployed."""

    # ------------------------------------------------------------ tasks

    @abstractmethod
    def task_list(self, ws: str) -> list["TaskInfo"]:
        """The deployed package's tasks, by name. Raises WorkspaceNotFound, WorkspaceNotDeployed."""

    @abstractmethod
    def task_get(self, ws: str, task: str) -> "TaskInfo":
        """One task with its inputs, output and command. Raises TaskNotFound."""

    @abstractmethod
    def task_executions(self, ws: str, task: str) -> list["ExecutionInfo"]:
        """Recorded executions of the task in this workspace, newest first: the one for its current
        inputs, and its newest recorded one if that differs. Raises TaskNotFound."""

    @abstractmethod
    def task_run(
        self,
        package: str,
        version: str | None,
        task: str,
        inputs: Sequence["ValueInput"],
        *,
        force: bool = False,
        spawn: bool = False,
        timeout: float | None = None,
        echo: BinaryIO | None = None,
    ) -> "TaskRun":
        """Run one task of an imported package on the given input values, outside any workspace
        (memoized like every execution: a success for the same inputs is reused unless `force`).
        An East task's own function is taken from the package, so `inputs` may leave it out.
        `echo`, if given, receives the task's output as it runs. Read the output with
        `object_read(result.output_hash)`. Raises PackageNotFound, TaskNotFound, UsageError
        (wrong number of inputs), TypeMismatch / FormatError (an input)."""

    # ------------------------------------------------------------ logs

    @abstractmethod
    def log_read(
        self, ws: str, task: str, *, offset: int | None = None, all_executions: bool = False, markers: bool = False
    ) -> "LogRead":
        """What the task's execution wrote so far: of the execution for its current inputs, else of
        its newest recorded one. From `offset` (a LogChunk's or LogRead's), else from the newest
        execution's start (or the first execution's, with `all_executions`). With `markers`, each
        execution's start and end come as chunks too (LogChunk). Raises TaskNotFound,
        ExecutionNotFound (it has not run)."""

    @abstractmethod
    def log_follow(
        self, ws: str, task: str, *, offset: int | None = None, all_executions: bool = False, markers: bool = False
    ) -> Iterator["LogChunk"]:
        """Chunks of the task's execution as it writes them, until it ends. Without `offset`: the
        execution running now; else, while a run holds the workspace, the task's next execution
        (or, if the run ends without one, its newest); else its ended execution on its current
        inputs; else (never run on them, or an input unassigned) waits for it to start. With
        `offset`, reads on in that log from there. `markers`: as log_read. Raises TaskNotFound."""

    # ------------------------------------------------------------ objects

    @abstractmethod
    def object_exists(self, hash: str) -> bool:
        """True if the object (full hash) is stored."""

    @abstractmethod
    def object_resolve(self, name: str) -> str:
        """The full hash of a full hash or a unique prefix of at least 4 hex digits.
        Raises ObjectNotFound, AmbiguousObject, InvalidHash."""

    @abstractmethod
    def object_size(self, hash: str) -> int:
        """Bytes of a stored object. Raises ObjectNotFound."""

    @abstractmethod
    def object_head(self, hash: str, n: int) -> tuple[int, bytes]:
        """(size, first `n` bytes) of an object: enough to read a value's type header.
        Raises ObjectNotFound."""

    @abstractmethod
    def object_read(self, hash: str) -> BinaryIO:
        """A readable binary stream of an object's bytes; close it. Raises ObjectNotFound."""

    @abstractmethod
    def object_write(self, source: BinaryIO, check: Callable[[BinaryIO], object] | None = None) -> str:
        """Store the bytes read from `source` (in chunks) as one durable object; return its hash.
        `check(file)`, given the whole bytes as a file, may refuse them (by raising) before anything is kept."""

    @abstractmethod
    def object_writer(self, *, batch: bool = True) -> ObjectWriter:
        """A writer for many objects (see ObjectWriter). With `batch`, writes become durable together
        at `flush()`; without, each write is durable when it returns (for a few objects)."""
