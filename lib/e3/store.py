"""The content-addressed object store: bytes named by their SHA-256.

An object lives at `objects/<2 hex>/<62 hex>.beast2` (the original engine's
naming, so object directories and package zips interoperate). Writes stream
through the hash into a temporary file in `tmp/`, are fsynced, and renamed into
place, so a reader never sees a partial object and two writers of the same
bytes cannot hurt each other. A writer holds an exclusive flock(2) on its
temporary file until the rename, so `e3-fsck` can tell a write in progress
from a file left behind by a crash. This module knows bytes, not East values: it
never imports the East runtime, so plumbing that only moves bytes starts fast.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from e3.errors import AmbiguousObject, CorruptObject, InvalidHash, ObjectNotFound, StorageError

HASH_RE = re.compile(r"[0-9a-f]{64}")
PREFIX_RE = re.compile(r"[0-9a-f]{4,64}")
SUFFIX = ".beast2"
CHUNK = 1 << 20
MIN_PREFIX = 4
TMP_PREFIX = "obj-"
TMP_SUFFIX = ".tmp"


def check_hash(text: str) -> str:
    """Return `text` if it is a full object name (64 lower-case hex), else raise."""
    if not HASH_RE.fullmatch(text):
        raise InvalidHash(f"invalid object hash {text!r} (expected 64 lower-case hex digits)")
    return text


def hash_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


class ObjectStore:
    """Objects under `<root>/objects`, temporary files under `<root>/tmp`."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.objects_dir = self.root / "objects"
        self.tmp_dir = self.root / "tmp"

    # ------------------------------------------------------------ naming

    def path(self, obj: str) -> Path:
        check_hash(obj)
        return self.objects_dir / obj[:2] / (obj[2:] + SUFFIX)

    def exists(self, obj: str) -> bool:
        return self.path(obj).is_file()

    def resolve(self, name: str) -> str:
        """A full hash from a full hash or a unique prefix of at least 4 hex digits."""
        if HASH_RE.fullmatch(name):
            if not self.exists(name):
                raise ObjectNotFound(f"object {name} not found")
            return name
        if not PREFIX_RE.fullmatch(name):
            raise InvalidHash(f"invalid object name {name!r} (expected at least {MIN_PREFIX} lower-case hex digits)")
        bucket = self.objects_dir / name[:2]
        rest = name[2:]
        try:
            entries = os.listdir(bucket)
        except FileNotFoundError:
            entries = []
        matches = [
            name[:2] + e[: -len(SUFFIX)] for e in entries if e.endswith(SUFFIX) and e.startswith(rest) and len(e) == 62 + len(SUFFIX)
        ]
        if not matches:
            raise ObjectNotFound(f"object {name} not found")
        if len(matches) > 1:
            raise AmbiguousObject(f"short object name {name} is ambiguous ({len(matches)} objects match)")
        return matches[0]

    def __iter__(self) -> Iterator[str]:
        """Every stored object's hash, in no particular order."""
        try:
            buckets = os.scandir(self.objects_dir)
        except FileNotFoundError:
            return
        with buckets:
            for bucket in buckets:
                if len(bucket.name) != 2 or not bucket.is_dir():
                    continue
                with os.scandir(bucket.path) as entries:
                    for entry in entries:
                        n = entry.name
                        if n.endswith(SUFFIX) and len(n) == 62 + len(SUFFIX):
                            yield bucket.name + n[:62]

    # ------------------------------------------------------------ reading

    def open(self, obj: str) -> BinaryIO:
        try:
            return open(self.path(obj), "rb")
        except FileNotFoundError:
            raise ObjectNotFound(f"object {obj} not found") from None

    def read(self, obj: str) -> bytes:
        with self.open(obj) as f:
            return f.read()

    def size(self, obj: str) -> int:
        try:
            return self.path(obj).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"object {obj} not found") from None

    def hash_file(self, path: str | os.PathLike[str]) -> str:
        """SHA-256 of a file's bytes, streamed."""
        h = hashlib.sha256()
        with open(path, "rb") as f:
            _copy(f, h, None)
        return h.hexdigest()

    # ------------------------------------------------------------ writing

    def write(self, data: bytes | memoryview, durable: bool = True) -> str:
        """Store `data`; return its hash. Storing bytes already present is a no-op.

        `durable=False` skips the fsyncs: the caller must call `sync()` before
        anything durable (a ref, a record) names the object, like git's
        core.fsyncMethod=batch. The write is still atomic (tmp + rename).
        """
        obj = hash_bytes(data)
        if self.freshen(obj):
            return obj
        tmp = self._temp()
        try:
            with tmp:
                _write_all(tmp, memoryview(data))
                if durable:
                    _sync(tmp)
                self._install(tmp.name, obj, durable)
        except BaseException:
            _unlink(tmp.name)
            raise
        return obj

    def write_stream(
        self,
        source: BinaryIO,
        expect: str | None = None,
        check: Callable[[BinaryIO], object] | None = None,
        durable: bool = True,
    ) -> str:
        """Store bytes read from `source` without holding them in memory; return the hash.

        With `expect`, refuse (and store nothing) if the bytes hash to anything
        else. With `check`, call it with the complete temporary file (opened
        anew, at offset 0) before the object is published; if it raises,
        nothing is stored. `durable` as for `write`.
        """
        h = hashlib.sha256()
        tmp = self._temp()
        try:
            with tmp:
                _copy(source, h, tmp)
                obj = h.hexdigest()
                if expect is not None and obj != expect:
                    raise CorruptObject(f"content hashes to {obj}, not {expect}")
                if check is not None:
                    tmp.flush()
                    with open(tmp.name, "rb") as again:
                        check(again)
                if self.freshen(obj):
                    _unlink(tmp.name)
                else:
                    if durable:
                        _sync(tmp)
                    self._install(tmp.name, obj, durable)
        except BaseException:
            _unlink(tmp.name)
            raise
        return obj

    def write_file(self, path: str | os.PathLike[str]) -> str:
        with open(path, "rb") as f:
            return self.write_stream(f)

    def freshen(self, obj: str) -> bool:
        """True if `obj` is stored; its mtime is set to now, as git freshens an object it writes again.

        `e3 repo gc` never removes an object newer than its grace period, so an old
        unreachable object that a writer stores again (and is about to reference)
        is safe from a gc running meanwhile.
        """
        path = self.path(obj)
        try:
            os.utime(path)
            return True
        except FileNotFoundError:
            return False
        except OSError:
            return path.is_file()  # not ours to touch (shared repository): present is what matters

    def remove(self, obj: str) -> None:
        """Delete one object (for gc); absent is fine."""
        _unlink(str(self.path(obj)))

    def _temp(self):  # noqa: ANN202 - a NamedTemporaryFile
        try:
            self.tmp_dir.mkdir(exist_ok=True)
            tmp = tempfile.NamedTemporaryFile(
                dir=self.tmp_dir, prefix=TMP_PREFIX, suffix=TMP_SUFFIX, delete=False, buffering=0
            )
        except OSError as e:
            raise _storage_error(e, self.tmp_dir) from None
        # Held until the file is renamed or removed: marks the write as live for e3-fsck.
        fcntl.flock(tmp.fileno(), fcntl.LOCK_EX)
        return tmp

    def sync(self) -> None:
        """Make every object written with `durable=False` durable (one syncfs for the batch)."""
        fd = os.open(self.root, os.O_RDONLY)
        try:
            _syncfs(fd)
        finally:
            os.close(fd)

    def _install(self, tmp_name: str, obj: str, durable: bool = True) -> None:
        target = self.path(obj)
        try:
            os.chmod(tmp_name, 0o444)
            try:
                os.rename(tmp_name, target)
            except FileNotFoundError:
                target.parent.mkdir(exist_ok=True)
                os.rename(tmp_name, target)
            if durable:
                _sync_dir(target.parent)
        except OSError as e:
            raise _storage_error(e, target) from None


def _copy(source: BinaryIO, h: "hashlib._Hash", sink: BinaryIO | None) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    # readinto1 returns what one read gives (a pipe's bytes reach the temp file as they come).
    readinto = getattr(source, "readinto1", None) or getattr(source, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
            if not n:
                break
            chunk = view[:n]
        else:
            data = source.read(CHUNK)
            if not data:
                break
            chunk = memoryview(data)
        h.update(chunk)
        if sink is not None:
            _write_all(sink, chunk)


def _write_all(sink: BinaryIO, data: memoryview) -> None:
    """Write every byte to an unbuffered file (a raw write may take only part)."""
    try:
        while data:
            n = sink.write(data)
            data = data[n:]
    except OSError as e:
        raise _storage_error(e, Path(sink.name)) from None


def _sync(f: BinaryIO) -> None:
    try:
        f.flush()
        os.fsync(f.fileno())
    except OSError as e:
        raise _storage_error(e, Path(f.name)) from None


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _storage_error(e: OSError, path: Path) -> StorageError:
    if e.errno == errno.ENOSPC:
        return StorageError(f"no space left on device writing {path}")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"cannot write {path}: {os.strerror(e.errno).lower()}")
    return StorageError(f"cannot write {path}: {e.strerror or e}")


def _syncfs(fd: int) -> None:
    """syncfs(2) on the filesystem holding `fd`; falls back to sync(2)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) == 0:
            return
    except (OSError, AttributeError):
        pass
    os.sync()
