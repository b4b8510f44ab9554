"""The repository routes of e3-api-server: the original engine's, over e3.api.local.

Each route opens the named repository through the local implementation and
calls one interface operation (in a worker thread: the library blocks). A
route the original has answers in the original's shape; an e3 client that
sends `Accept: application/vnd.e3+beast2` gets the interface's own value
(e3.api.codec) in the same `success | error` envelope, so nothing is lost
between the local and the remote implementation. Routes the original lacks
(workspace log, diff, reset and import, locks, object writes, streamed run
events and log follow) use e3's values only. Errors: the original's ApiError
case where there is one (else `internal`), plus the headers `X-E3-Error-Kind`
and `X-E3-Error-Message` that let an e3 client raise the very class the
library raised.

Streams (`dataflow/events`, `dataflow/logs/TASK/follow`) are chunked bodies of
frames: a 4-byte big-endian length, then one Beast2 value of
`Variant{item: T, error: {kind, message}}`.
"""
from __future__ import annotations

import json
import os
import struct as _struct
import threading
import time
from typing import Any, Callable, Iterator
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from e3 import errors
from e3.api import codec, values as v, wire as W
from e3.api.local import LocalRepository
from e3.errors import E3Error
from e3.server import names
from e3.server.runs import Runs
from e3.server.transfers import CHUNK, TransferError, Transfers

E3_ACCEPT = W.E3_ACCEPT


def wants_e3(request: Request) -> bool:
    return E3_ACCEPT in request.headers.get("accept", "")


# ------------------------------------------------------------------ errors


def _error_headers(e: BaseException) -> dict[str, str]:
    kind = getattr(e, "kind", "internal")
    return {"X-E3-Error-Kind": kind, "X-E3-Error-Message": quote(_message(e), safe="")}


def _message(e: BaseException) -> str:
    if isinstance(e, E3Error):
        return str(e)
    return f"internal error: {type(e).__name__}: {e}"


def http_status(e: BaseException) -> int:
    if isinstance(e, (errors.NotFound, errors.NotARepository, errors.ObjectNotFound)):
        return 404
    if isinstance(e, errors.PackageInvalid):
        return 422
    if isinstance(e, (errors.Conflict, errors.RefMoved, errors.RepositoryExists)):
        return 409
    if isinstance(e, errors.PermissionDenied):
        return 403
    if isinstance(e, (errors.UsageError, errors.FormatError, errors.TypeMismatch, errors.InvalidHash,
                      errors.AmbiguousObject, errors.DatasetNotWritable, TransferError)):
        return 400
    return 500


def json_error(e: BaseException) -> Response:
    """The error of a raw-byte route: JSON with a real HTTP status (as the original)."""
    kind = getattr(e, "kind", "bad_request" if isinstance(e, TransferError) else "internal")
    return Response(W.json_error(kind, _message(e)), status_code=http_status(e), media_type="application/json",
                    headers=_error_headers(e))


def not_a_repository(e: E3Error) -> Response:
    """An unknown repository, answered as the original's middleware does (JSON 404, before any route)."""
    name = (getattr(e, "details", None) or {}).get("repo", "")
    return Response(json.dumps({"error": "not_found", "message": f"Repository '{name}' not found"}).encode(),
                    status_code=404, media_type="application/json", headers=_error_headers(e))


def beast2(body: bytes, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body, status_code=status, media_type=W.BEAST2, headers=headers)


# ------------------------------------------------------------------ the route frame


class Server:
    def __init__(self, config: Any):
        self.config = config
        self.transfers = Transfers(config.staging)
        self.runs = Runs()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.jobs_lock = threading.Lock()
        self._handles = threading.local()

    def open(self, name: str, keep: bool = True) -> LocalRepository:
        """The repository `name`, opened once per worker thread and kept (its caches with it).

        A handle is kept per thread because the library's handles are not shared across
        threads; it is dropped when the repository's `.e3` is no longer the same directory
        (removed, or removed and made again).
        """
        if self.config.single and name != "default":
            raise errors.NotARepository(f"repository {name} not found", repo=name)
        path = self.config.repo_dir(name)
        try:
            ident = os.stat(path / ".e3").st_ino
        except OSError:
            ident = None
        cache = self._handles.__dict__.setdefault("repos", {})
        kept = cache.get(name)
        if keep and kept is not None and ident is not None and kept[0] == ident:
            return kept[1]
        if keep:
            cache.pop(name, None)
        try:
            repo = LocalRepository.open(path)
        except errors.NotARepository:
            raise errors.NotARepository(f"repository {name} not found", repo=name) from None
        if ident is not None and keep:
            cache[name] = (ident, repo)
        return repo

    # jobs: background imports, exports and gcs, polled by id

    def job(self, fn: Callable[[], Any], jid: str | None = None) -> str:
        import secrets

        jid = jid or secrets.token_hex(16)
        rec: dict[str, Any] = {"status": "running", "result": None, "error": None, "ended": None}
        with self.jobs_lock:
            self._prune_jobs()
            self.jobs[jid] = rec

        def work() -> None:
            try:
                rec["result"] = fn()
                rec["status"] = "succeeded"
            except BaseException as e:  # recorded for the poller, who raises it
                rec["error"] = e
                rec["status"] = "failed"
            finally:
                rec["ended"] = time.monotonic()

        threading.Thread(target=work, daemon=True).start()
        return jid

    def job_get(self, jid: str) -> dict[str, Any]:
        with self.jobs_lock:
            self._prune_jobs()
            rec = self.jobs.get(jid)
        if rec is None:
            raise errors.NotFound(f"no job {jid}")
        return rec

    def _prune_jobs(self) -> None:
        """Forget the jobs that ended more than `config.keep_jobs` seconds ago (under jobs_lock).

        A client polls its job until it ends and reads the outcome then; one that
        comes back later gets "no job ID", as for an ID never issued. Without this a
        long-running server kept every import, export and gc it ever ran.
        """
        now = time.monotonic()
        keep = self.config.keep_jobs
        for jid in [j for j, rec in self.jobs.items() if rec["ended"] is not None and now - rec["ended"] > keep]:
            del self.jobs[jid]


def rpc(orig_t: Any = None, e3_t: Any = None, render: Callable[[Any], Any] | None = None, status: int = 200):
    """A route replying `success | error`: the handler returns an interface value (or raises).

    `orig_t`/`render`: the original's type and how to turn the value into it
    (None: the route is e3's own, always in e3's shape). `e3_t`: the value's
    Python annotation, for e3.api.codec.
    """

    def wrap(handler: Callable[..., Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            e3 = wants_e3(request) or orig_t is None
            t = codec.east_type(e3_t) if e3 else orig_t
            try:
                value = await handler(request)
                if e3:
                    body = W.success(t, codec.to_east(value, e3_t))
                else:
                    body = W.success(t, render(value) if render else value)
                return beast2(body, status)
            except errors.NotARepository as e:  # as the original's middleware: before the route, JSON
                return not_a_repository(e)
            except (E3Error, TransferError) as e:
                return beast2(W.failure(t, W.api_error(e)), headers=_error_headers(e))
            except ClientDisconnect:
                return Response(status_code=400)
            except Exception as e:  # a bug of ours: still an answer, never a dropped connection
                return beast2(W.failure(t, W.api_error(e)), headers=_error_headers(e))

        return endpoint

    return wrap


def raw(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """A route answering with bytes, or a JSON error with a real status."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except (E3Error, TransferError) as e:
            return json_error(e)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as e:
            return json_error(e)

    return endpoint


def thread(fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
    return run_in_threadpool(fn, *a, **kw)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


def _opt_int(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise errors.UsageError(f"{name} must be a whole number, not {text!r}") from None


async def _body(request: Request, t: Any, limit: int = 1 << 20) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() != W.BEAST2:
        raise errors.UsageError(f"expected Content-Type: {W.BEAST2}")
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise errors.UsageError("request body too large")
    return W.decode(data, t)


HEARTBEAT = 1.0
"""Seconds between empty frames of a stream that has nothing to say: a client that has gone
is noticed within that time, and the worker thread that fed its stream is let go."""


def _frames(items: Iterator[Any], item_t: Any) -> Iterator[bytes]:
    """Frames of a streamed reply: each item, and at the end the error that stopped them, if any.

    The items are pulled by a thread of their own (a run's events and a log's
    chunks wait for something to happen); this generator, run by Starlette in a
    worker thread, hands them on and sends an empty frame every HEARTBEAT seconds
    meanwhile, so that a closed connection ends it, not the run.
    """
    import queue

    frame_t = W.frame_type(codec.east_type(item_t))
    q: "queue.Queue[tuple[str, Any]]" = queue.Queue(maxsize=64)
    gone = threading.Event()

    def pump() -> None:
        try:
            for item in items:
                while not gone.is_set():
                    try:
                        q.put(("item", item), timeout=HEARTBEAT)
                        break
                    except queue.Full:
                        continue
                if gone.is_set():
                    return
            q.put(("end", None))
        except Exception as e:  # the error that ended the stream, sent as its last frame
            q.put(("error", e))
        finally:
            close = getattr(items, "close", None)
            if gone.is_set() and close is not None:
                try:
                    close()
                except Exception:
                    pass

    encode = W.encoder(frame_t)

    def frame(what: str, x: Any) -> bytes:
        if what == "error":
            body = encode(W.case("error", W.struct(kind=getattr(x, "kind", "internal"), message=_message(x))))
        else:
            body = encode(W.case("item", codec.to_east(x, item_t)))
        return _struct.pack(">I", len(body)) + body

    threading.Thread(target=pump, name="stream", daemon=True).start()
    try:
        while True:
            try:
                what, x = q.get(timeout=HEARTBEAT)
            except queue.Empty:
                yield _struct.pack(">I", 0)
                continue
            # What else is ready goes in the same write: a run of 1,000 tasks is 2,000 events, and
            # each write is a hop to the event loop and a chunk the client reads on its own.
            out = []
            while what == "item":
                out.append(frame(what, x))
                try:
                    what, x = q.get_nowait()
                except queue.Empty:
                    what = "more"
            if what == "error":
                out.append(frame(what, x))
            if out:
                yield b"".join(out)
            if what in ("end", "error"):
                return
    finally:
        gone.set()


# ------------------------------------------------------------------ renderings in the original's shapes


def _orig_workspace(w: v.WorkspaceInfo) -> Any:
    d = w.deployment
    return W.struct(name=w.name, deployed=d is not None, packageName=W.option(d and d.package_name),
                    packageVersion=W.option(d and d.package_version))


def _orig_status(st: v.RepositoryStatus) -> Any:
    return W.struct(path=st.location, objectCount=st.objects, packageCount=len(st.packages),
                    workspaceCount=len(st.workspaces))


_TASK_STATE = {
    "up-to-date": lambda t: W.case("up-to-date", W.struct(cached=False)),
    "running": lambda t: W.case("in-progress", W.struct(pid=W.option(t.pid), startedAt=W.option(None))),
    "queued": lambda t: W.case("in-progress", W.struct(pid=W.option(t.pid), startedAt=W.option(None))),
    "interrupted": lambda t: W.case("stale-running", W.struct(pid=W.option(t.pid), startedAt=W.option(None))),
    "failed": lambda t: W.case("failed", W.struct(exitCode=-1, completedAt=W.option(None))),
    "error": lambda t: W.case("error", W.struct(message=t.detail, completedAt=W.option(None))),
    "waiting": lambda t: W.case("waiting", W.struct(reason=t.detail)),
}


def _tp(path: tuple) -> str:
    from e3.model.paths import format_tree_path

    return format_tree_path(tuple(path))


def _orig_ws_status(st: v.WorkspaceStatus) -> Any:
    tasks = []
    counts = dict(total=0, upToDate=0, ready=0, waiting=0, inProgress=0, failed=0, error=0, staleRunning=0)
    for t in st.tasks:
        state = _TASK_STATE.get(t.state, lambda t: W.case("ready", None))(t)
        key = {"up-to-date": "upToDate", "in-progress": "inProgress", "stale-running": "staleRunning"}.get(state.type, state.type)
        counts["total"] += 1
        counts[key] += 1
        tasks.append(W.struct(name=t.name, hash="", status=state, inputs=[], output="", dependsOn=list(t.depends_on)))
    lock = None
    if st.running_pid is not None:
        lock = W.struct(pid=st.running_pid, acquiredAt="", bootId=W.option(None), command=W.option("e3 start"))
    return W.struct(
        workspace=st.workspace,
        lock=W.option(lock),
        datasets=[],
        tasks=tasks,
        summary=W.struct(
            datasets=W.struct(total=st.datasets_total, unset=st.datasets_total - st.datasets_set, stale=0,
                              upToDate=st.datasets_set),
            tasks=W.struct(**counts),
        ),
    )


def _orig_entry_detail(e: v.DatasetEntry) -> Any:
    ref = "value" if e.status == "set" else ("null" if e.status == "null" else "unassigned")
    return W.struct(path=_tp(e.path), type=e.type, refType=ref, hash=W.option(e.hash), size=W.option(e.size))


def _orig_graph(g: v.DataflowGraph) -> Any:
    return W.struct(tasks=[W.struct(name=t.name, hash=t.hash, inputs=[_tp(p) for p in t.inputs], output=_tp(t.output),
                                    dependsOn=list(t.depends_on)) for t in g.tasks])


def _orig_execution(x: v.ExecutionInfo) -> Any:
    status = {"running": "running", "success": "success", "failed": "failed"}.get(x.status, "error")
    dur = None
    if x.completed_at is not None:
        dur = int((x.completed_at - x.started_at).total_seconds() * 1000)
    return W.struct(inputsHash=x.task_id, inputHashes=list(x.input_hashes), status=W.case(status, None),
                    startedAt=x.started_at.isoformat(), completedAt=W.option(x.completed_at and x.completed_at.isoformat()),
                    duration=W.option(dur), exitCode=W.option(x.exit_code))


def _tree_path_value(path: tuple) -> Any:
    from e3.model.paths import tree_path_to_east

    return tree_path_to_east(tuple(path))


def _package_ref(text: str) -> tuple[str, str | None]:
    name, _, version = text.partition("@")
    return name, version or None


# ------------------------------------------------------------------ the routes


def routes(config: Any) -> list[Route]:
    srv = Server(config)

    def repo(request: Request) -> str:
        return request.path_params["repo"]

    def ws(request: Request) -> str:
        return request.path_params["ws"]

    def dpath(request: Request) -> tuple[str, ...]:
        return names.dataset_path(request.path_params.get("path", ""))

    async def on(request: Request, fn: Callable[[LocalRepository], Any]) -> Any:
        """`fn(repository)` in one worker thread: the thread's own handle is used by that thread only."""
        name = repo(request)
        return await thread(lambda: fn(srv.open(name)))

    async def opened(request: Request) -> None:
        """Refuse an unknown repository now (before reading a body, starting a stream)."""
        await on(request, lambda r: None)

    async def own(request: Request) -> LocalRepository:
        """A handle of its own, for work that another thread carries out (a run, a job)."""
        return await thread(srv.open, repo(request), False)

    # ---------------------------------------------------------- repositories

    async def list_repos(request: Request) -> Response:
        return beast2(W.success(W.Arr(W.S), await thread(config.repo_names)))

    async def create_repo(request: Request) -> Response:
        name = repo(request)
        if config.single:
            return JSONResponse({"error": "method_not_allowed", "message": "Repository creation is disabled in single-repo mode"}, 405)
        t = W.S
        try:
            path = config.repo_dir(name)
        except names.BadName as e:
            return json_error(e)
        try:
            await thread(LocalRepository.create, path)
        except E3Error as e:
            return beast2(W.failure(t, W.api_error(e)), headers=_error_headers(e))
        return beast2(W.success(t, name), 201)

    async def remove_repo(request: Request) -> Response:
        name = repo(request)
        if config.single:
            if name == "default":
                return JSONResponse({"error": "method_not_allowed", "message": "Repository deletion is disabled in single-repo mode"}, 405)
            return JSONResponse({"error": "not_found", "message": f"Repository '{name}' not found"}, 404)
        try:
            config.repo_dir(name)
        except names.BadName as e:
            return json_error(e)
        try:
            r = await own(request)
            await thread(r.repository_remove, force=_flag(request, "force"))
        except E3Error as e:
            return beast2(W.failure(W.N, W.api_error(e)), headers=_error_headers(e))
        return beast2(W.success(W.N, None))

    @rpc(W.RepositoryStatusType, v.RepositoryStatus, _orig_status)
    async def status(request: Request) -> Any:
        return await on(request, lambda r: r.repository_status())

    @rpc(None, list[v.LockInfo])
    async def locks(request: Request) -> Any:
        return await on(request, lambda r: r.repository_locks())

    @rpc(W.GcStartResultType, W.GcStarted, lambda j: W.struct(executionId=j.id), status=202)
    async def gc_start(request: Request) -> Any:
        body = await _body(request, W.GcRequestType)
        r = await own(request)  # used by another thread: a handle of its own
        prune = request.query_params.get("prune")
        if prune is None and body["minAge"].type == "some":
            prune = f"{int(body['minAge'].value) // 1000}.seconds.ago"
        return W.GcStarted(srv.job(lambda: r.repository_gc(dry_run=bool(body["dryRun"]), prune=prune)))

    async def gc_status(request: Request) -> Response:
        rec = srv.job_get(request.path_params["id"])
        if wants_e3(request):
            return _job_reply(rec, v.GcReport)
        st = {"running": "running", "succeeded": "succeeded", "failed": "failed"}[rec["status"]]
        stats = None
        if rec["result"] is not None:
            g: v.GcReport = rec["result"]
            stats = W.struct(deletedObjects=len(g.removed), deletedPartials=g.temporary_removed, retainedObjects=g.reachable,
                             skippedYoung=g.kept_recent, bytesFreed=g.removed_bytes)
        err = _message(rec["error"]) if rec["error"] is not None else None
        return beast2(W.success(W.GcStatusResultType, W.struct(status=W.case(st, None), stats=W.option(stats), error=W.option(err))))

    # ---------------------------------------------------------- packages

    @rpc(W.Arr(W.PackageListItemType), list[v.PackageInfo], lambda ps: [W.struct(name=p.name, version=p.version) for p in ps])
    async def packages(request: Request) -> Any:
        return await on(request, lambda r: r.package_list())

    async def package_get(request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params.get("version")

        async def details(rq: Request) -> Any:
            return await on(rq, lambda r: r.package_get(name, version))

        if wants_e3(request) or version is None:
            return await rpc(None, v.PackageDetails)(details)(request)

        async def package_object(rq: Request) -> Any:
            def read(r: LocalRepository) -> Any:
                d = r.package_get(name, version)
                with r.object_read(d.package.hash) as f:
                    return W.decode(f.read(), W.PackageObjectType)

            return await on(rq, read)

        return await rpc(W.PackageObjectType, v.PackageDetails)(package_object)(request)

    @rpc(W.N, v.PackageInfo, lambda p: None)
    async def package_remove(request: Request) -> Any:
        return await on(request, lambda r: r.package_remove(request.path_params["name"], request.path_params.get("version")))

    # uploads of zips (package import, workspace import) and their jobs

    @rpc(W.PackageTransferInitResponseType, W.UploadStarted, lambda u: W.struct(id=u.id, uploadUrl=u.upload_url))
    async def import_start(request: Request) -> Any:
        body = await _body(request, W.PackageTransferInitRequestType)
        await opened(request)
        size = int(body["size"])
        if size <= 0 or size > W.MAX_UPLOAD:
            raise errors.UsageError(f"invalid size: must be between 1 and {W.MAX_UPLOAD} bytes")
        target = {"replace": _flag(request, "replace")}
        kind = "package"
        if "ws" in request.path_params:
            kind, target = "workspace", {"ws": ws(request)}
        up = srv.transfers.new_upload(repo(request), kind, size, **target)
        return W.UploadStarted(up.id, _abs(request, f"/api/uploads/{up.id}"))

    @rpc(W.PackageJobResponseType, W.UploadStarted, lambda u: W.struct(id=u.id))
    async def import_run(request: Request) -> Any:
        jid = request.path_params["id"]
        r = await own(request)  # used by another thread: a handle of its own
        # From here to srv.job() nothing awaits: two requests cannot both start the job.
        up = srv.transfers.uploads.get(jid)
        if up is None or up.status == "committed":
            srv.job_get(jid)  # already started: the same answer again
            return W.UploadStarted(jid, "")
        if up.status != "uploaded" or up.path is None:
            raise errors.Conflict("upload not yet received")
        up.status = "committed"

        def work() -> Any:
            try:
                with open(up.path, "rb") as f:  # type: ignore[arg-type]
                    if up.kind == "workspace":
                        return r.workspace_import(up.target["ws"], f)
                    return r.package_import(f, replace=bool(up.target.get("replace")))
            finally:
                srv.transfers.finish(up)

        srv.job(work, jid)
        return W.UploadStarted(jid, "")

    async def import_status(request: Request) -> Response:
        rec = srv.job_get(request.path_params["id"])
        kind_t = v.WorkspaceImport if "ws" in request.path_params else v.PackageImport
        if wants_e3(request):
            return _job_reply(rec, kind_t)
        t = W.PackageImportStatusType
        if rec["status"] == "running":
            return beast2(W.success(t, W.case("processing", W.case("pending", None))))
        if rec["status"] == "failed":
            return beast2(W.success(t, W.case("failed", W.struct(message=_message(rec["error"])))), headers=_error_headers(rec["error"]))
        res = rec["result"]
        imp: v.PackageImport = res.imported if isinstance(res, v.WorkspaceImport) else res
        return beast2(W.success(t, W.case("completed", W.struct(name=imp.package.name, version=imp.package.version,
                                                                 packageHash=imp.package.hash, objectCount=imp.object_count))))

    async def upload(request: Request) -> Response:
        if request.headers.get("authorization"):
            return Response("Authorization header must not be sent to data endpoints", status_code=400)
        up = srv.transfers.uploads.get(request.path_params["id"])
        if up is None or up.status != "created":
            return Response("Not found", status_code=404)
        up.status = "receiving"
        try:
            await srv.transfers.receive(up, request.stream())
        except TransferError as e:
            return Response(str(e), status_code=400)
        except ClientDisconnect:
            return Response(status_code=400)
        return Response(status_code=200)

    async def download(request: Request) -> Response:
        if request.headers.get("authorization"):
            return Response("Authorization header must not be sent to data endpoints", status_code=400)
        d = srv.transfers.take_download(request.path_params["id"])
        if d is None:
            return Response("Not found", status_code=404)
        if d.path is not None:
            return StreamingResponse(_file_chunks(d.path, delete=True), media_type=d.content_type,
                                     headers={"Content-Length": str(d.size)})
        try:
            def opened_object() -> tuple[int, Any]:
                r = srv.open(d.repo)
                return r.object_size(d.hash), r.object_read(d.hash)

            size, f = await thread(opened_object)
            return await _object_response(f, size, d.hash or "")
        except E3Error as e:
            return json_error(e)

    # exports (package, workspace): written to a staged file in the background, then downloaded once

    def _export_job(request: Request, r: LocalRepository, write: Callable[[Any], Any]) -> str:
        fd, path = srv.transfers.staged_file(".zip")
        rname = repo(request)

        def work() -> Any:
            import os

            try:
                with os.fdopen(fd, "w+b") as f:
                    export = write(f)
                size = os.path.getsize(path)
            except BaseException:
                os.unlink(path)
                raise
            d = srv.transfers.new_download(rname, path=path, size=size, content_type="application/zip")
            return W.ExportReady(d.id, size, export)

        return srv.job(work)

    @rpc(W.PackageJobResponseType, W.UploadStarted, lambda u: W.struct(id=u.id))
    async def package_export(request: Request) -> Any:
        r = await own(request)  # used by another thread: a handle of its own
        name, version = request.path_params["name"], request.path_params.get("version")
        if version == "-":
            version = None
        await thread(r.package_get, name, version)  # refuse an unknown package now, not in the job
        return W.UploadStarted(_export_job(request, r, lambda f: r.package_export(name, version, f)), "")

    @rpc(W.PackageJobResponseType, W.UploadStarted, lambda u: W.struct(id=u.id))
    async def workspace_export(request: Request) -> Any:
        body = await _body(request, W.WorkspaceExportRequestType)
        r = await own(request)  # used by another thread: a handle of its own
        name = body["name"].value if body["name"].type == "some" else None
        version = body["version"].value if body["version"].type == "some" else None
        w = ws(request)
        await thread(r.workspace_get, w)
        return W.UploadStarted(_export_job(request, r, lambda f: r.workspace_export(w, f, name=name, version=version)), "")

    async def export_status(request: Request) -> Response:
        rec = srv.job_get(request.path_params["id"])
        if rec["status"] == "succeeded" and isinstance(rec["result"], W.ExportReady):
            rec = dict(rec, result=W.ExportReady(_abs(request, f"/api/downloads/{rec['result'].url}"), rec["result"].size,
                                                 rec["result"].export))
        if wants_e3(request):
            return _job_reply(rec, W.ExportReady)
        t = W.PackageExportStatusType
        if rec["status"] == "running":
            return beast2(W.success(t, W.case("processing", W.case("pending", None))))
        if rec["status"] == "failed":
            return beast2(W.success(t, W.case("failed", W.struct(message=_message(rec["error"])))))
        ready: W.ExportReady = rec["result"]
        return beast2(W.success(t, W.case("completed", W.struct(downloadUrl=ready.url, size=ready.size))))

    # ---------------------------------------------------------- workspaces

    @rpc(W.Arr(W.WorkspaceInfoType), list[v.WorkspaceInfo], lambda ws_: [_orig_workspace(w) for w in ws_])
    async def workspaces(request: Request) -> Any:
        return await on(request, lambda r: r.workspace_list())

    @rpc(W.WorkspaceInfoType, v.WorkspaceInfo, _orig_workspace)
    async def workspace_create(request: Request) -> Any:
        body = await _body(request, W.WorkspaceCreateRequestType)
        return await on(request, lambda r: r.workspace_create(body["name"]))

    @rpc(W.WorkspaceInfoType, v.WorkspaceInfo, _orig_workspace)
    async def workspace_get(request: Request) -> Any:
        return await on(request, lambda r: r.workspace_get(ws(request)))

    @rpc(W.N, type(None), lambda _: None)
    async def workspace_remove(request: Request) -> Any:
        await on(request, lambda r: r.workspace_remove(ws(request)))

    @rpc(W.WorkspaceStatusResultType, v.WorkspaceStatus, _orig_ws_status)
    async def workspace_status(request: Request) -> Any:
        return await on(request, lambda r: r.workspace_status(ws(request)))

    @rpc(W.N, v.DeployResult, lambda _: None)
    async def workspace_deploy(request: Request) -> Any:
        body = await _body(request, W.WorkspaceDeployRequestType)
        name, version = _package_ref(body["packageRef"])
        # The original engine's deploy makes a missing workspace; its clients count on that.
        return await on(request, lambda r: r.workspace_deploy(ws(request), name, version, create=True))

    @rpc(None, list[v.HistoryEntry])
    async def workspace_log(request: Request) -> Any:
        rev = request.query_params.get("rev") or None
        limit = _opt_int(request, "limit")

        def collect(r: LocalRepository) -> list:
            import itertools

            it = r.workspace_log(ws(request), rev)
            return list(itertools.islice(it, limit) if limit is not None else it)

        return await on(request, collect)

    @rpc(None, v.WorkspaceDiff)
    async def workspace_diff(request: Request) -> Any:
        q = request.query_params
        return await on(request, lambda r: r.workspace_diff(ws(request), q.get("old") or None, q.get("new") or None))

    @rpc(None, v.ResetResult)
    async def workspace_reset(request: Request) -> Any:
        rev = request.query_params.get("rev")
        if not rev:
            raise errors.UsageError("rev is required")
        return await on(request, lambda r: r.workspace_reset(ws(request), rev))

    # ---------------------------------------------------------- datasets

    async def datasets_get(request: Request) -> Response:
        path = dpath(request)
        if _flag(request, "list") or not path:
            recursive = _flag(request, "recursive")

            async def listing(rq: Request) -> Any:
                return await on(rq, lambda r: r.dataset_list(ws(request), path, recursive=recursive))

            if _flag(request, "status") and not wants_e3(request):
                return await rpc(W.Arr(W.ListEntryType), list[v.DatasetEntry], lambda es: [
                    W.case("tree", W.struct(path=_tp(e.path), kind=W.case("struct", None))) if e.kind == "tree" else
                    W.case("dataset", W.struct(path=_tp(e.path), type=e.type, hash=W.option(e.hash), size=W.option(e.size)))
                    for e in es])(listing)(request)
            return await rpc(W.Arr(W.S), list[v.DatasetEntry], lambda es: [e.name for e in es])(listing)(request)
        if _flag(request, "status"):
            async def one(rq: Request) -> Any:
                return await on(rq, lambda r: r.dataset_status(ws(request), path))

            return await rpc(W.DatasetStatusDetailType, v.DatasetEntry, _orig_entry_detail)(one)(request)
        return await raw(_dataset_value)(request)

    async def _dataset_value(request: Request) -> Response:
        path = dpath(request)
        inline = _flag(request, "inline")

        def look(r: LocalRepository) -> tuple[Any, bytes | None]:
            # One worker-thread hop for a small value: its status and its bytes together.
            entry = r.dataset_status(ws(request), path)
            if entry.hash is None:
                raise errors.DatasetNotFound(f"dataset {ws(request)}{_tp(path)} has no value", workspace=ws(request),
                                             path=_tp(path))
            if (entry.size or 0) > W.DATASET_INLINE_LIMIT:
                return entry, None
            with r.object_read(entry.hash) as f:
                return entry, f.read()

        entry, data = await on(request, look)
        headers = {"X-Content-SHA256": entry.hash}
        if data is not None:
            return Response(data, media_type=W.BEAST2, headers=headers)
        size = entry.size or 0
        if not inline:
            d = srv.transfers.new_download(repo(request), hash=entry.hash, size=size)
            return Response(json.dumps({"url": _abs(request, f"/api/downloads/{d.id}")}), media_type="application/json",
                            headers={"X-Content-Length": str(size), **headers})
        return await _object_response(await on(request, lambda r: r.object_read(entry.hash)), size, entry.hash)

    @rpc(W.N, str, lambda _: None)
    async def datasets_put(request: Request) -> Any:
        await opened(request)
        path = dpath(request)
        fmt = request.query_params.get("format", "beast2")  # the original sends Beast2, and no format
        fmt = None if fmt == "unknown" else fmt
        label = request.query_params.get("name") or "request body"
        type_ = None
        if "x-e3-type" in request.headers:
            import base64

            type_ = W.decode(base64.b64decode(request.headers["x-e3-type"]), W.TYPE_OF_TYPE)
        up = await _receive_body(srv, request, "dataset")
        try:
            def store(r: LocalRepository) -> str:
                with open(up.path, "rb") as f:  # type: ignore[arg-type]
                    return r.dataset_set(ws(request), path, v.ValueInput(f, fmt, label), type=type_)
            return await on(request, store)
        finally:
            srv.transfers.finish(up)

    async def datasets_post(request: Request) -> Response:
        text = request.path_params.get("path", "")
        head, _, tail = text.rpartition("/upload/")
        if head and len(tail) == 32 and all(c in "0123456789abcdef" for c in tail):
            return await rpc(W.TransferDoneResponseType, str, lambda h: W.case("completed", None))(
                lambda rq: _upload_commit(rq, tail))(request)
        if text.endswith("/upload") or text == "upload":
            return await rpc(W.TransferUploadResponseType, W.UploadStarted, lambda u: (
                W.case("completed", None) if not u.id else W.case("upload", W.struct(id=u.id, uploadUrl=u.upload_url))))(
                lambda rq: _upload_init(rq, names.dataset_path(text[: -len("upload")].rstrip("/"))))(request)
        return Response("Not found", status_code=404)

    async def _upload_init(request: Request, path: tuple) -> Any:
        body = await _body(request, W.TransferUploadRequestType)
        h, size = body["hash"], int(body["size"])
        if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise errors.InvalidHash(f"invalid hash {h!r}")

        def set_if_stored(r: LocalRepository) -> bool:
            r.dataset_status(ws(request), path)  # refuse an unknown dataset before any byte moves
            if not r.object_exists(h):
                return False
            with r.object_read(h) as f:
                r.dataset_set(ws(request), path, v.ValueInput(f, "beast2", h))
            return True

        if await on(request, set_if_stored):
            return W.UploadStarted("", "")
        up = srv.transfers.new_upload(repo(request), "dataset", size, h, ws=ws(request), path=path)
        return W.UploadStarted(up.id, _abs(request, f"/api/uploads/{up.id}"))

    async def _upload_commit(request: Request, uid: str) -> Any:
        up = srv.transfers.uploads.get(uid)
        if up is None or up.kind != "dataset":
            raise errors.NotFound("transfer not found")
        if up.status == "committed":
            raise errors.Conflict("upload already being committed")
        if up.status != "uploaded":
            raise errors.Conflict("upload not yet received")
        up.status = "committed"  # before the first await: a second commit cannot use the same file
        try:
            def store(r: LocalRepository) -> str:
                with open(up.path, "rb") as f:  # type: ignore[arg-type]
                    return r.dataset_set(up.target["ws"], up.target["path"], v.ValueInput(f, "beast2", "upload"))
            return await on(request, store)
        finally:
            srv.transfers.finish(up)

    # ---------------------------------------------------------- tasks

    @rpc(W.Arr(W.TaskListItemType), list[v.TaskInfo], lambda ts: [W.struct(name=t.name, hash=t.hash) for t in ts])
    async def tasks(request: Request) -> Any:
        return await on(request, lambda r: r.task_list(ws(request)))

    @rpc(W.TaskDetailsType, v.TaskInfo, lambda t: W.struct(name=t.name, hash=t.hash, commandIr=t.command_ir or "",
                                                           inputs=[_tree_path_value(p) for p in t.inputs],
                                                           output=_tree_path_value(t.output)))
    async def task_get(request: Request) -> Any:
        return await on(request, lambda r: r.task_get(ws(request), request.path_params["task"]))

    @rpc(W.Arr(W.ExecutionListItemType), list[v.ExecutionInfo], lambda xs: [_orig_execution(x) for x in xs])
    async def task_executions(request: Request) -> Any:
        return await on(request, lambda r: r.task_executions(ws(request), request.path_params["task"]))

    # ---------------------------------------------------------- dataflow

    @rpc(W.N, type(None), lambda _: None, status=202)
    async def dataflow_start(request: Request) -> Any:
        body = await _body(request, W.DataflowRequestType)
        r = await own(request)  # used by another thread: a handle of its own
        w = ws(request)
        conc = int(body["concurrency"].value) if body["concurrency"].type == "some" else None  # the executor's default
        task = body["filter"].value if body["filter"].type == "some" else None
        timeout = request.query_params.get("timeout")
        # `filter` runs what the task needs first, as the newer original engine's; ?upstream=0 only it.
        upstream = request.query_params.get("upstream", "1").lower() not in ("0", "false", "no")
        # Where tasks run is the server's to say (e3-api-server --executor), else each repository's e3.executor.
        handle = await thread(r.dataflow_start, w, task=task, upstream=upstream, concurrency=conc, force=bool(body["force"]),
                              timeout=float(timeout) if timeout else None, spawn=_flag(request, "spawn"),
                              executor=config.executor)
        srv.runs.start(repo(request), w, handle)
        return None

    def _run_of(request: Request):
        run = srv.runs.get(repo(request), ws(request))
        if run is None:
            raise errors.ExecutionNotFound(f"no run of workspace {ws(request)} on this server", task=ws(request))
        return run

    async def dataflow_execution(request: Request) -> Response:
        t = W.DataflowExecutionStateType
        try:
            await opened(request)
            run = _run_of(request)
            offset = _opt_int(request, "offset") or 0
            limit = _opt_int(request, "limit")
            return beast2(W.success(t, _execution_state(run, offset, limit)))
        except E3Error as e:
            return beast2(W.failure(t, W.api_error(e)), headers=_error_headers(e))

    async def dataflow_events(request: Request) -> Response:
        try:
            await opened(request)
            run = _run_of(request)
            offset = _opt_int(request, "offset") or 0
        except E3Error as e:
            return json_error(e)

        def items() -> Iterator[Any]:
            for _, event in run.follow(offset):
                yield event
            if run.error is not None:
                raise run.error

        return StreamingResponse(_frames(items(), v.DataflowEvent), media_type=W.FRAMES)

    @rpc(W.N, bool, lambda _: None)
    async def dataflow_cancel(request: Request) -> Any:
        await opened(request)
        run = srv.runs.active(repo(request), ws(request))
        if run is not None:
            await thread(run.handle.cancel)
            return True
        found = await on(request, lambda r: r.dataflow_cancel(ws(request)))
        if not found and not wants_e3(request):
            raise errors.DataflowError("No active execution for this workspace")
        return found

    @rpc(W.DataflowGraphType, v.DataflowGraph, _orig_graph)
    async def dataflow_graph(request: Request) -> Any:
        return await on(request, lambda r: r.dataflow_graph(ws(request)))

    @rpc(None, v.DataflowPlan)
    async def dataflow_plan(request: Request) -> Any:
        q = request.query_params
        upstream = q.get("upstream", "1").lower() not in ("0", "false", "no")
        return await on(request, lambda r: r.dataflow_plan(ws(request), task=q.get("filter") or None,
                                                    upstream=upstream, force=_flag(request, "force")))

    async def logs(request: Request) -> Response:
        task = request.path_params["task"]
        offset = _opt_int(request, "offset")
        all_x = _flag(request, "all")
        if wants_e3(request):
            return await rpc(None, v.LogRead)(lambda rq: _log_read(rq, task, offset, all_x))(request)
        # The original's chunk: `offset` and `size` count bytes of the one stream asked for (the original
        # keeps a file per stream), `totalSize` is that stream's size so far, `complete` says the chunk
        # reaches its end. e3 keeps one log of records, so the stream is put together from it.
        stream = request.query_params.get("stream", "stdout")
        limit = min(_opt_int(request, "limit") or W.LOG_CHUNK_LIMIT, W.LOG_CHUNK_LIMIT)
        start = offset or 0

        def render(lr: v.LogRead) -> Any:
            whole = b"".join(c.data for c in lr.chunks if c.stream == stream)
            data = whole[start:start + limit]
            return W.struct(data=data.decode("utf-8", "replace"), offset=start, size=len(data), totalSize=len(whole),
                            complete=start + len(data) >= len(whole))

        return await rpc(W.LogChunkType, v.LogRead, render)(lambda rq: _log_read(rq, task, None, all_x))(request)

    async def _log_read(request: Request, task: str, offset: int | None, all_x: bool) -> Any:
        markers = _flag(request, "markers")
        return await on(request, lambda r: r.log_read(ws(request), task, offset=offset, all_executions=all_x, markers=markers))

    async def logs_follow(request: Request) -> Response:
        try:
            r = await own(request)  # the chunks are read in other threads
            task = request.path_params["task"]
            offset = _opt_int(request, "offset")
            # Errors known before following (no such task, cannot start) are a status, not a frame.
            it = await thread(r.log_follow, ws(request), task, offset=offset, all_executions=_flag(request, "all"),
                              markers=_flag(request, "markers"))
        except E3Error as e:
            return json_error(e)
        return StreamingResponse(_frames(it, v.LogChunk), media_type=W.FRAMES)

    # ---------------------------------------------------------- objects

    async def object_get(request: Request) -> Response:
        await opened(request)
        name = request.path_params["hash"]
        if len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
            if wants_e3(request) and _flag(request, "resolve"):
                return beast2(W.success(W.S, await on(request, lambda r: r.object_resolve(name))))
            return Response(W.json_error("bad_request", f"invalid hash format: {name}"), status_code=400,
                            media_type="application/json", headers={"X-E3-Error-Kind": "invalid_hash",
                                                                     "X-E3-Error-Message": quote(f"invalid hash {name!r}")})
        if wants_e3(request) and _flag(request, "resolve"):
            return beast2(W.success(W.S, await on(request, lambda r: r.object_resolve(name))))
        head = _opt_int(request, "head")
        if head is not None:
            size, data = await on(request, lambda r: r.object_head(name, head))
            return Response(data, media_type=W.BEAST2, headers={"X-Content-Length": str(size), "X-Content-SHA256": name})
        if request.method == "HEAD":
            size = await on(request, lambda r: r.object_size(name))
            return Response(b"", media_type=W.BEAST2, headers={"Content-Length": str(size), "X-Content-SHA256": name})
        size, f = await on(request, lambda r: (r.object_size(name), r.object_read(name)))
        return await _object_response(f, size, name)

    @rpc(None, str)
    async def object_put(request: Request) -> Any:
        await opened(request)
        up = await _receive_body(srv, request, "object")
        try:
            def store(r: LocalRepository) -> str:
                with open(up.path, "rb") as f:  # type: ignore[arg-type]
                    return r.object_write(f)
            return await on(request, store)
        finally:
            srv.transfers.finish(up)

    R = "/api/repos/{repo}"
    W_ = R + "/workspaces/{ws}"
    return [
        Route("/api/repos", list_repos, methods=["GET"]),
        Route(R, create_repo, methods=["PUT"]),
        Route(R, remove_repo, methods=["DELETE"]),
        Route(R + "/status", status, methods=["GET"]),
        Route(R + "/locks", locks, methods=["GET"]),
        Route(R + "/gc", gc_start, methods=["POST"]),
        Route(R + "/gc/{id}", raw(gc_status), methods=["GET"]),
        Route(R + "/import", import_start, methods=["POST"]),
        Route(R + "/import/{id}", import_run, methods=["POST"]),
        Route(R + "/import/{id}", raw(import_status), methods=["GET"]),
        Route(R + "/export/{id}", raw(export_status), methods=["GET"]),
        Route(R + "/packages", packages, methods=["GET"]),
        Route(R + "/packages/{name}", raw(package_get), methods=["GET"]),
        Route(R + "/packages/{name}", package_remove, methods=["DELETE"]),
        Route(R + "/packages/{name}/{version}", raw(package_get), methods=["GET"]),
        Route(R + "/packages/{name}/{version}", package_remove, methods=["DELETE"]),
        Route(R + "/packages/{name}/{version}/export", package_export, methods=["POST"]),
        Route(R + "/workspaces", workspaces, methods=["GET"]),
        Route(R + "/workspaces", workspace_create, methods=["POST"]),
        Route(W_, workspace_get, methods=["GET"]),
        Route(W_, workspace_remove, methods=["DELETE"]),
        Route(W_ + "/status", workspace_status, methods=["GET"]),
        Route(W_ + "/deploy", workspace_deploy, methods=["POST"]),
        Route(W_ + "/export", workspace_export, methods=["POST"]),
        Route(W_ + "/import", import_start, methods=["POST"]),
        Route(W_ + "/import/{id}", import_run, methods=["POST"]),
        Route(W_ + "/import/{id}", raw(import_status), methods=["GET"]),
        Route(W_ + "/log", workspace_log, methods=["GET"]),
        Route(W_ + "/diff", workspace_diff, methods=["GET"]),
        Route(W_ + "/reset", workspace_reset, methods=["POST"]),
        Route(W_ + "/datasets", raw(datasets_get), methods=["GET"]),
        Route(W_ + "/datasets/{path:path}", raw(datasets_get), methods=["GET"]),
        Route(W_ + "/datasets/{path:path}", datasets_put, methods=["PUT"]),
        Route(W_ + "/datasets/{path:path}", raw(datasets_post), methods=["POST"]),
        Route(W_ + "/tasks", tasks, methods=["GET"]),
        Route(W_ + "/tasks/{task}", task_get, methods=["GET"]),
        Route(W_ + "/tasks/{task}/executions", task_executions, methods=["GET"]),
        Route(W_ + "/dataflow", dataflow_start, methods=["POST"]),
        Route(W_ + "/dataflow/execution", raw(dataflow_execution), methods=["GET"]),
        Route(W_ + "/dataflow/events", raw(dataflow_events), methods=["GET"]),
        Route(W_ + "/dataflow/cancel", dataflow_cancel, methods=["POST"]),
        Route(W_ + "/dataflow/graph", dataflow_graph, methods=["GET"]),
        Route(W_ + "/dataflow/plan", dataflow_plan, methods=["GET"]),
        Route(W_ + "/dataflow/logs/{task}", raw(logs), methods=["GET"]),
        Route(W_ + "/dataflow/logs/{task}/follow", raw(logs_follow), methods=["GET"]),
        Route(R + "/objects", object_put, methods=["POST"]),
        Route(R + "/objects/{hash}", raw(object_get), methods=["GET", "HEAD"]),
        Route("/api/uploads/{id}", upload, methods=["PUT"]),
        Route("/api/downloads/{id}", download, methods=["GET"]),
    ]


def _job_reply(rec: dict, t: Any) -> Response:
    """An e3 client's poll of a job: still running, done with its value, or the error it raised."""
    jt = W.job_type(codec.east_type(t))
    if rec["status"] == "running":
        return beast2(W.success(jt, W.case("running", None)))
    if rec["status"] == "failed":
        e = rec["error"]
        return beast2(W.failure(jt, W.api_error(e)), headers=_error_headers(e))
    return beast2(W.success(jt, W.case("done", codec.to_east(rec["result"], t))))


def _abs(request: Request, path: str) -> str:
    """An absolute URL on this server, as the client reached it."""
    return str(request.base_url).rstrip("/") + path


async def _receive_body(srv: Server, request: Request, kind: str) -> Any:
    """A request body staged to a file, hashed as it arrives (its Content-Length, if any, checked)."""
    length = request.headers.get("content-length")
    up = srv.transfers.new_upload(request.path_params["repo"], kind, int(length) if length and length.isdigit() else None)
    up.status = "receiving"
    await srv.transfers.receive(up, request.stream())
    return up


def _execution_state(run: Any, offset: int, limit: int | None) -> Any:
    """A background run in the original's polling shape (`dataflow/execution`)."""
    evs = []
    finished = None
    for when, e in run.events:
        if isinstance(e, v.TaskStarted):
            evs.append(W.case("start", W.struct(task=e.task, timestamp=when)))
        elif isinstance(e, v.TaskFinished):
            if e.state == v.RAN:
                evs.append(W.case("complete", W.struct(task=e.task, timestamp=when, duration=float(e.seconds))))
            elif e.state == v.CACHED:
                evs.append(W.case("cached", W.struct(task=e.task, timestamp=when)))
            elif e.state == v.FAILED:
                evs.append(W.case("failed", W.struct(task=e.task, timestamp=when, duration=float(e.seconds), exitCode=-1)))
            elif e.state in (v.SKIPPED, v.STUCK):
                evs.append(W.case("input_unavailable", W.struct(task=e.task, timestamp=when, reason=e.message or e.state)))
            else:
                evs.append(W.case("error", W.struct(task=e.task, timestamp=when, message=e.message or e.state)))
        elif isinstance(e, v.RunFinished):
            finished = e.summary
    page = evs[offset:] if limit is None else evs[offset:offset + limit]
    if not run.done:
        status, summary = "running", None
    else:
        s = finished
        if s is None or run.error is not None:
            status = "failed"
        else:
            status = "aborted" if s.cancelled else ("completed" if s.ok else "failed")
        summary = W.struct(
            executed=s.count(v.RAN) + s.count(v.FAILED) if s else 0,
            cached=s.count(v.CACHED) if s else 0,
            failed=s.count(v.FAILED) if s else 0,
            skipped=s.count(v.SKIPPED) + s.count(v.STUCK) if s else 0,
            duration=float(s.seconds) if s else 0.0,
        )
    return W.struct(status=W.case(status, None), startedAt=run.started_at, completedAt=W.option(run.completed_at),
                    summary=W.option(summary), events=page, totalEvents=len(evs))


async def _object_response(f: Any, size: int, h: str) -> Response:
    """An object's bytes, streamed from `f` (a reader that checks them against their name as it
    reads: e3.storage.objects). The first chunk is read before the status is sent, so an object of up to a
    chunk that is damaged is an error reply naming it, not a connection cut mid-transfer; a larger
    one is cut short, and the client's check of X-Content-SHA256 names it."""
    try:
        first = await thread(f.read, CHUNK)
    except BaseException:
        f.close()
        raise
    return StreamingResponse(_stream_chunks(f, first), media_type=W.BEAST2,
                             headers={"Content-Length": str(size), "X-Content-SHA256": h})


def _stream_chunks(f: Any, first: bytes = b"") -> Iterator[bytes]:
    try:
        if first:
            yield first
        while True:
            b = f.read(CHUNK)
            if not b:
                return
            yield b
    finally:
        f.close()


def _file_chunks(path: str, delete: bool) -> Iterator[bytes]:
    import os

    try:
        with open(path, "rb") as f:
            yield from _stream_chunks(f)
    finally:
        if delete:
            try:
                os.unlink(path)
            except OSError:
                pass
