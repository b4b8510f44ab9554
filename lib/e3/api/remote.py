"""The repository interface over HTTP: a client of e3-api-server (or of the original's server).

`RemoteRepository.open("http://HOST:PORT/repos/NAME")` talks to
`http://HOST:PORT/api/repos/NAME/...` (the original's URL shape); `Server`
is the client of the server itself (its list of repositories), which it builds on. Every
request asks for e3's own values (`Accept: application/vnd.e3+beast2`, see
e3.server.routes), so each operation returns what the local implementation
returns; errors come back as the same E3Error classes, named by the server's
`X-E3-Error-Kind` (or, from a server that does not send it, by the original's
ApiError case).

Large bodies stream both ways: values, objects and zips are sent from the
caller's file in chunks and read back through a file object over the response,
whose SHA-256 is checked against the server's `X-Content-SHA256` as it is read
(by a thread of its own, ahead of the reader). A large value or a zip comes
down a capability URL, which carries no token: that one GET is made with the
standard library's http.client, which reads the body straight into each chunk.
A dataflow run's events and a log's chunks arrive as a stream of frames while
they happen. Anything that goes wrong on the way (nothing listening, the
connection cut, a 401, a reply that is not what was asked for) is one E3Error
naming the server.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import struct as _struct
import tempfile
import time
from typing import Any, BinaryIO, Callable, Iterator, Sequence
from urllib.parse import quote, unquote, urlsplit

from e3 import errors
from e3.api import credentials as cred
from e3.api import http_client
from e3.api.interface import DataflowRun, ObjectWriter, Repository
from e3.errors import E3Error

CHUNK = 1 << 20
POLL = 0.1
"""Seconds between polls of a background job (import, export, gc) on the server."""


class RemoteError(E3Error):
    """The server could not be reached, cut the connection, or answered something that is not an answer."""


def parse_url(url: str) -> tuple[str, str]:
    """`http(s)://HOST[:PORT]/repos/NAME` -> (origin, NAME), as the original reads it."""
    parts = urlsplit(url)
    segs = parts.path.split("/")
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise errors.UsageError(f"invalid remote URL {url!r}: expected http(s)://HOST[:PORT]/repos/NAME")
    if len(segs) < 3 or segs[0] != "" or segs[1] != "repos" or not segs[2] or any(segs[3:]):
        raise errors.UsageError(f"invalid remote URL {url!r}: expected /repos/{{repo}} in path")
    return f"{parts.scheme.lower()}://{parts.netloc}", unquote(segs[2])


def parse_server_url(url: str) -> str:
    """`http(s)://HOST[:PORT]` (or its `/repos`) -> the origin; a URL naming one repository is refused."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise errors.UsageError(f"invalid server URL {url!r}: expected http(s)://HOST[:PORT]")
    origin = f"{parts.scheme.lower()}://{parts.netloc}"
    if parts.path.rstrip("/") not in ("", "/repos"):
        raise errors.UsageError(f"{url} is not a server's URL: expected {origin} (a repository's URL is {origin}/repos/NAME)")
    return origin


def _q(seg: str) -> str:
    """One name as one URL path segment; a name that cannot be one is invalid input, as locally."""
    if seg in ("", ".", ".."):
        raise errors.UsageError(f"invalid name {seg!r}")
    return quote(seg, safe="")


def _object_name(name: str) -> str:
    """A hash or prefix, checked before it becomes part of a URL (the server checks it again)."""
    if not name or not name.isalnum() or not name.isascii():
        raise errors.InvalidHash(f"invalid object name {name!r} (expected lower-case hex digits)")
    return name


def _path(path: Sequence[str]) -> str:
    return "/".join(_q(p) for p in path)


class Server:
    """An e3 server at `origin`, as its client: requests carrying the user's token, replies read
    as the interface's values, errors raised as the library's. Requests go under `base`."""

    def __init__(self, origin: str) -> None:
        httpx = http_client.httpx()

        _larger_reads()
        self.origin = origin
        self.location = origin
        """What the user names it by, in messages."""
        self.base = f"{origin}/api"
        token = cred.token_for(self.origin)
        self._token = token
        headers = {"Accept": "application/vnd.e3+beast2"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.tls = http_client.tls_context()
        self.http = http_client.client(self.tls, headers=headers, timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=False)

    def repositories(self) -> list[str]:
        """The names of the repositories it serves."""
        return self._rpc("GET", "/repos", list[str])

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------ HTTP

    def _send(self, method: str, url: str, *, stream: bool = False, auth: bool = True, **kw: Any) -> Any:
        httpx = http_client.httpx()

        if not url.startswith("http"):
            url = self.base + url
        try:
            if auth:
                req = self.http.build_request(method, url, **kw)
            else:  # capability URLs must not carry the token
                req = self.http.build_request(method, url, **kw)
                req.headers.pop("Authorization", None)
            resp = self.http.send(req, stream=stream)
        except httpx.ConnectError:
            raise RemoteError(f"{self.origin}: cannot connect (connection refused, or no such host)") from None
        except httpx.TimeoutException:
            raise RemoteError(f"{self.origin}: no answer in time") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            raise RemoteError(f"{self.origin}: the server closed the connection mid-request") from None
        except httpx.HTTPError as e:
            raise RemoteError(f"{self.origin}: {type(e).__name__}: {e}") from None
        if resp.status_code == 401:
            reason = _text(resp)
            if stream:
                resp.close()
            if self._token:
                raise cred.AuthError(f"{self.origin} refused the token ({reason}); run: e3 login {self.origin}")
            raise cred.AuthError(f"not logged in to {self.origin}; run: e3 login {self.origin}")
        return resp

    def _raise_for(self, resp: Any) -> None:
        """Raise the error a reply carries in its headers or its JSON body."""
        kind = resp.headers.get("x-e3-error-kind")
        if kind:
            raise errors.error_class(kind)(unquote(resp.headers.get("x-e3-error-message", "")) or kind)
        text = _text(resp)
        if resp.status_code == 404 and resp.headers.get("content-type", "").startswith("application/json"):
            raise errors.NotARepository(f"{self.location}: {text or 'not found'}")
        if resp.status_code == 405:
            raise errors.UsageError(f"{self.origin}: not allowed ({text})")
        raise RemoteError(f"{self.origin}: HTTP {resp.status_code}: {text or 'no explanation'}")

    def _decode_reply(self, resp: Any, t: Any, wire_t: Any = None) -> Any:
        from e3.api import codec
        from e3.api import wire as W

        ctype = resp.headers.get("content-type", "").split(";")[0].strip()
        if ctype != W.BEAST2:
            if resp.status_code >= 400 or resp.headers.get("x-e3-error-kind"):
                self._raise_for(resp)
            raise RemoteError(f"{self.origin}: unexpected reply (HTTP {resp.status_code}, {ctype or 'no content type'})")
        east_t = wire_t if wire_t is not None else codec.east_type(t)
        try:
            env = W.decode(resp.content, W.response_type(east_t))
        except E3Error:
            raise RemoteError(f"{self.origin}: a reply that is not what was asked for (HTTP {resp.status_code})") from None
        if env.type == "error":
            kind = resp.headers.get("x-e3-error-kind")
            if kind:
                raise errors.error_class(kind)(unquote(resp.headers.get("x-e3-error-message", "")) or kind)
            raise errors.error_class(env.value.type)(W.error_message(env.value))
        return env.value if wire_t is not None else codec.from_east(env.value, t)

    def _rpc(self, method: str, path: str, t: Any, *, body: tuple[Any, Any] | None = None, params: dict | None = None,
             expect: tuple[int, ...] = (200,), wire_t: Any = None) -> Any:
        from e3.api import wire as W

        kw: dict[str, Any] = {"params": {k: v for k, v in (params or {}).items() if v is not None}}
        if body is not None:
            kw["content"] = W.encode(body[0], body[1])
            kw["headers"] = {"Content-Type": W.BEAST2}
        resp = self._send(method, path, **kw)
        if resp.status_code not in expect and resp.status_code != 200:
            self._raise_for(resp)
        return self._decode_reply(resp, t, wire_t)

    def _job(self, path: str, t: Any) -> Any:
        """Poll a background job on the server until it is done; its value, or the error it raised."""
        from e3.api import codec
        from e3.api import wire as W

        jt = W.job_type(codec.east_type(t))
        delay = 0.02
        while True:
            v = self._rpc("GET", path, None, wire_t=jt)
            if v.type == "done":
                return codec.from_east(v.value, t)
            time.sleep(delay)
            delay = min(delay * 2, POLL)

    def _upload(self, path: str, source: BinaryIO, params: dict | None = None) -> Any:
        """POST {size} to `path`, PUT the bytes to the capability URL it gives; the job's id."""
        from e3.api import wire as W

        with _sized(source) as (f, size):
            started = self._rpc("POST", path, W.UploadStarted, body=(W.struct(size=size), W.PackageTransferInitRequestType),
                                params=params)
            resp = self._send("PUT", started.upload_url, auth=False, content=_chunks(f), timeout=_body_timeout(),
                              headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
            if resp.status_code != 200:
                raise RemoteError(f"{self.origin}: upload refused: {_text(resp) or resp.status_code}")
        self._rpc("POST", f"{path}/{started.id}", W.UploadStarted)
        return started.id

    def _download(self, ready: Any, into: BinaryIO) -> None:
        body = self._capability_get(ready.url)
        try:
            n = 0
            for chunk in body.chunks:
                into.write(chunk)
                n += len(chunk)
            if n != ready.size:
                raise RemoteError(f"{self.origin}: download cut short ({n} of {ready.size} bytes)")
        finally:
            body.close()

    def _capability_get(self, url: str) -> "_Stream":
        """GET a capability URL (a download, which carries no token): its body, status 200.

        Read with the standard library's HTTP client, which reads a large body from the
        socket straight into each chunk; httpx's pure-Python HTTP/1.1 parser copies every
        byte twice more, and a large download spent most of its time doing so. Through
        httpx when the environment names a proxy for the URL (as httpx would use it)."""
        if not _proxied(url):
            return self._direct_get(url)
        resp = self._send("GET", url, stream=True, auth=False)
        if resp.status_code != 200:
            resp.read()
            resp.close()
            self._raise_for(resp)
        return _Stream(resp.headers, _iter(resp, self.origin), resp.close)

    def _direct_get(self, url: str) -> "_Stream":
        import http.client
        import socket

        httpx = http_client.httpx()

        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if parts.scheme == "https":
            conn: Any = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=60, context=self.tls)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            conn.request("GET", target, headers={"Accept-Encoding": "identity"})
            r = conn.getresponse()
        except (ConnectionRefusedError, socket.gaierror):
            conn.close()
            raise RemoteError(f"{self.origin}: cannot connect (connection refused, or no such host)") from None
        except (TimeoutError, socket.timeout):
            conn.close()
            raise RemoteError(f"{self.origin}: no answer in time") from None
        except (OSError, http.client.HTTPException):
            conn.close()
            raise RemoteError(f"{self.origin}: the server closed the connection mid-request") from None
        headers = httpx.Headers(r.getheaders())
        if r.status != 200:
            try:
                content = r.read()
            except (OSError, http.client.HTTPException):
                content = b""
            conn.close()
            self._raise_for(httpx.Response(r.status, headers=headers, content=content))

        def chunks() -> Iterator[bytes]:
            try:
                while chunk := r.read(CHUNK):
                    yield chunk
            except (TimeoutError, socket.timeout):
                raise RemoteError(f"{self.origin}: no answer in time") from None
            except (OSError, http.client.HTTPException):
                raise RemoteError(f"{self.origin}: the server closed the connection mid-transfer") from None

        def close() -> None:
            r.close()
            conn.close()

        return _Stream(headers, chunks(), close)

    def _stream_get(self, path: str, params: dict | None = None, expect_hash: str | None = None) -> BinaryIO:
        """A value's bytes as a file object over the response, checked against its SHA-256 as read."""
        resp = self._send("GET", path, stream=True, params=params or {})
        if resp.status_code != 200:
            resp.read()
            resp.close()
            self._raise_for(resp)
        if resp.headers.get("content-type", "").startswith("application/json"):
            import json

            resp.read()
            resp.close()
            try:
                url = json.loads(resp.content)["url"]
            except (ValueError, KeyError, TypeError):
                raise RemoteError(f"{self.origin}: a reply that is not what was asked for (JSON without a url)") from None
            body = self._capability_get(url)
        else:
            body = _Stream(resp.headers, _iter(resp, self.origin), resp.close)
        return _ResponseReader(body, self.origin, expect_hash or body.headers.get("x-content-sha256"))

    def _frames(self, path: str, item_t: Any, params: dict | None = None) -> Iterator[Any]:
        """Open a streamed reply now (so that an error status is raised by the call), read its frames later."""
        httpx = http_client.httpx()

        resp = self._send("GET", path, stream=True, params=params or {},
                          timeout=httpx.Timeout(None, connect=10.0))
        if resp.status_code != 200:
            resp.read()
            resp.close()
            self._raise_for(resp)
        return self._frame_items(resp, item_t)

    def _frame_items(self, resp: Any, item_t: Any) -> Iterator[Any]:
        from e3.api import codec
        from e3.api import wire as W

        try:
            ft = W.frame_type(codec.east_type(item_t))
            decode = W.decoder(ft)
            buf = bytearray()
            for chunk in _iter(resp, self.origin):
                buf += chunk
                while len(buf) >= 4:
                    n = _struct.unpack(">I", buf[:4])[0]
                    if len(buf) < 4 + n:
                        break
                    if n == 0:  # a heartbeat: the server is there, with nothing to say yet
                        del buf[:4]
                        continue
                    try:
                        frame = decode(bytes(buf[4:4 + n]))
                    except E3Error:
                        raise RemoteError(f"{self.origin}: a stream that is not what was asked for") from None
                    del buf[:4 + n]
                    if frame.type == "error":
                        raise errors.error_class(frame.value["kind"])(frame.value["message"])
                    yield codec.from_east(frame.value, item_t)
            if buf:
                raise RemoteError(f"{self.origin}: the server closed the connection mid-stream")
        finally:
            resp.close()


class RemoteRepository(Server, Repository):
    """A repository behind an e3 server."""

    def __init__(self, url: str) -> None:
        origin, self.name = parse_url(url)
        super().__init__(origin)
        self.location = f"{self.origin}/repos/{self.name}"
        self.base = f"{self.origin}/api/repos/{_q(self.name)}"

    def __repr__(self) -> str:
        return f"RemoteRepository({self.location!r})"

    @classmethod
    def open(cls, url: str) -> "RemoteRepository":
        return cls(url)

    @classmethod
    def create(cls, url: str) -> "RemoteRepository":
        from e3.api import wire as W

        r = cls(url)
        r._rpc("PUT", "", str, expect=(201,), wire_t=W.S)
        return r

    # ------------------------------------------------------------ repository

    def repository_status(self):  # noqa: ANN201
        import dataclasses

        from e3.api import values as v

        # The server names its own directory; to the user the repository is where they reached it.
        return dataclasses.replace(self._rpc("GET", "/status", v.RepositoryStatus), location=self.location)

    def repository_gc(self, *, dry_run: bool = False, prune: str | None = None):  # noqa: ANN201
        from e3.api import values as v
        from e3.api import wire as W

        started = self._rpc("POST", "/gc", W.GcStarted, body=(W.struct(dryRun=dry_run, minAge=W.option(None)), W.GcRequestType),
                            params={"prune": prune}, expect=(202,))
        return self._job(f"/gc/{started.id}", v.GcReport)

    def repository_locks(self):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", "/locks", list[v.LockInfo])

    def repository_remove(self, *, force: bool = False) -> None:
        from e3.api import wire as W

        self._rpc("DELETE", "", None, params={"force": "1" if force else None}, wire_t=W.N)

    # ------------------------------------------------------------ packages

    def package_import(self, zip: BinaryIO, *, replace: bool = False):  # noqa: ANN201
        from e3.api import values as v

        jid = self._upload("/import", zip, params={"replace": "1" if replace else None})
        return self._job(f"/import/{jid}", v.PackageImport)

    def package_export(self, name: str, version: str | None, into: BinaryIO):  # noqa: ANN201
        from e3.api import wire as W

        started = self._rpc("POST", f"/packages/{_q(name)}/{_q(version or '-')}/export", W.UploadStarted)
        ready = self._job(f"/export/{started.id}", W.ExportReady)
        self._download(ready, into)
        return ready.export

    def package_list(self):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", "/packages", list[v.PackageInfo])

    def package_get(self, name: str, version: str | None = None):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", f"/packages/{_q(name)}" + (f"/{_q(version)}" if version else ""), v.PackageDetails)

    def package_remove(self, name: str, version: str | None = None):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("DELETE", f"/packages/{_q(name)}" + (f"/{_q(version)}" if version else ""), v.PackageInfo)

    # ------------------------------------------------------------ workspaces

    def workspace_create(self, ws: str):  # noqa: ANN201
        from e3.api import values as v
        from e3.api import wire as W

        return self._rpc("POST", "/workspaces", v.WorkspaceInfo, body=(W.struct(name=ws), W.WorkspaceCreateRequestType))

    def workspace_deploy(self, ws: str, package: str, version: str | None = None, *, create: bool = False):  # noqa: ANN201
        from e3.api import values as v
        from e3.api import wire as W

        if not create:
            self.workspace_get(ws)  # WorkspaceNotFound: the route makes a missing one, as the original engine's does
        ref = f"{package}@{version}" if version else package
        return self._rpc("POST", f"/workspaces/{_q(ws)}/deploy", v.DeployResult,
                         body=(W.struct(packageRef=ref), W.WorkspaceDeployRequestType))

    def workspace_list(self):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", "/workspaces", list[v.WorkspaceInfo])

    def workspace_get(self, ws: str):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", f"/workspaces/{_q(ws)}", v.WorkspaceInfo)

    def workspace_status(self, ws: str):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", f"/workspaces/{_q(ws)}/status", v.WorkspaceStatus)

    def workspace_log(self, ws: str, rev: str | None = None):  # noqa: ANN201
        from e3.api import values as v

        return iter(self._rpc("GET", f"/workspaces/{_q(ws)}/log", list[v.HistoryEntry], params={"rev": rev}))

    def workspace_diff(self, ws: str, old: str | None = None, new: str | None = None):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", f"/workspaces/{_q(ws)}/diff", v.WorkspaceDiff, params={"old": old, "new": new})

    def workspace_reset(self, ws: str, rev: str):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("POST", f"/workspaces/{_q(ws)}/reset", v.ResetResult, params={"rev": rev})

    def workspace_export(self, ws: str, into: BinaryIO, *, name: str | None = None, version: str | None = None):  # noqa: ANN201
        from e3.api import wire as W

        started = self._rpc("POST", f"/workspaces/{_q(ws)}/export", W.UploadStarted,
                            body=(W.struct(name=W.option(name), version=W.option(version)), W.WorkspaceExportRequestType))
        ready = self._job(f"/export/{started.id}", W.ExportReady)
        self._download(ready, into)
        return ready.export

    def workspace_import(self, ws: str, zip: BinaryIO):  # noqa: ANN201
        from e3.api import values as v

        jid = self._upload(f"/workspaces/{_q(ws)}/import", zip)
        return self._job(f"/workspaces/{_q(ws)}/import/{jid}", v.WorkspaceImport)

    def workspace_remove(self, ws: str) -> None:
        self._rpc("DELETE", f"/workspaces/{_q(ws)}", type(None))

    # ------------------------------------------------------------ datasets

    def dataset_list(self, ws: str, path=(), *, recursive: bool = False):  # noqa: ANN001, ANN201
        from e3.api import values as v

        p = f"/workspaces/{_q(ws)}/datasets" + (f"/{_path(path)}" if path else "")
        return self._rpc("GET", p, list[v.DatasetEntry], params={"list": "true", "recursive": "true" if recursive else None})

    def dataset_status(self, ws: str, path):  # noqa: ANN001, ANN201
        from e3.api import values as v

        return self._rpc("GET", f"/workspaces/{_q(ws)}/datasets/{_path(path)}", v.DatasetEntry, params={"status": "true"})

    def dataset_get(self, ws: str, path) -> BinaryIO:  # noqa: ANN001
        return self._stream_get(f"/workspaces/{_q(ws)}/datasets/{_path(path)}")

    def dataset_set(self, ws: str, path, value, *, type: object = None) -> str:  # noqa: ANN001, A002
        from e3.api import wire as W

        headers = {"Content-Type": W.BEAST2 if value.format == "beast2" else "application/octet-stream"}
        fmt = value.format or "unknown"  # the server refuses it, naming it, as the local implementation does
        if type is not None:
            headers["X-E3-Type"] = base64.b64encode(W.encode(type, W.TYPE_OF_TYPE)).decode()
        with _sized(value.stream, spool=False) as (f, size):
            if size is not None:
                headers["Content-Length"] = str(size)
            resp = self._send("PUT", f"/workspaces/{_q(ws)}/datasets/{_path(path)}", content=_chunks(f),
                              params={"format": fmt, "name": value.name}, headers=headers, timeout=_body_timeout())
        return self._decode_reply(resp, str)

    # ------------------------------------------------------------ dataflow

    def dataflow_start(self, ws: str, *, task: str | None = None, upstream: bool = True, concurrency: int | None = None,
                       force: bool = False, timeout: float | None = None, spawn: bool = False,
                       executor: str | None = None) -> DataflowRun:
        from e3.api import wire as W

        if executor is not None:
            raise errors.UsageError("a server's runs execute where the server says (e3-api-server --executor), not where a client asks")

        body = W.struct(concurrency=W.option(concurrency), force=force, filter=W.option(task))
        params = {"timeout": timeout, "spawn": "1" if spawn else None, "upstream": None if upstream else "0"}
        self._rpc("POST", f"/workspaces/{_q(ws)}/dataflow", type(None), body=(body, W.DataflowRequestType),
                  params=params, expect=(202,))
        return RemoteRun(self, ws)

    def dataflow_plan(self, ws: str, *, task: str | None = None, upstream: bool = True, force: bool = False):  # noqa: ANN201
        from e3.api import values as v

        params = {"filter": task, "upstream": None if upstream else "0", "force": "1" if force else None}
        return self._rpc("GET", f"/workspaces/{_q(ws)}/dataflow/plan", v.DataflowPlan, params=params)

    def dataflow_cancel(self, ws: str) -> bool:
        return self._rpc("POST", f"/workspaces/{_q(ws)}/dataflow/cancel", bool)

    def dataflow_graph(self, ws: str):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", f"/workspaces/{_q(ws)}/dataflow/graph", v.DataflowGraph)

    # ------------------------------------------------------------ tasks

    def task_list(self, ws: str):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", f"/workspaces/{_q(ws)}/tasks", list[v.TaskInfo])

    def task_get(self, ws: str, task: str):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", f"/workspaces/{_q(ws)}/tasks/{_q(task)}", v.TaskInfo)

    def task_executions(self, ws: str, task: str):  # noqa: ANN201
        from e3.api import values as v

        return self._rpc("GET", f"/workspaces/{_q(ws)}/tasks/{_q(task)}/executions", list[v.ExecutionInfo])

    def task_run(self, package, version, task, inputs, *, force=False, spawn=False, timeout=None, echo=None):  # noqa: ANN001, ANN201
        raise errors.UsageError(f"running one task outside a workspace is local only ({self.location} is a server)")

    # ------------------------------------------------------------ logs

    def log_read(self, ws: str, task: str, *, offset: int | None = None, all_executions: bool = False,  # noqa: ANN201
                 markers: bool = False):
        from e3.api import values as v

        return self._rpc("GET", f"/workspaces/{_q(ws)}/dataflow/logs/{_q(task)}", v.LogRead,
                         params={"offset": offset, "all": "1" if all_executions else None, "markers": "1" if markers else None})

    def log_follow(self, ws: str, task: str, *, offset: int | None = None, all_executions: bool = False,  # noqa: ANN201
                   markers: bool = False):
        from e3.api import values as v

        params = {"offset": offset, "all": "1" if all_executions else None, "markers": "1" if markers else None}
        return self._frames(f"/workspaces/{_q(ws)}/dataflow/logs/{_q(task)}/follow", v.LogChunk,
                            {k: x for k, x in params.items() if x is not None})

    # ------------------------------------------------------------ objects

    def object_exists(self, hash: str) -> bool:  # noqa: A002
        resp = self._send("HEAD", f"/objects/{_object_name(hash)}")
        if resp.status_code == 404:
            return False
        if resp.status_code != 200:
            self._raise_for(resp)
        return True

    def object_resolve(self, name: str) -> str:
        return self._rpc("GET", f"/objects/{_object_name(name)}", str, params={"resolve": "1"})

    def object_size(self, hash: str) -> int:  # noqa: A002
        resp = self._send("HEAD", f"/objects/{_object_name(hash)}")
        if resp.status_code != 200:
            self._raise_for(resp)
        return int(resp.headers["content-length"])

    def object_head(self, hash: str, n: int) -> tuple[int, bytes]:  # noqa: A002
        resp = self._send("GET", f"/objects/{_object_name(hash)}", params={"head": n})
        if resp.status_code != 200:
            self._raise_for(resp)
        return int(resp.headers["x-content-length"]), resp.content

    def object_read(self, hash: str) -> BinaryIO:  # noqa: A002
        return self._stream_get(f"/objects/{_object_name(hash)}", expect_hash=hash)

    def object_write(self, source: BinaryIO, check: Callable[[BinaryIO], object] | None = None) -> str:
        from e3.api import wire as W

        if check is not None:  # the check reads the whole bytes as a file before anything is sent
            with tempfile.TemporaryFile() as f:
                shutil.copyfileobj(source, f, CHUNK)
                f.seek(0)
                check(f)
                f.seek(0)
                return self.object_write(f)
        with _sized(source, spool=False) as (f, size):
            headers = {"Content-Type": W.BEAST2}
            if size is not None:
                headers["Content-Length"] = str(size)
            resp = self._send("POST", "/objects", content=_chunks(f), headers=headers, timeout=_body_timeout())
        return self._decode_reply(resp, str)

    def object_writer(self, *, batch: bool = True) -> ObjectWriter:
        return RemoteObjectWriter(self)  # batched or not, each write is durable when its request returns


class RemoteRun(DataflowRun):
    """A run in the background of the server, followed through its event stream."""

    def __init__(self, repo: RemoteRepository, ws: str) -> None:
        self.repo = repo
        self.workspace = ws
        self.summary = None
        self._seen = 0

    def events(self) -> Iterator[Any]:
        from e3.api import values as v

        path = f"/workspaces/{_q(self.workspace)}/dataflow/events"
        try:
            for event in self.repo._frames(path, v.DataflowEvent, {"offset": self._seen}):
                self._seen += 1
                if isinstance(event, v.RunFinished):
                    self.summary = event.summary
                yield event
        except KeyboardInterrupt:
            try:
                self.cancel()
            finally:
                raise KeyboardInterrupt from None
        if self.summary is None:
            raise RemoteError(f"{self.repo.origin}: the run's events ended before the run did")

    def cancel(self) -> None:
        self.repo.dataflow_cancel(self.workspace)

    def close(self) -> None:
        """Give the run up unless it was followed to its end: cancel it and wait until it has stopped."""
        if self.summary is None:
            self.cancel()
            for _ in self.events():
                pass


class RemoteObjectWriter(ObjectWriter):
    """Objects written one request each: every write is durable when it returns."""

    def __init__(self, repo: RemoteRepository) -> None:
        self.repo = repo

    def write(self, data: bytes | memoryview) -> str:
        return self.repo.object_write(io.BytesIO(bytes(data)))

    def write_stream(self, source: BinaryIO, check: Callable[[BinaryIO], object] | None = None) -> str:
        return self.repo.object_write(source, check)

    @property
    def pending(self) -> int:
        return 0

    def flush(self) -> None:
        pass

    def discard(self) -> None:
        pass


# ------------------------------------------------------------------ streams


class _Stream:
    """A response's body as it arrives: its headers, an iterator of its chunks, and how to let it go."""

    def __init__(self, headers: Any, chunks: Iterator[bytes], close: Callable[[], object]) -> None:
        self.headers, self.chunks, self.close = headers, chunks, close


def _proxied(url: str) -> bool:
    """Does the environment name a proxy for `url` (HTTP_PROXY and the like, unless NO_PROXY spares it)?"""
    import urllib.request

    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class _Body:
    """A streamed response's body, chunk by chunk: counted, hashed, and checked at its end.

    `receive_ahead()` moves the receiving to a thread of its own (the socket's reads
    and SHA-256 release the GIL), a few chunks ahead of the reader. The thread holds
    this object, never the reader, so a reader dropped unclosed is still collected
    (closing it stops the thread).
    """

    AHEAD = 8
    """Chunks the receiving thread may hold that the reader has not taken yet."""

    def __init__(self, stream: "_Stream", origin: str, expect_hash: str | None) -> None:
        self.origin, self.expect = origin, expect_hash
        self.it = stream.chunks
        self.h = hashlib.sha256() if expect_hash else None
        self.length = int(stream.headers["content-length"]) if "content-length" in stream.headers else None
        self.n = 0
        self.queue: Any = None
        self.thread: Any = None

    def receive_ahead(self) -> None:
        import queue
        import threading

        self.queue = queue.Queue(self.AHEAD)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._receive, name="e3-download", daemon=True)
        self.thread.start()

    def next(self) -> bytes | None:
        """The next chunk, or None at the end; raises what went wrong, or a check that failed."""
        if self.thread is None:
            return self._next()
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _next(self) -> bytes | None:
        try:
            chunk = next(self.it)
        except StopIteration:
            self._finish()
            return None
        self.n += len(chunk)
        if self.h is not None:
            self.h.update(chunk)
        return chunk

    def _receive(self) -> None:
        try:
            while not self.stop.is_set():
                chunk = self._next()
                self._put(chunk)
                if chunk is None:
                    return
        except BaseException as e:  # handed to the reader, who raises it
            self._put(e)

    def _put(self, item: Any) -> None:
        import queue

        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _finish(self) -> None:
        if self.length is not None and self.n != self.length:
            raise RemoteError(f"{self.origin}: the server closed the connection mid-transfer ({self.n} of {self.length} bytes)")
        if self.h is not None and self.h.hexdigest() != self.expect:
            raise errors.CorruptObject(f"{self.origin}: the bytes received are not object {self.expect}")

    def stop_receiving(self) -> None:
        if self.thread is not None:
            self.stop.set()  # the thread ends after the chunk it is receiving
            self.thread.join(1.0)  # (a server that stalls mid-body: the response is closed under it)


class _ResponseReader(io.BufferedIOBase):
    """A readable binary file over a streamed response, checking the bytes' SHA-256 at the end.

    A body larger than a chunk is received and hashed by a thread of its own
    (`_Body`), so that receiving and checking overlap with whatever the reader
    does with the bytes (writing them to a file). `read(n)` hands on the
    network's chunks as they come, without copying one that `n` covers whole.
    """

    def __init__(self, stream: "_Stream", origin: str, expect_hash: str | None) -> None:
        self.stream = stream
        self.body = _Body(stream, origin, expect_hash)
        if self.body.length is None or self.body.length > CHUNK:
            self.body.receive_ahead()
        self.chunk = b""
        self.at = 0
        """What of `chunk` was read already."""
        self.eof = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while self.at >= len(self.chunk) and not self.eof:
            try:
                item = self.body.next()
            except BaseException:
                self.eof = True
                raise
            if item is None:
                self.eof = True
                return False
            self.chunk, self.at = item, 0
        return self.at < len(self.chunk)

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while self._fill():
                parts.append(self.chunk[self.at :])
                self.at = len(self.chunk)
            return b"".join(parts)
        if not self._fill():
            return b""
        if self.at == 0 and n >= len(self.chunk):
            out = self.chunk
        else:
            out = self.chunk[self.at : self.at + n]
        self.at += len(out)
        return out

    read1 = read

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.body.stop_receiving()
            self.stream.close()
        super().close()


def _iter(resp: Any, origin: str) -> Iterator[bytes]:
    httpx = http_client.httpx()

    try:
        yield from resp.iter_raw()  # as it arrives: a chunk size would hold back a stream's frames
    except (httpx.RemoteProtocolError, httpx.ReadError):
        raise RemoteError(f"{origin}: the server closed the connection mid-transfer") from None
    except httpx.TimeoutException:
        raise RemoteError(f"{origin}: no answer in time") from None


def _larger_reads() -> None:
    """Read responses from the socket 1 MiB at a time instead of httpcore's 64 KiB.

    A large value's download is bound by the per-read cost of the pure-Python
    HTTP/1.1 stack: measured here, 1 MiB reads move ~60% more bytes per second.
    The setting is httpcore's class attribute; e3's CLI is its only user in the process.
    """
    try:
        from httpcore._sync.http11 import HTTP11Connection
    except ImportError:  # another httpcore: keep its default
        return
    if getattr(HTTP11Connection, "READ_NUM_BYTES", 0) < CHUNK:
        HTTP11Connection.READ_NUM_BYTES = CHUNK


def _body_timeout() -> Any:
    """A request carrying a value waits for the answer as long as the server takes to check and
    store it (minutes for a large value); connecting still times out."""
    httpx = http_client.httpx()

    return httpx.Timeout(None, connect=10.0)


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while True:
        b = f.read(CHUNK)
        if not b:
            return
        yield b


class _sized:
    """(file, size) for a body: a seekable file as it is, else spooled to a temporary file first.

    With `spool=False` an unseekable stream is sent as it comes, size None (chunked).
    """

    def __init__(self, source: BinaryIO, spool: bool = True) -> None:
        self.source, self.spool, self.tmp = source, spool, None

    def __enter__(self) -> tuple[BinaryIO, int | None]:
        try:
            pos = self.source.tell()
            end = self.source.seek(0, os.SEEK_END)
            self.source.seek(pos)
            return self.source, end - pos
        except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
            pass
        if not self.spool:
            return self.source, None
        self.tmp = tempfile.TemporaryFile()
        shutil.copyfileobj(self.source, self.tmp, CHUNK)
        size = self.tmp.tell()
        self.tmp.seek(0)
        return self.tmp, size

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:
            self.tmp.close()


def _text(resp: Any) -> str:
    try:
        resp.read()
        t = resp.text.strip()
    except Exception:
        return ""
    if t.startswith("{"):
        import json

        try:
            err = json.loads(t).get("error")
            if isinstance(err, dict):
                return str(err.get("message", ""))
            if isinstance(err, str):
                return str(json.loads(t).get("message", err))
        except ValueError:
            pass
    return t.splitlines()[0][:200] if t else ""
