"""What crosses the wire between e3-api-server and its clients: East types of bodies.

The original engine's HTTP API (its e3-types `api.ts`, `transfer.ts`, `package.ts`)
declares every request and reply body as an East type, encoded as Beast2 with
`Content-Type: application/beast2`. The RPC-style routes reply with the variant
`success(T) | error(ApiError)`; the raw-byte routes (dataset GET and PUT,
objects, uploads, downloads) carry a value's stored bytes and report errors as
JSON `{"error": {"type", "message"}}` with a real HTTP status. The types below
are the original's, field for field and case for case, so that a client written
for it can talk to our server. The server and the client (`e3.api.remote`) both
import them from here; nothing else does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from e3 import east as E
from e3.api import values as v
from e3.errors import E3Error
from e3.model.types import PackageObjectType  # noqa: F401 - the original's package GET replies with it
from e3.model.types import TreePathType

BEAST2 = "application/beast2"
"""The content type of every Beast2 body, request or reply."""
E3_ACCEPT = "application/vnd.e3+beast2"
"""Sent in `Accept` by an e3 client: reply with the interface's own values (e3.api.codec)."""
FRAMES = "application/vnd.e3.frames+beast2"
"""A streamed reply: frames of a 4-byte big-endian length and one Beast2 value each."""
TYPE_OF_TYPE = E.TYPE_OF_TYPE


def _struct(**fields: Any) -> Any:
    return E.StructType(list(fields.items()))


def _variant(**cases: Any) -> Any:
    return E.VariantType(list(cases.items()))


S, I, F, B, N = E.StringType, E.IntegerType, E.FloatType, E.BooleanType, E.NullType
Opt, Arr = E.OptionType, E.ArrayType

# ------------------------------------------------------------------ ApiError

LockHolderType = _struct(pid=I, acquiredAt=S, bootId=Opt(S), command=Opt(S))
ErrorType = E.VariantType([
    ("repository_not_found", _struct(repo=S)),
    ("workspace_not_found", _struct(workspace=S)),
    ("workspace_not_deployed", _struct(workspace=S)),
    ("workspace_exists", _struct(workspace=S)),
    ("workspace_locked", _struct(workspace=S, holder=_variant(unknown=N, known=LockHolderType))),
    ("package_not_found", _struct(packageName=S, version=Opt(S))),
    ("package_exists", _struct(packageName=S, version=S)),
    ("package_invalid", _struct(reason=S)),
    ("dataset_not_found", _struct(workspace=S, path=S)),
    ("task_not_found", _struct(task=S)),
    ("execution_not_found", _struct(task=S)),
    ("object_not_found", _struct(hash=S)),
    ("dataflow_error", _struct(message=S)),
    ("dataflow_aborted", N),
    ("permission_denied", _struct(path=S)),
    ("internal", _struct(message=S)),
])
"""The original's 16 kinds of API error, in the `error` case of every RPC reply."""


_ERROR_CASES = {name: t for name, t in zip(
    ["repository_not_found", "workspace_not_found", "workspace_not_deployed", "workspace_exists", "workspace_locked",
     "package_not_found", "package_exists", "package_invalid", "dataset_not_found", "task_not_found",
     "execution_not_found", "object_not_found", "dataflow_error", "dataflow_aborted", "permission_denied", "internal"],
    range(16))}


def api_error(e: BaseException) -> Any:
    """The ApiError value for an exception: its kind's case when the original has one, else `internal`.

    Fields the error's `details` do not give are left empty; the message travels
    in full beside the envelope (`X-E3-Error-Message`).
    """
    kind = getattr(e, "kind", "internal")
    details = dict(getattr(e, "details", {}) or {})
    message = str(e) if isinstance(e, E3Error) else f"internal error: {type(e).__name__}: {e}"
    if kind not in _ERROR_CASES or kind == "internal":
        return case("internal", struct(message=message))
    if kind == "dataflow_aborted":
        return case(kind, None)

    def s(name: str) -> str:
        return str(details.get(name, ""))

    def o(name: str) -> Any:
        return option(details.get(name))

    fields = {
        "repository_not_found": lambda: struct(repo=s("repo")),
        "workspace_not_found": lambda: struct(workspace=s("workspace")),
        "workspace_not_deployed": lambda: struct(workspace=s("workspace")),
        "workspace_exists": lambda: struct(workspace=s("workspace")),
        "workspace_locked": lambda: struct(workspace=s("workspace"), holder=case("unknown", None)),
        "package_not_found": lambda: struct(packageName=s("packageName"), version=o("version")),
        "package_exists": lambda: struct(packageName=s("packageName"), version=s("version")),
        "package_invalid": lambda: struct(reason=str(details.get("reason", message))),
        "dataset_not_found": lambda: struct(workspace=s("workspace"), path=s("path")),
        "task_not_found": lambda: struct(task=s("task")),
        "execution_not_found": lambda: struct(task=s("task")),
        "object_not_found": lambda: struct(hash=s("hash")),
        "dataflow_error": lambda: struct(message=message),
        "permission_denied": lambda: struct(path=s("path")),
    }
    return case(kind, fields[kind]())


def error_message(err: Any) -> str:
    """A one-line message for an ApiError value from a server that sent no message of its own."""
    k, f = err.type, err.value
    if k == "dataflow_aborted":
        return "the run was cancelled"
    if k in ("internal", "dataflow_error"):
        return f["message"]
    if k == "package_invalid":
        return f"invalid package: {f['reason']}"
    what = k.replace("_", " ")
    args = ", ".join(
        f"{name} {value.value if hasattr(value, 'type') and value.type == 'some' else value}"
        for name, value in f.items()
        if not (hasattr(value, "type") and value.type in ("none", "unknown"))
    )
    return f"{what} ({args})" if args else what


def response_type(t: Any) -> Any:
    """The envelope of an RPC reply whose success carries a value of type `t`."""
    return E.VariantType([("success", t), ("error", ErrorType)])


# ------------------------------------------------------------------ repository

RepositoryStatusType = _struct(path=S, objectCount=I, packageCount=I, workspaceCount=I)
GcRequestType = _struct(dryRun=B, minAge=Opt(I))
GcResultType = _struct(deletedObjects=I, deletedPartials=I, retainedObjects=I, skippedYoung=I, bytesFreed=I)
AsyncOperationStatusType = _variant(running=N, succeeded=N, failed=N)
GcStartResultType = _struct(executionId=S)
GcStatusResultType = _struct(status=AsyncOperationStatusType, stats=Opt(GcResultType), error=Opt(S))

# ------------------------------------------------------------------ packages

PackageListItemType = _struct(name=S, version=S)
PackageInfoType = _struct(name=S, version=S, hash=S)
PackageTransferInitRequestType = _struct(size=I)
PackageTransferInitResponseType = _struct(id=S, uploadUrl=S)
PackageJobResponseType = _struct(id=S)
PackageImportResultType = _struct(name=S, version=S, packageHash=S, objectCount=I)
PackageExportResultType = _struct(downloadUrl=S, size=I)
PackageImportStatusType = _variant(
    processing=_variant(pending=N, downloading=N, importing=_struct(objectsProcessed=I)),
    completed=PackageImportResultType,
    failed=_struct(message=S),
)
PackageExportStatusType = _variant(
    processing=_variant(pending=N, exporting=_struct(objectsProcessed=I), uploading=N),
    completed=PackageExportResultType,
    failed=_struct(message=S),
)

# ------------------------------------------------------------------ workspaces

WorkspaceCreateRequestType = _struct(name=S)
WorkspaceInfoType = _struct(name=S, deployed=B, packageName=Opt(S), packageVersion=Opt(S))
WorkspaceDeployRequestType = _struct(packageRef=S)
WorkspaceExportRequestType = _struct(name=Opt(S), version=Opt(S))

DatasetStatusType = E.VariantType([("unset", N), ("stale", N), ("up-to-date", N)])
TaskStatusType = E.VariantType([
    ("up-to-date", _struct(cached=B)),
    ("ready", N),
    ("waiting", _struct(reason=S)),
    ("in-progress", _struct(pid=Opt(I), startedAt=Opt(S))),
    ("failed", _struct(exitCode=I, completedAt=Opt(S))),
    ("error", _struct(message=S, completedAt=Opt(S))),
    ("stale-running", _struct(pid=Opt(I), startedAt=Opt(S))),
])
DatasetStatusInfoType = _struct(path=S, status=DatasetStatusType, hash=Opt(S), isTaskOutput=B, producedBy=Opt(S))
TaskStatusInfoType = _struct(name=S, hash=S, status=TaskStatusType, inputs=Arr(S), output=S, dependsOn=Arr(S))
WorkspaceStatusSummaryType = _struct(
    datasets=_struct(total=I, unset=I, stale=I, upToDate=I),
    tasks=_struct(total=I, upToDate=I, ready=I, waiting=I, inProgress=I, failed=I, error=I, staleRunning=I),
)
WorkspaceStatusResultType = _struct(
    workspace=S,
    lock=Opt(LockHolderType),
    datasets=Arr(DatasetStatusInfoType),
    tasks=Arr(TaskStatusInfoType),
    summary=WorkspaceStatusSummaryType,
)

# ------------------------------------------------------------------ datasets

TreeKindType = _variant(struct=N)
ListEntryType = _variant(
    dataset=_struct(path=S, type=E.TYPE_OF_TYPE, hash=Opt(S), size=Opt(I)),
    tree=_struct(path=S, kind=TreeKindType),
)
DatasetStatusDetailType = _struct(path=S, type=E.TYPE_OF_TYPE, refType=S, hash=Opt(S), size=Opt(I))
TransferUploadRequestType = _struct(hash=S, size=I)
TransferUploadResponseType = _variant(completed=N, upload=_struct(id=S, uploadUrl=S))
TransferDoneResponseType = _variant(completed=N, error=_struct(message=S))

# ------------------------------------------------------------------ tasks and dataflow

TaskListItemType = _struct(name=S, hash=S)
TaskDetailsType = _struct(name=S, hash=S, commandIr=S, inputs=Arr(TreePathType), output=TreePathType)
DataflowRequestType = _struct(concurrency=Opt(I), force=B, filter=Opt(S))
DataflowGraphTaskType = _struct(name=S, hash=S, inputs=Arr(S), output=S, dependsOn=Arr(S))
DataflowGraphType = _struct(tasks=Arr(DataflowGraphTaskType))
LogChunkType = _struct(data=S, offset=I, size=I, totalSize=I, complete=B)
DataflowEventType = _variant(
    start=_struct(task=S, timestamp=S),
    complete=_struct(task=S, timestamp=S, duration=F),
    cached=_struct(task=S, timestamp=S),
    failed=_struct(task=S, timestamp=S, duration=F, exitCode=I),
    error=_struct(task=S, timestamp=S, message=S),
    input_unavailable=_struct(task=S, timestamp=S, reason=S),
)
ExecutionStatusType = _variant(running=N, completed=N, failed=N, aborted=N)
DataflowExecutionSummaryType = _struct(executed=I, cached=I, failed=I, skipped=I, duration=F)
DataflowExecutionStateType = _struct(
    status=ExecutionStatusType,
    startedAt=S,
    completedAt=Opt(S),
    summary=Opt(DataflowExecutionSummaryType),
    events=Arr(DataflowEventType),
    totalEvents=I,
)
ExecutionHistoryStatusType = _variant(running=N, success=N, failed=N, error=N)
ExecutionListItemType = _struct(
    inputsHash=S,
    inputHashes=Arr(S),
    status=ExecutionHistoryStatusType,
    startedAt=S,
    completedAt=Opt(S),
    duration=Opt(I),
    exitCode=Opt(I),
)

def frame_type(t: Any) -> Any:
    """One frame of a streamed reply: an item, or the error that ended the stream."""
    return E.VariantType([("item", t), ("error", _struct(kind=S, message=S))])


def job_type(t: Any) -> Any:
    """An e3 client's poll of a background job (import, export, gc)."""
    return E.VariantType([("running", N), ("done", t)])


@dataclass(frozen=True)
class GcStarted:
    id: str


@dataclass(frozen=True)
class UploadStarted:
    """A job or an upload: its id, and the capability URL to PUT the bytes to ('' if none)."""

    id: str
    upload_url: str


@dataclass(frozen=True)
class ExportReady:
    """An export written on the server: where to download it (once) and what it holds."""

    url: str
    size: int
    export: v.PackageExport


MAX_UPLOAD = 5 * 1024**3
"""The largest package zip an upload may announce (the original's 5 GB)."""
LOG_CHUNK_LIMIT = 65536
"""The original's default and largest `limit` of one polled log chunk, in bytes."""
DATASET_INLINE_LIMIT = 1024 * 1024
"""A dataset GET larger than this answers with a download URL instead of the bytes."""

# ------------------------------------------------------------------ encoding


def struct(**fields: Any) -> Any:
    """A struct value, fields in the order given (the type's order)."""
    return E.value_struct(fields)


def case(name: str, value: Any = None) -> Any:
    """A variant value."""
    return E.value_variant(name, value)


def option(value: Any) -> Any:
    """`some(value)`, or `none` for None."""
    return E.none if value is None else E.some(value)


def encode(value: Any, t: Any) -> bytes:
    return E.encode(value, t)


def decode(data: bytes, t: Any) -> Any:
    """Decode a body that must be a value of exactly `t` (FormatError/TypeMismatch if not)."""
    return E.decode(data, t)[1]


def decoder(t: Any) -> Any:
    """`decode` for many bodies of one type `t` (a stream's frames): made once."""
    return E.quiet_decoder_for(t)


def encoder(t: Any) -> Any:
    """`encode` for many values of one type `t` (a stream's frames): made once."""
    return E.encoder_for(t)


def success(t: Any, value: Any) -> bytes:
    """An RPC reply carrying `value`."""
    return E.encode(case("success", value), response_type(t))


def failure(t: Any, error: Any) -> bytes:
    """An RPC reply carrying an ApiError variant value."""
    return E.encode(case("error", error), response_type(t))


def json_error(kind: str, message: str) -> bytes:
    """The body of a raw-byte route's error (with a real HTTP status beside it)."""
    return json.dumps({"error": {"type": kind, "message": message}}).encode()
