"""Capability URLs for large bodies: uploads staged and hashed as they arrive, downloads once.

As the original: a client announces an upload (its size, and for a dataset its
SHA-256) on an authenticated route and gets back `/api/uploads/ID`; it PUTs the
bytes there without a token (the unguessable ID is the capability); a commit
route then checks and uses them. Here the bytes go straight to a temporary
file in the server's staging directory, hashed chunk by chunk as they arrive,
so memory stays flat whatever the size. An upload cut off halfway, longer than
announced, or whose size or hash is not the announced one is deleted at once
and never becomes an object or a ref. A download ID serves one stored object or
one staged export, once.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

CHUNK = 1 << 20
STAGING_PREFIX = "e3-api-server-"
"""Staging directories are named e3-api-server-PID-*: a server killed with SIGKILL leaves its
own behind, and the next server to start removes those whose process is gone."""
TTL = 3600
"""Seconds an unused upload or download ID stays valid."""


class TransferError(Exception):
    """An upload that cannot be used (the message says why); nothing of it is kept."""


@dataclass
class Upload:
    id: str
    repo: str
    kind: str
    """'package', 'workspace' or 'dataset'."""
    size: int | None
    """Bytes announced (None: whatever arrives)."""
    hash: str | None = None
    target: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    """The staged file, once all its bytes arrived and checked."""
    sha256: str | None = None
    status: str = "created"
    """created -> receiving -> uploaded -> committed (being imported or stored); spent uploads are forgotten."""
    result: Any = None
    error: str | None = None
    created: float = field(default_factory=time.time)


@dataclass
class Download:
    id: str
    repo: str
    hash: str | None = None
    """An object to stream, or:"""
    path: str | None = None
    """a staged file (an export), deleted once served."""
    size: int = 0
    content_type: str = "application/beast2"
    created: float = field(default_factory=time.time)


class Transfers:
    """Every upload and download ID of one server process, and its staging directory."""

    def __init__(self, staging: str | None = None):
        sweep(staging)
        self.dir = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=staging)
        self.uploads: dict[str, Upload] = {}
        self.downloads: dict[str, Download] = {}
        self.lock = threading.Lock()

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _expire(self) -> None:
        now = time.time()
        busy = ("receiving", "committed")  # a slow upload or a long import is not abandoned
        for table in (self.uploads, self.downloads):
            for k in [k for k, v in table.items() if now - v.created > TTL and getattr(v, "status", None) not in busy]:
                gone = table.pop(k)
                if gone.path:
                    _unlink(gone.path)

    def new_upload(self, repo: str, kind: str, size: int | None, hash: str | None = None, **target: Any) -> Upload:
        with self.lock:
            self._expire()
            up = Upload(secrets.token_hex(16), repo, kind, size, hash, target)
            self.uploads[up.id] = up
        return up

    def new_download(self, repo: str, *, hash: str | None = None, path: str | None = None, size: int = 0,
                     content_type: str = "application/beast2") -> Download:
        with self.lock:
            self._expire()
            d = Download(secrets.token_hex(16), repo, hash, path, size, content_type)
            self.downloads[d.id] = d
        return d

    def take_download(self, id: str) -> Download | None:
        with self.lock:
            return self.downloads.pop(id, None)

    def staged_file(self, suffix: str = "") -> tuple[int, str]:
        return tempfile.mkstemp(prefix="part-", suffix=suffix, dir=self.dir)

    async def receive(self, up: Upload, chunks: AsyncIterator[bytes]) -> None:
        """Stream a PUT body into a staged file, hashing as it goes; checks size and hash at the end.

        On any failure (cut off, too long, wrong size or hash) the file is deleted
        and TransferError raised; the upload is then spent.
        """
        fd, path = self.staged_file()
        h = hashlib.sha256()
        n = 0
        ok = False
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    n += len(chunk)
                    if up.size is not None and n > up.size:
                        raise TransferError(f"size mismatch: more than the {up.size} bytes announced")
                    h.update(chunk)
                    f.write(chunk)
            if up.size is not None and n != up.size:
                raise TransferError(f"size mismatch: expected {up.size} bytes, got {n}")
            digest = h.hexdigest()
            if up.hash is not None and digest != up.hash:
                raise TransferError(f"hash mismatch: expected {up.hash}, got {digest}")
            up.path, up.sha256, up.size, up.status = path, digest, n, "uploaded"
            ok = True
        finally:
            if not ok:
                _unlink(path)
                with self.lock:
                    self.uploads.pop(up.id, None)

    def finish(self, up: Upload) -> None:
        """The staged bytes were used (or refused): delete them and forget the upload."""
        if up.path:
            _unlink(up.path)
            up.path = None
        with self.lock:
            self.uploads.pop(up.id, None)


def sweep(staging: str | None = None) -> None:
    """Remove the staging directories of servers that are no longer running."""
    base = staging or tempfile.gettempdir()
    try:
        entries = os.listdir(base)
    except OSError:
        return
    for name in entries:
        if not name.startswith(STAGING_PREFIX):
            continue
        pid = name[len(STAGING_PREFIX):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # its server is alive
        except ProcessLookupError:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except OSError:
            continue


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
