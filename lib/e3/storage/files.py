"""File helpers shared by every part of storage: whole reads and writes, durable writes, links, sweeps.

What makes e3's files crash-safe lives here once: a file is written whole and
made durable (fsync, or one syncfs(2) for a batch) before a rename or a link
makes it visible; a new file can be written unnamed (O_TMPFILE) and linked in,
so a kill leaves no temporary name behind; `write_atomically` replaces a user's
file in one step (a reader sees the old file or the new one, never half of
one). Every OSError becomes one StorageError naming the path.
"""
from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, TypeVar

from e3.errors import StorageError

T = TypeVar("T")


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    target = Path(path)
    directory = target.parent
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, target)
        tmp_name = None
        sync_dir(directory)
    except OSError as e:
        raise StorageError(f"cannot write {target}: {(e.strerror or str(e)).lower()}") from None
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_exactly(fd: int, n: int) -> bytes | None:
    """`n` bytes from a pipe or file descriptor, or None at end of file (the writer went away)."""
    parts = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def write_exactly(fd: int, data: bytes | memoryview) -> None:
    """All of `data` to a pipe or file descriptor (one write may take only part of it)."""
    n = os.write(fd, data)  # usually all of it: no view made
    if n < len(data):
        view = memoryview(data)[n:]
        while view:
            view = view[os.write(fd, view) :]


def write_all(sink: BinaryIO, data: memoryview) -> None:
    """Write every byte to an unbuffered file (a raw write may take only part)."""
    try:
        while data:
            n = sink.write(data)
            data = data[n:]
    except OSError as e:
        raise storage_error(e, Path(sink.name)) from None


def sync_file(f: BinaryIO) -> None:
    try:
        f.flush()
        os.fsync(f.fileno())
    except OSError as e:
        raise storage_error(e, Path(f.name)) from None


def sync_dir(path: "str | os.PathLike[str]") -> None:
    """Make a directory's entries (a rename or a link just made in it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def into_directory(directory: str, step: Callable[[], T], source: str | None = None) -> T:
    """`step()`, a rename or link of `source` into `directory`, making `directory` whenever the
    step finds it missing: a new object bucket, or one that git's prune (e3 repo gc) removed,
    empty, between its making and the step; git itself tries again so. FileNotFoundError when
    `source` itself is gone."""
    for attempt in range(100):
        try:
            return step()
        except FileNotFoundError:
            if attempt == 99 or (source is not None and not os.path.exists(source)):
                raise
            try:  # not os.makedirs(exist_ok=True), which fails if a prune removes it as it looks again
                os.mkdir(directory)
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(directory, exist_ok=True)  # its parent is missing too
    raise AssertionError("unreachable")


def link_new_file(directory: str, path: str, data: bytes | memoryview, durable: bool, mode: int = 0o444) -> bool:
    """Create `path` holding `data`, whole or not at all, if it does not exist yet.

    The bytes go to an unnamed file in `directory` (see `unnamed_file`), which is
    then linked as `path`: one directory operation instead of a create and a
    rename (about 15 against 25-30 us for a small object), and no temporary name
    that a kill would leave behind. False when `path` exists (the caller renames
    over it, which repairs an object a power loss left short) or when unnamed
    files are not available here (the caller uses a temporary name); OSError for
    the write's own faults, such as a full disk.
    """
    fd = unnamed_file(directory, os.O_WRONLY, mode)
    if fd is None:
        return False
    try:
        write_exactly(fd, data)
        if durable:
            os.fsync(fd)
        try:
            linked = link_unnamed(fd, path)
        except FileNotFoundError:  # its directory is missing: only then is it looked at
            linked = into_directory(os.path.dirname(path), lambda: link_unnamed(fd, path))
    finally:
        os.close(fd)
    if linked and durable:
        sync_dir(os.path.dirname(path))
    return linked


_unnamed_files = hasattr(os, "O_TMPFILE")
"""False once this kernel or file system refused an unnamed file (then temporary names are used)."""


def unnamed_file(directory: str, flags: int, mode: int) -> int | None:
    """A new file without a name yet (O_TMPFILE) on `directory`'s file system, open with
    `flags` (O_WRONLY or O_RDWR); None where the kernel or file system cannot make one."""
    global _unnamed_files
    if not _unnamed_files:
        return None
    try:
        return os.open(directory, os.O_TMPFILE | flags | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            _unnamed_files = False
            return None
        raise


def link_unnamed(fd: int, path: str) -> bool:
    """Name the unnamed file `fd` `path`, whole as written so far; False if `path` is taken.
    FileNotFoundError when `path`'s directory is missing."""
    global _unnamed_files
    # linkat(2) with AT_SYMLINK_FOLLOW names the open file through /proc; Python calls
    # linkat only when given a directory descriptor (an absolute path ignores it).
    try:
        os.link(f"/proc/self/fd/{fd}", path, src_dir_fd=fd)
    except FileExistsError:
        return False
    except FileNotFoundError:
        if not os.path.isdir("/proc/self/fd"):  # no /proc here: never again
            _unnamed_files = False
            return False
        raise
    return True


def unlink_if_present(path: "str | os.PathLike[str]") -> None:
    """Remove a file; one already gone is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def storage_error(e: OSError, path: "str | os.PathLike[str]") -> StorageError:
    """One line for a failed write: a full disk and a refused permission are said as such."""
    if e.errno == errno.ENOSPC:
        return StorageError(f"no space left on device writing {path}")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"cannot write {path}: {os.strerror(e.errno).lower()}")
    return StorageError(f"cannot write {path}: {e.strerror or e}")


def syncfs_path(path: "str | os.PathLike[str]") -> None:
    """syncfs(2) on the filesystem holding `path`: one flush for a whole batch of writes."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _syncfs(fd)
    finally:
        os.close(fd)


def _syncfs(fd: int) -> None:
    """syncfs(2) on the filesystem holding `fd`; falls back to sync(2)."""
    global _libc_syncfs
    if _libc_syncfs is None:
        try:
            import ctypes

            _libc_syncfs = ctypes.CDLL(None, use_errno=True).syncfs
        except (OSError, AttributeError):
            _libc_syncfs = False
    if _libc_syncfs and _libc_syncfs(fd) == 0:
        return
    os.sync()


WRITEBACK = 4 << 20
"""A large file being written is handed to the disk each time this many more bytes are written (`Writeback`)."""


class Writeback:
    """Hands a file to the disk while it is written, WRITEBACK bytes at a time (`start_writeback`):
    the sync that makes it durable then waits for its last piece, not for all of it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pushed = 0
        """Bytes from the start of the file the disk has been asked to take."""

    def grown_to(self, size: int) -> None:
        """The file's descriptor has been given `size` bytes in all."""
        if size - self.pushed >= WRITEBACK:
            end = size // WRITEBACK * WRITEBACK
            start_writeback(self.fd, self.pushed, end - self.pushed)
            self.pushed = end

_libc_syncfs = None
_libc_sync_file_range = None
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel begin writing a range of a file to disk, without waiting for it (Linux's
    sync_file_range(2), SYNC_FILE_RANGE_WRITE): a large write handed to the disk while it is
    made leaves less for the fsync or syncfs that makes it durable. Promises nothing about
    durability; where there is no such call, nothing."""
    global _libc_sync_file_range
    if _libc_sync_file_range is None:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).sync_file_range
            fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            _libc_sync_file_range = fn
        except (OSError, AttributeError):
            _libc_sync_file_range = False
    if _libc_sync_file_range:
        _libc_sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def size_of(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def sweep_files(directory: str | os.PathLike[str], limit: float, match: Callable[[str], bool], dry_run: bool = False) -> int:
    """Remove the files of `directory` whose names `match`, last changed before `limit` (epoch
    seconds) and held by no writer (`held_by_a_writer`); return how many (with `dry_run`: would
    be). A file that goes meanwhile, or cannot be removed, is passed over."""
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not match(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < limit and not held_by_a_writer(entry.path):
                if not dry_run:
                    os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def held_by_a_writer(path: str) -> bool:
    """True if a live writer holds the temporary file: the store's writers (and the queue's, see
    e3.storage.queue.enqueue_claimed) flock theirs until the rename."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops the lock we may have taken
    return False
