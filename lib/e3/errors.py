"""Errors the library raises, each carrying the exit code the CLI reports and a kind.

Exit codes (listed in e3(1)): 0 ok; 1 a "no" from a yes/no question; 2 usage;
128 fatal; 130 interrupted. Library code raises these; e3.cli.command turns
them into one line on stderr.

Every class that declares a `kind` names one kind, and a kind names exactly
one class (`error_class`), so an error can cross a wire as (kind, message,
details) and be raised again as the same class on the other side. The kinds
of the original engine's ApiError variant (`ORIGINAL_KINDS`) are kept
spelled as there; the others are e3's own, more precise ones. A subclass that
declares no kind travels as its nearest ancestor's. Keyword arguments given
when raising (`WorkspaceNotFound(msg, workspace="dev")`) are the error's
`details`: the fields of the original's variant case.
"""

EXIT_OK = 0
EXIT_NO = 1
EXIT_USAGE = 2
EXIT_FATAL = 128
EXIT_INTERRUPTED = 130

_KINDS: dict[str, type] = {}


class E3Error(Exception):
    """Base of every error a user may see; its message is one line, lower-case."""

    exit_code = EXIT_FATAL
    kind = "internal"

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message)
        self.details = details

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            other = _KINDS.setdefault(cls.kind, cls)
            if other is not cls:
                raise TypeError(f"error kind {cls.kind!r} is declared by {other.__name__} and {cls.__name__}")


_KINDS[E3Error.kind] = E3Error


def error_class(kind: str) -> type[E3Error]:
    """The class that declares `kind`; an unknown kind (a newer peer's) is a plain E3Error."""
    return _KINDS.get(kind, E3Error)


def kinds() -> dict[str, type[E3Error]]:
    """Every kind and the class declaring it."""
    return dict(_KINDS)


# ---------------------------------------------------------------- general


class UsageError(E3Error):
    """A bad argument: a name that is not allowed, a malformed path or option."""

    exit_code = EXIT_USAGE
    kind = "invalid_input"


class NotARepository(E3Error):
    kind = "repository_not_found"


RepositoryNotFound = NotARepository


class RepositoryExists(E3Error):
    kind = "repository_exists"


class PermissionDenied(E3Error):
    """The caller may not do this (a server's answer)."""

    kind = "permission_denied"


class StorageError(E3Error):
    """The disk refused: permission, ENOSPC, a read-only filesystem."""

    kind = "storage_error"


class NotFound(E3Error):
    """A named thing (package, workspace, dataset, task, execution) does not exist."""

    kind = "not_found"


class Conflict(E3Error):
    """The operation cannot proceed now: a lock is held, a run is going."""

    kind = "conflict"


# ---------------------------------------------------------------- objects and values


class ObjectNotFound(E3Error):
    kind = "object_not_found"


class AmbiguousObject(E3Error):
    kind = "ambiguous_object"


class InvalidHash(E3Error):
    kind = "invalid_hash"


class CorruptObject(E3Error):
    kind = "corrupt_object"


class FormatError(E3Error):
    """Bytes or text that are not a valid encoding of a value of the given type."""

    kind = "format_error"


class TypeMismatch(E3Error):
    """A value whose type is not the one wanted (a dataset's, a task input's)."""

    kind = "type_mismatch"


# ---------------------------------------------------------------- refs


class RefError(E3Error):
    kind = "ref_error"


class RefMoved(RefError):
    """A compare-and-swap found the ref somewhere other than expected."""

    kind = "ref_moved"


class BadRefName(RefError, UsageError):
    """A name that cannot be a ref component (package, version, task): invalid input, but
    fatal (128) as it has always been reported."""

    exit_code = EXIT_FATAL
    kind = "bad_ref_name"


# ---------------------------------------------------------------- packages, workspaces, datasets, tasks


class PackageNotFound(NotFound):
    kind = "package_not_found"


class PackageExists(Conflict):
    """NAME@VERSION is imported already, with other contents."""

    kind = "package_exists"


class PackageInvalid(FormatError):
    """A package zip or package object that is not a valid package."""

    kind = "package_invalid"


class WorkspaceNotFound(NotFound):
    kind = "workspace_not_found"


class WorkspaceNotDeployed(NotFound):
    kind = "workspace_not_deployed"


class WorkspaceExists(Conflict):
    kind = "workspace_exists"


class WorkspaceLocked(Conflict):
    """A run (or a deploy, reset or removal) holds the workspace."""

    kind = "workspace_locked"


class DatasetNotFound(NotFound):
    """No dataset at that path (nothing there, a tree, or a dataset with no value yet)."""

    kind = "dataset_not_found"


class DatasetNotWritable(E3Error):
    """The dataset is computed by a task; only inputs are set by hand."""

    kind = "dataset_not_writable"


class TaskNotFound(NotFound):
    kind = "task_not_found"


class ExecutionNotFound(NotFound):
    """No execution (record or log) of that task on those inputs."""

    kind = "execution_not_found"


class DataflowError(E3Error):
    """A run could not be carried out (not a task failing: that is in the run's summary)."""

    kind = "dataflow_error"


class ExecutorUnavailable(DataflowError):
    """The executor named for a run cannot run its tasks: a Dask scheduler out of reach, a cluster
    without workers, a worker without the East runtime."""

    kind = "executor_unavailable"


class DataflowAborted(E3Error):
    """A run was cancelled before it ended."""

    exit_code = EXIT_INTERRUPTED
    kind = "dataflow_aborted"


ORIGINAL_KINDS = frozenset(
    {
        "repository_not_found",
        "workspace_not_found",
        "workspace_not_deployed",
        "workspace_exists",
        "workspace_locked",
        "package_not_found",
        "package_exists",
        "package_invalid",
        "dataset_not_found",
        "task_not_found",
        "execution_not_found",
        "object_not_found",
        "dataflow_error",
        "dataflow_aborted",
        "permission_denied",
        "internal",
    }
)
"""The original engine's ApiError variant cases, spelled as there (its e3-types api.ts)."""
