"""The content-addressed object store: bytes named by their SHA-256.

An object lives at `objects/<2 hex>/<62 hex>.beast2` (the original engine's
naming, so object directories and package zips interoperate). Writes stream
through the hash into a temporary file in `tmp/`, are fsynced, and renamed into
place, so a reader never sees a partial object and two writers of the same
bytes cannot hurt each other. A writer holds an exclusive flock(2) on its
temporary file until the rename, so `e3-fsck` can tell a write in progress
from a file left behind by a crash. This module knows bytes, not East values: it
never imports the East runtime, so plumbing that only moves bytes starts fast.

Every read checks the bytes against their name while reading (`read`, `open`,
`peek`, `copy`): a flipped bit on disk is a `CorruptObject` naming the object,
never a value. Streaming reads withhold the chunk that ends the object until the
whole has hashed right, so a consumer never gets a damaged object's end.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import time
import re
import stat
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from e3.errors import AmbiguousObject, CorruptObject, InvalidHash, ObjectNotFound
from e3.storage.files import (
    into_directory,
    link_new_file,
    size_of,
    storage_error,
    sweep_files,
    sync_dir,
    sync_file,
    syncfs_path,
    unlink_if_present,
    write_all,
    Writeback,
)

HASH_RE = re.compile(r"[0-9a-f]{64}")
PREFIX_RE = re.compile(r"[0-9a-f]{4,64}")
SUFFIX = ".beast2"
CHUNK = 1 << 20
MIN_PREFIX = 4
_SMALL = 1 << 16
"""Objects up to this size are read (and hashed) in one call."""
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
TMP_PREFIX = "obj-"
TMP_SUFFIX = ".tmp"
GIT_TMP_PREFIX = "tmp_object_git2_"
"""libgit2's temporary loose objects, at the top of objects/ (commits and trees of refs and workspaces)."""
PACK_TMP_PREFIXES = ("tmp_", ".tmp-")
"""Temporary files in objects/pack/: e3's and git's `tmp_pack_*`/`tmp_idx_*`, git repack's `.tmp-<pid>-pack-*`."""


def check_hash(text: str) -> str:
    """Return `text` if it is a full object name (64 lower-case hex), else raise."""
    if not HASH_RE.fullmatch(text):
        raise InvalidHash(f"invalid object hash {text!r} (expected 64 lower-case hex digits)")
    return text


def hash_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def corrupt(obj: str, actual: str) -> CorruptObject:
    """The one error for an object whose bytes hash to `actual`, not to its name."""
    return CorruptObject(f"object {obj} is corrupt: its bytes hash to {actual}")


def _verify(obj: str, h: "hashlib._Hash") -> None:
    actual = h.hexdigest()
    if actual != obj:
        raise corrupt(obj, actual)


def _hash_rest(fd: int, h: "hashlib._Hash") -> None:
    """Stream what is left of `fd` through `h` (in this thread's copy buffer: nothing is kept)."""
    buf = _buffer()
    view = memoryview(buf)
    with io.FileIO(fd, closefd=False) as f:
        while n := f.readinto(buf):
            h.update(view[:n])


class VerifiedReader(io.RawIOBase):
    """An object's bytes, hashed as they are read (one pass: no second read to check them).

    The read that reaches the object's end (its size when opened) compares the hash
    with the object's name before it returns: on a mismatch it raises
    `CorruptObject` instead, so the consumer of a damaged object never gets its last
    bytes, and a consumer that reads to the end has read a verified whole. A file
    that ends early or runs long fails the same way. Not seekable.
    """

    def __init__(self, fd: int, obj: str):
        super().__init__()
        self.name = obj
        self._file = io.FileIO(fd, "rb")
        self._hash = hashlib.sha256()
        self.size = os.fstat(fd).st_size
        self._read = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # noqa: ANN001 - a writable buffer
        n = self._file.readinto(b)
        if n is None:  # pragma: no cover - a regular file never blocks
            return 0
        if self._verified:
            if n:
                raise CorruptObject(f"object {self.name} is corrupt: it grew while being read")
            return 0
        self._read += n
        with memoryview(b) as view:
            self._hash.update(view[:n])
        if n == 0 or self._read >= self.size:
            _verify(self.name, self._hash)
            self._verified = True
        return n

    def tell(self) -> int:
        return self._read

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


class ObjectStore:
    """Objects under `<root>/objects`, temporary files under `<root>/tmp`."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.objects_dir = self.root / "objects"
        self.tmp_dir = self.root / "tmp"
        # Hot paths (batch lookups, fsck) build names with str operations, not pathlib (~5x cheaper).
        self._objects = os.fspath(self.objects_dir) + os.sep
        self._tmp = os.fspath(self.tmp_dir) + os.sep

    # ------------------------------------------------------------ naming

    def path(self, obj: str) -> Path:
        check_hash(obj)
        return self.objects_dir / obj[:2] / (obj[2:] + SUFFIX)

    def fspath(self, obj: str) -> str:
        """`path(obj)` as a str, for loops over many objects."""
        check_hash(obj)
        return self._name(obj)

    def _name(self, obj: str) -> str:
        """The file of a hash known to be well formed (one this store just computed)."""
        return f"{self._objects}{obj[:2]}{os.sep}{obj[2:]}{SUFFIX}"

    def exists(self, obj: str) -> bool:
        try:
            return stat.S_ISREG(os.stat(self.fspath(obj)).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False

    def nonempty(self, obj: str) -> bool:
        """Stored with some bytes. Objects written without fsync may be left empty by a power
        loss that kept their name; a memo hit checks this (one stat) before reusing an output."""
        return size_of(self.fspath(obj)) > 0

    def nonempty_checked(self, obj: str) -> bool:
        """`nonempty` of a name already known to be a full hash (e3.repo.memo_index checks every
        name of its cache at once): the stat without the check, for loops over many objects."""
        try:
            return os.stat(f"{self._objects}{obj[:2]}{os.sep}{obj[2:]}{SUFFIX}").st_size > 0
        except OSError:
            return False

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
        """The object's bytes as a buffered binary file, verified while read (see `VerifiedReader`)."""
        return io.BufferedReader(VerifiedReader(self._open_fd(obj), obj), CHUNK)

    def _open_fd(self, obj: str) -> int:
        try:
            return os.open(self.fspath(obj), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ObjectNotFound(f"object {obj} not found") from None

    def peek(self, obj: str, n: int) -> tuple[int, bytes]:
        """The object's size and its first `n` bytes (for batch lookups), once its bytes have
        hashed right: the rest of a large object is streamed through the hash, not kept."""
        fd = self._open_fd(obj)
        try:
            size = os.fstat(fd).st_size
            head = os.read(fd, max(n, min(size, _SMALL)))  # small objects: one read, hashed at once
            h = hashlib.sha256(head)
            if len(head) < size:
                _hash_rest(fd, h)
        finally:
            os.close(fd)
        _verify(obj, h)
        return size, head[:n]

    def read(self, obj: str) -> bytes:
        """The object's bytes, once they have hashed to its name."""
        # Plain descriptor calls: a buffered file object costs twice as much for a small object.
        # A small object is read whole by one read (a regular file gives less only at its end),
        # without asking its size first.
        fd = self._open_fd(obj)
        try:
            data = os.read(fd, _SMALL)
            if len(data) == _SMALL:
                size = os.fstat(fd).st_size
                while len(data) < size:  # a large object may come in parts
                    more = os.read(fd, size - len(data))
                    if not more:
                        break
                    data += more
        finally:
            os.close(fd)
        _verify(obj, hashlib.sha256(data))
        return data

    def copy(self, obj: str, path: str | os.PathLike[str]) -> None:
        """Write the object's bytes to a new file at `path` (a spawned task's input), once they have
        hashed to its name; a damaged object raises and leaves no file.

        The object's pages are hashed where they lie (mapped, not read into a buffer), then the
        kernel copies them (copy_file_range): the file is read from the disk once, and never
        through this process's memory, which cost here twice what hashing does for a large value.
        """
        import mmap

        fd = self._open_fd(obj)
        try:
            size = os.fstat(fd).st_size
            h = hashlib.sha256()
            if size:
                with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
                    h.update(mapped)
            _verify(obj, h)
            try:
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise storage_error(e, Path(path)) from None
            try:
                _copy_range(fd, out, size)
            except OSError as e:
                unlink_if_present(path)
                raise storage_error(e, Path(path)) from None
            finally:
                os.close(out)
        finally:
            os.close(fd)

    def size(self, obj: str) -> int:
        try:
            return os.stat(self.fspath(obj)).st_size
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
        return self.put(data, durable)[0]

    def put(self, data: bytes | memoryview, durable: bool = True) -> tuple[str, bool]:
        """`write`, also saying whether this call made the object's file from `data` (False when
        the name was there already: its bytes are then only as good as a verified read says)."""
        obj = hash_bytes(data)
        # Without fsyncs a new object is linked in before asking whether it is stored: most
        # writes of a run are new, and the link fails when the name exists, which is then
        # freshened and checked as below. A durable write asks first, to spare the fsync.
        if durable and self.stored_whole(obj, len(data)):
            return obj, False
        target = self._name(obj)
        try:
            if link_new_file(self._objects, target, data, durable):
                return obj, True
        except OSError as e:
            raise storage_error(e, Path(target)) from None
        if not durable and self.stored_whole(obj, len(data)):
            return obj, False
        tmp = self._temp()
        try:
            with tmp:
                write_all(tmp, memoryview(data))
                if durable:
                    sync_file(tmp)
                self._install(tmp.name, obj, durable)
        except BaseException:
            unlink_if_present(tmp.name)
            raise
        return obj, False

    def write_stream(
        self,
        source: BinaryIO,
        expect: str | None = None,
        check: Callable[[BinaryIO], object] | None = None,
        durable: bool = True,
        read: "Callable[[BinaryIO, Callable[[bytes], object]], object] | None" = None,
    ) -> str:
        """Store bytes read from `source` without holding them in memory; return the hash.

        With `expect`, refuse (and store nothing) if the bytes hash to anything
        else. With `check`, call it with the complete temporary file (opened
        anew, at offset 0) before the object is published; if it raises,
        nothing is stored. With `read`, the bytes are those `read(source, sink)`
        gives `sink` (a check that reads the value itself: one pass instead of a
        copy and a check of it); if it raises, nothing is stored. `durable` as for `write`.
        """
        obj, tmp = self._spool(source, expect, check, read)
        if tmp is None:
            return obj
        try:
            with tmp:
                if durable:
                    sync_file(tmp)
                self._install(tmp.name, obj, durable)
        except BaseException:
            unlink_if_present(tmp.name)
            raise
        return obj

    def batch(self, limit: int = 256) -> "Batch":
        """A group of writes made durable together (see `Batch`)."""
        return Batch(self, limit)

    def new_object(self, durable: bool = True) -> "NewObject":
        """An object to write a piece at a time, hashed as it is written (see `NewObject`)."""
        return NewObject(self, durable)

    def _spool(
        self, source: BinaryIO, expect: str | None = None, check: Callable[[BinaryIO], object] | None = None,
        read: "Callable[[BinaryIO, Callable[[bytes], object]], object] | None" = None,
    ) -> tuple[str, "io.FileIO | None"]:
        """Copy `source` (or what `read` gives, see `write_stream`) into a new locked temporary
        file; return its hash and the open file.

        The file is None (and nothing is left behind) when the object is already stored.
        """
        new = NewObject(self)
        try:
            if read is None:
                _copy(source, new.hash, new.tmp)
            else:
                read(source, new.write)
            new.size = new.tmp.tell()
            obj = new.hash.hexdigest()
            if expect is not None and obj != expect:
                raise CorruptObject(f"content hashes to {obj}, not {expect}")
            if check is not None:
                with new.reopen() as again:
                    check(again)
            if self.stored_whole(obj, new.size):
                new.abort()
                return obj, None
        except BaseException:
            new.abort()
            raise
        return obj, new.tmp

    def write_file(self, path: str | os.PathLike[str]) -> str:
        with open(path, "rb") as f:
            return self.write_stream(f)

    def freshen(self, obj: str) -> bool:
        """True if `obj` is stored; its mtime is set to now, as git freshens an object it writes again.

        `e3 repo gc` never removes an object newer than its grace period, so an old
        unreachable object that a writer stores again (and is about to reference)
        is safe from a gc running meanwhile.
        """
        path = self.fspath(obj)
        try:
            os.utime(path)
            return True
        except FileNotFoundError:
            return False
        except OSError:
            return os.path.isfile(path)  # not ours to touch (shared repository): present is what matters

    def stored_whole(self, obj: str, size: int) -> bool:
        """`obj` is stored with all its `size` bytes (and freshened, see `freshen`); a writer of
        the same bytes has nothing to do. A power loss after a `durable=False` rename can leave
        the name with fewer bytes: then the writer writes the value again, which repairs it."""
        return self.freshen(obj) and size_of(self.fspath(obj)) == size

    def remove(self, obj: str) -> None:
        """Delete one object (for gc); absent is fine."""
        unlink_if_present(str(self.path(obj)))

    def _temp(self) -> io.FileIO:
        """A new, exclusively created, locked, unbuffered temporary file in `tmp/`."""
        while True:
            name = f"{self._tmp}{TMP_PREFIX}{os.urandom(6).hex()}{TMP_SUFFIX}"
            try:
                # Created read-only (objects never change); the open descriptor may still write.
                tmp = io.FileIO(os.open(name, _CREATE, 0o444), "wb")
                tmp.name = name
                break
            except FileExistsError:
                continue
            except FileNotFoundError:
                try:
                    self.tmp_dir.mkdir(exist_ok=True)
                except OSError as e:
                    raise storage_error(e, self.tmp_dir) from None
            except OSError as e:
                raise storage_error(e, self.tmp_dir) from None
        # Held until the file is renamed or removed: marks the write as live for e3-fsck.
        fcntl.flock(tmp.fileno(), fcntl.LOCK_EX)
        return tmp

    def sweep_temporaries(self, min_age: float = 2.0) -> int:
        """Remove temporary files no live writer holds (a kill left them); return how many.

        A writer creates its temp file and locks it within microseconds; `min_age`
        keeps a file in that window safe. Used by `e3 start` so that a run after a
        crash leaves the store as e3-fsck wants it.
        """
        limit = time.time() - min_age
        ours = sweep_files(self.tmp_dir, limit, lambda name: name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX))
        # libgit2's `objects/tmp_object_git2_*` of a commit or tree write a kill cut short: libgit2
        # does not lock them but renames them within milliseconds, so age alone tells.
        return ours + sweep_files(self.objects_dir, limit, lambda name: name.startswith(GIT_TMP_PREFIX))

    def sync(self) -> None:
        """Make every object written with `durable=False` durable (one syncfs for the batch)."""
        syncfs_path(self.root)

    def _install(self, tmp_name: str, obj: str, durable: bool = True) -> None:
        target = self.fspath(obj)
        bucket = os.path.dirname(target)
        try:
            into_directory(bucket, lambda: os.rename(tmp_name, target), tmp_name)
            if durable:
                sync_dir(Path(bucket))
        except OSError as e:
            raise storage_error(e, Path(target)) from None


class NewObject:
    """An object written a piece at a time (`write`), hashed as it is written, stored by `commit`.

    The bytes go to a locked temporary file in `tmp/` (see `ObjectStore._temp`), which
    `reopen` reads back while it is written: a check can read what was written so far
    without a copy. `commit()` names the object by its hash (and stores nothing new when
    the same bytes are stored already); leaving a `with` block without `commit`, or by an
    exception, removes the file, so a failed or refused write leaves nothing.
    """

    def __init__(self, store: ObjectStore, durable: bool = True):
        self.store = store
        self.durable = durable
        self.tmp = store._temp()
        self._writeback = Writeback(self.tmp.fileno())
        self.hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, data: bytes | memoryview) -> None:
        self.hash.update(data)
        write_all(self.tmp, memoryview(data))
        self.size += len(data)
        self._writeback.grown_to(self.size)  # a large object goes to the disk as it comes

    def reopen(self) -> BinaryIO:
        """The bytes written so far, as a new readable (seekable) file."""
        return open(self.tmp.name, "rb")

    def commit(self, expect: str | None = None) -> str:
        """Store the bytes written; return their hash. With `expect`, refuse (storing nothing)
        bytes that hash to anything else."""
        obj = self.hash.hexdigest()
        try:
            if expect is not None and obj != expect:
                raise CorruptObject(f"content hashes to {obj}, not {expect}")
            if self.store.stored_whole(obj, self.size):
                self.abort()
                return obj
            with self.tmp:
                if self.durable:
                    sync_file(self.tmp)
                self.store._install(self.tmp.name, obj, self.durable)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return obj

    def abort(self) -> None:
        """Drop what was written (nothing is stored)."""
        if not self._done:
            self._done = True
            self.tmp.close()
            unlink_if_present(self.tmp.name)

    def __enter__(self) -> "NewObject":
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class Batch:
    """Many writes made durable together, for bulk input (`e3-hash-object --stdin-paths`).

    Each write goes to its own locked temporary file without an fsync. Every
    `limit` new objects form a group, made durable in a pipeline: a syncfs(2),
    run in a background thread while the next group is being written, makes the
    group's bytes durable (and the renames of the group before it); only then is
    the group renamed into place, so an object never becomes visible before its
    bytes are on disk (git's core.fsyncMethod=batch makes the same trade). One
    syncfs per group, and the writer does not wait for it.

    A write's returned hash may name an object that is not yet there: report it
    only once `durable` (the number of writes, in call order, whose objects are
    durable under their names) covers it. `flush()` makes every write so far
    durable. Leaving the `with` block flushes; leaving it by an exception
    discards the writes not yet renamed.
    """

    def __init__(self, store: ObjectStore, limit: int = 256):
        self.store = store
        self.limit = limit
        self._pending: dict[str, io.FileIO] = {}
        """The group being written: its temporary files, not yet synced."""
        self._writes = 0
        self.durable = 0
        """Writes, counted in call order, whose objects are durable under their names."""
        self._sync: _GroupSync | None = None
        """The syncfs in flight, if any."""

    def write(self, data: bytes | memoryview) -> str:
        obj = hash_bytes(data)
        tmp = None
        if obj in self._pending:
            pass  # the same bytes twice in one group
        elif not self.store.stored_whole(obj, len(data)):
            tmp = self.store._temp()
            try:
                write_all(tmp, memoryview(data))
            except BaseException:
                _discard({obj: tmp})
                raise
        return self._add(obj, tmp)

    def write_stream(self, source: BinaryIO, check: Callable[[BinaryIO], object] | None = None) -> str:
        obj, tmp = self.store._spool(source, check=check)
        return self._add(obj, tmp)

    def write_reading(self, source: BinaryIO, read: Callable[[BinaryIO, Callable[[bytes], object]], object]) -> str:
        """`ObjectStore.write_stream` with `read`, in this batch."""
        obj, tmp = self.store._spool(source, read=read)
        return self._add(obj, tmp)

    def _add(self, obj: str, tmp: io.FileIO | None) -> str:
        """Count a write; keep its temporary file (None: the object is stored already) for the group."""
        self._writes += 1
        if tmp is not None:
            if obj in self._pending:  # the same bytes twice in one group
                tmp.close()
                unlink_if_present(tmp.name)
            else:
                self._pending[obj] = tmp
                if len(self._pending) >= self.limit:
                    self._next_group()
        return obj

    @property
    def pending(self) -> int:
        """Writes not yet durable."""
        return self._writes - self.durable

    def _next_group(self) -> None:
        """Start syncing the group just written, in the background; write the next one meanwhile."""
        renamed = self._finish_sync()
        self._sync = _GroupSync(self.store, self._pending, self._writes, self.durable if renamed is None else renamed)
        self._pending = {}
        self._sync.start()

    def _finish_sync(self) -> int | None:
        """Wait for the syncfs in flight and rename its group into place.

        Returns the write count the renames reach (they become durable with the
        next syncfs), or None if nothing was in flight.
        """
        job, self._sync = self._sync, None
        if job is None:
            return None
        job.join()
        if job.error is not None:
            _discard(job.group)
            raise job.error
        self.durable = max(self.durable, job.renamed_before)  # its syncfs covered those renames
        self._install(job.group)
        return job.writes

    def _install(self, group: dict[str, io.FileIO]) -> None:
        try:
            for obj, tmp in group.items():
                self.store._install(tmp.name, obj, durable=False)
        except BaseException:
            _discard(group)
            raise
        for tmp in group.values():
            tmp.close()

    def flush(self) -> None:
        """Make every write so far durable."""
        renamed = self._finish_sync()
        if self._pending:
            group, self._pending = self._pending, {}
            try:
                self.store.sync()  # every temporary file's bytes are durable (and the renames above)...
            except BaseException:
                _discard(group)
                raise
            self._install(group)  # ...before any name points at them
            renamed = self._writes
        if renamed is not None:
            self.store.sync()  # and the renames are durable before the caller reports them
        self.durable = self._writes

    def discard(self) -> None:
        """Drop the writes not yet renamed (those renamed stay: each is a whole object)."""
        job, self._sync = self._sync, None
        if job is not None:
            job.join()
            _discard(job.group)
        pending, self._pending = self._pending, {}
        _discard(pending)

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.flush()
        else:
            self.discard()


class _GroupSync(threading.Thread):
    """One syncfs(2) in a thread (ctypes lets go of the GIL): the writer goes on meanwhile."""

    def __init__(self, store: ObjectStore, group: dict[str, io.FileIO], writes: int, renamed_before: int):
        super().__init__(name="e3-store-sync", daemon=True)
        self.store = store
        self.group = group
        """Written before the syncfs started: durable once it ends."""
        self.writes = writes
        """The write count when the group was closed."""
        self.renamed_before = renamed_before
        """The write count that the renames done before the syncfs started reach."""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.store.sync()
        except BaseException as e:  # noqa: BLE001 - raised in the writer's thread by Batch
            self.error = e


def _discard(group: dict[str, io.FileIO]) -> None:
    for tmp in group.values():
        tmp.close()
        unlink_if_present(tmp.name)


def _copy(source: BinaryIO, h: "hashlib._Hash", sink: BinaryIO | None) -> None:
    buf = _buffer()
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
            write_all(sink, chunk)


_local = threading.local()


def _buffer() -> bytearray:
    """This thread's copy buffer, allocated once: zero-filling 1 MiB per object would dominate small writes."""
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(CHUNK)
    return buf


def _copy_range(src: int, dst: int, size: int) -> None:
    """`size` bytes from the start of `src` to `dst`, copied by the kernel (copy_file_range, else sendfile)."""
    done = 0
    copy = getattr(os, "copy_file_range", None)
    while done < size:
        try:
            n = copy(src, dst, size - done, done, done) if copy else os.sendfile(dst, src, done, size - done)
        except OSError as e:
            if copy is None or e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            copy = None  # a file system without it: sendfile does the same
            continue
        if n == 0:
            raise OSError(errno.EIO, "the object ended early while being copied")
        done += n
