"""Locks, all held with flock(2): named locks on a repository (`locks/<name>.lock`), and git's
lock files (`<path>.lock`, created exclusively and renamed over the path) for refs.

Why flock: the kernel releases it when the holding process dies (its last file
descriptor closes), so a dead holder never blocks anyone and nothing has to be
"broken" or cleaned up after kill -9 or a reboot. A named lock's file is never
deleted: removing it while another process waits on it would let two processes
hold "the same" lock on different inodes. (A git lock file, `LockFile` at the end,
is removed by its protocol; the flock there tells a dead writer's file from a live one's.)

After taking the lock, the holder writes who it is into the file (JSON: pid,
process start time, boot id, command line, operation, time) so that a refusal
can say "workspace dev is running (pid 123, e3 start dev, since 10:02:03)".
That text is advice for messages only; whether the lock is held is always
decided by flock itself. `holder()` reports it only while the lock is held.

A lock is exclusive by default; `shared=True` takes a shared (reader) lock,
which many processes may hold at once and which records no holder. flock
belongs to the open file, not the process, so two Lock objects in one process
exclude each other (threads of `e3 start` behave like separate processes). A
child made by fork() would inherit the open file and keep the lock alive after
its parent died; every held lock's descriptor is therefore closed in the child
right after fork (closing, unlike LOCK_UN, leaves the parent's lock intact).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from e3.errors import Conflict, StorageError, UsageError
from e3.process import Holder as ProcessHolder
from e3.process import boot_id, start_time
from e3.storage.files import unlink_if_present

if TYPE_CHECKING:
    from e3.storage.repository import Repository

NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+=-]*")
POLL_MIN = 0.002
POLL_MAX = 0.05


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as written into the lock file by the holder."""

    pid: int
    start_time: int
    boot_id: str
    command: str
    operation: str
    acquired_at: float

    def alive(self) -> bool:
        return ProcessHolder(self.pid, self.start_time, self.boot_id).alive()

    def describe(self) -> str:
        """`pid 123, e3 start dev, since 2024-05-01 10:02:03` for error messages."""
        since = datetime.fromtimestamp(self.acquired_at).strftime("%Y-%m-%d %H:%M:%S")
        what = self.command or self.operation
        return f"pid {self.pid}, {what}, since {since}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "start_time": self.start_time,
                "boot_id": self.boot_id,
                "command": self.command,
                "operation": self.operation,
                "acquired_at": self.acquired_at,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> "LockHolder":
        d = json.loads(text)
        return cls(
            int(d["pid"]), int(d["start_time"]), str(d["boot_id"]), str(d.get("command", "")),
            str(d.get("operation", "")), float(d.get("acquired_at", 0.0)),
        )


class LockHeld(Conflict):
    """The lock is held by someone else (and we were not to wait, or the wait timed out)."""

    def __init__(self, message: str, holder: LockHolder | None):
        super().__init__(message)
        self.holder = holder


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name) or ".." in name:
        raise UsageError(f"invalid lock name {name!r}")
    return name


def lock_path(repo: "Repository", name: str) -> str:
    return str(repo.path("locks", check_name(name) + ".lock"))


def command_line() -> str:
    """This process's command line as the user typed it, shortened for messages."""
    argv = list(sys.argv) if sys.argv and sys.argv[0] else ["python"]
    argv[0] = os.path.basename(argv[0])  # bin/e3-run-task -> e3-run-task
    text = " ".join(argv)
    return text if len(text) <= 200 else text[:197] + "..."


# Objects holding a flock'ed descriptor (`._fd`) in this process: locks and queue
# claims. Their descriptors are closed in a forked child (see module docstring).
_held: "weakref.WeakSet" = weakref.WeakSet()
_held_mutex = threading.Lock()


def close_on_fork(owner: object) -> None:
    """Register `owner` (which keeps a flock'ed descriptor in `owner._fd`) to lose it in forked children."""
    with _held_mutex:
        _held.add(owner)


def forget_on_fork(owner: object) -> None:
    with _held_mutex:
        _held.discard(owner)


def _close_in_child() -> None:
    for owner in list(_held):
        fd = getattr(owner, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
            owner._fd = None
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)


class Lock:
    """`with Lock(repo, "workspace-dev", "deployment"):` ... ; or acquire(wait=False) / release()."""

    def __init__(self, repo: "Repository", name: str, operation: str, *, shared: bool = False):
        self.repo = repo
        self.name = check_name(name)
        self.operation = operation
        self.shared = shared
        self.path = lock_path(repo, name)
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"Lock({self.name!r}, {self.operation!r}{', shared' if self.shared else ''})"

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: bool = True, timeout: float | None = None) -> "Lock":
        """Take the lock. Without `wait` (or after `timeout` seconds) raise LockHeld naming the holder."""
        if self._fd is not None:
            raise Conflict(f"lock {self.name} is already held by this object")
        fd = _open(self.path)
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            if wait and timeout is None:
                _flock(fd, mode, self.path)
            else:
                deadline = time.monotonic() + (timeout or 0.0)
                pause = POLL_MIN
                # flock has no timeout; poll, backing off, rather than use SIGALRM (not thread-safe).
                while not _try_flock(fd, mode, self.path):
                    if not wait or time.monotonic() >= deadline:
                        who = _settled_holder(fd, mode, self.path)
                        if who is _ACQUIRED:
                            break
                        raise LockHeld(self._held_message(who), who)
                    time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                    pause = min(pause * 2, POLL_MAX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        close_on_fork(self)
        if not self.shared:
            self._write_holder()
        return self

    def release(self) -> None:
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        forget_on_fork(self)
        try:
            if not self.shared:
                # Leave no stale holder text behind for a reader that races the next holder.
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> "Lock":
        return self.acquire(wait=True)

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass

    def _write_holder(self) -> None:
        me = ProcessHolder.me()
        info = LockHolder(me.pid, me.start_time, me.boot_id, command_line(), self.operation, time.time())
        data = (info.to_json() + "\n").encode()
        try:
            # Write then trim: the file is never empty while held, and readers retry a torn read.
            os.pwrite(self._fd, data, 0)
            os.ftruncate(self._fd, len(data))
        except OSError:
            pass  # the holder text is advice only; the lock itself is held

    def _held_message(self, who: LockHolder | None) -> str:
        if who is None:
            return f"lock {self.name} is held by another process"
        return f"lock {self.name} is held by another process ({who.describe()}, {who.operation})"


def holder(repo: "Repository", name: str) -> LockHolder | None:
    """Who holds lock `name` now, or None if nobody does (a dead holder's text is ignored)."""
    path = lock_path(repo, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # flock needs no write access: a read-only repository is fine
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StorageError(f"cannot open lock {path}: {e.strerror or e}") from None
    try:
        # If we can take it, nobody holds it: whatever text is in the file is stale.
        if _try_flock(fd, fcntl.LOCK_SH, path):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        who = _settled_holder(fd, fcntl.LOCK_SH, path)
        if who is _ACQUIRED:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        return who
    finally:
        os.close(fd)


def is_held(repo: "Repository", name: str) -> bool:
    """True if someone holds lock `name` exclusively."""
    return _refused(repo, name, fcntl.LOCK_SH)


def in_use(repo: "Repository", name: str) -> bool:
    """True if anyone holds lock `name`, shared or exclusive (a momentary exclusive try)."""
    return _refused(repo, name, fcntl.LOCK_EX)


def _refused(repo: "Repository", name: str, mode: int) -> bool:
    path = lock_path(repo, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # a question: never needs write access
    except FileNotFoundError:
        return False
    except OSError as e:
        raise StorageError(f"cannot open lock {path}: {e.strerror or e}") from None
    try:
        if _try_flock(fd, mode, path):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        return True
    finally:
        os.close(fd)


_ACQUIRED = object()
HOLDER_GRACE = 0.2
"""Seconds a refused acquire waits for the holder's text (written just after it took the lock)."""


def _settled_holder(fd: int, mode: int, path: str):
    """After a refusal: the holder's text, or _ACQUIRED if the lock came free meanwhile.

    A holder writes its text just after taking the lock and clears it just before
    letting go, so a refusal may find no text for a moment: look again briefly,
    rather than report an unknown holder (callers decide by its `operation`).
    """
    deadline = time.monotonic() + HOLDER_GRACE
    while True:
        who = read_holder(fd)
        if who is not None or time.monotonic() >= deadline:
            return who
        time.sleep(0.002)
        if _try_flock(fd, mode, path):
            return _ACQUIRED


def read_holder(fd: int) -> LockHolder | None:
    """The holder text of an open lock file; None if absent or unreadable (a shared holder)."""
    for _ in range(5):
        try:
            data = os.pread(fd, 4096, 0)
        except OSError:
            return None
        if not data:
            return None
        try:
            return LockHolder.from_json(data.decode())
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            time.sleep(0.001)  # torn by a holder writing right now
    return None


def try_flock(fd: int, shared: bool = False) -> bool:
    """Take flock on an open descriptor without waiting; False if someone else holds it."""
    return _try_flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX, f"descriptor {fd}")


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise StorageError(f"cannot open lock {path}: {e.strerror or e}") from None


def _flock(fd: int, mode: int, path: str) -> None:
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except InterruptedError:
            continue
        except OSError as e:
            raise StorageError(f"cannot lock {path}: {e.strerror or e}") from None


def _try_flock(fd: int, mode: int, path: str) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise StorageError(f"cannot lock {path}: {e.strerror or e}") from None


# ---------------------------------------------------------------- git's lock files


class LockFileBusy(Exception):
    """The lock file exists and is held (or was not given up) until the timeout."""


class LockFile:
    """git's lock protocol for a file replaced whole: `<path>.lock` is created exclusively,
    written, and renamed over `<path>` (so git and e3 exclude each other; refs use it).

    The same flock as `Lock` says whether its writer lives: e3's writers hold it on the lock
    file from creation to rename, so a lock file that nobody holds and that is older than
    `stale_age` was left by a writer that died (kill -9 between create and rename), and
    `acquire` removes it and goes on where git would ask a human. Plain git does not flock,
    but holds a lock for milliseconds. Like a `Lock`, a forked child does not keep it.

    OSErrors of the file system (a directory in the way, a full disk) reach the caller, who
    words them for what the file is.
    """

    def __init__(self, path: str, fd: int):
        self.path, self._fd = path, fd
        self.lock_path = path + ".lock"
        close_on_fork(self)

    @classmethod
    def acquire(cls, path: str, timeout: float, stale_age: float) -> "LockFile":
        lock_path = path + ".lock"
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                if break_stale_lock_file(lock_path, stale_age):
                    continue
                if time.monotonic() >= deadline:
                    raise LockFileBusy(lock_path) from None
                time.sleep(delay)
                delay = min(delay * 2, POLL_MAX)
                continue
            except FileNotFoundError:
                os.makedirs(os.path.dirname(lock_path), exist_ok=True)  # a new directory of refs
                continue
            # Held while the lock file exists: see break_stale_lock_file.
            fcntl.flock(fd, fcntl.LOCK_EX)
            return cls(path, fd)

    def write(self, data: bytes) -> None:
        os.write(self._fd, data)

    def sync(self) -> None:
        os.fsync(self._fd)

    def commit(self) -> None:
        """Rename the lock file over the path, still holding the flock: once closed, an old lock
        file looks like a dead writer's, and another writer could replace it under our rename."""
        os.rename(self.lock_path, self.path)
        self.lock_path = ""
        self._close()

    def release(self) -> None:
        """Give the lock up without changing the path."""
        if self.lock_path:  # unlink before closing: closed, it could pass for a dead writer's (see commit)
            unlink_if_present(self.lock_path)
            self.lock_path = ""
        self._close()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            forget_on_fork(self)
            os.close(fd)


def break_stale_lock_file(lock_path: str, age: float) -> bool:
    """Remove `lock_path` if its writer is gone (not flocked, older than `age` seconds); True if removed."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if time.time() - st.st_mtime < age:
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(lock_path).st_ino != st.st_ino:
            return False  # replaced meanwhile by a live writer's
        os.unlink(lock_path)
        return True
    except OSError:  # held (BlockingIOError), or gone
        return False
    finally:
        os.close(fd)


def lock_file_abandoned(lock_path: str, age: float, now: float | None = None) -> bool:
    """Left by a writer that died: nobody holds its flock and it is older than `age` seconds
    (e3-fsck's report; `break_stale_lock_file` is the writer's remedy)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if (time.time() if now is None else now) - os.fstat(fd).st_mtime < age:
            return False
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


__all__ = [
    "Lock", "LockHeld", "LockHolder", "holder", "is_held", "lock_path", "boot_id", "start_time",
    "LockFile", "LockFileBusy", "break_stale_lock_file", "lock_file_abandoned",
]
