"""The durable queue: executions waiting for a worker, one file each.

Layout (per runner, a routing label; the default is `local`):

    queue/<RUNNER>/<executionId>.cbor          pending
    queue/<RUNNER>/claimed/<executionId>.cbor  claimed by a live worker (or a dead one, until requeued)
    queue/<RUNNER>/done/<executionId>.cbor     completed, waiting to be deleted

An entry is one CBOR map (see `Entry`). Execution ids are time-ordered
(UUIDv7), so the sorted directory is first-in first-out.

Enqueue writes `.<executionId>.tmp`, makes it durable, and renames it into
place: a visible entry is always whole. A batch writes every temporary file,
makes them durable with one syncfs(2), then renames them all and syncs the
directory once (git's core.fsyncMethod=batch idea): a crash leaves whole
entries or stray `.tmp` files (ignored, swept by `sweep_temporaries`), never a
torn entry.

Claiming: a worker opens a pending file and takes flock(2) on it *before*
renaming it into `claimed/`, and holds that flock until the claim is done. The
claim is therefore alive exactly as long as its worker process is: the kernel
drops the flock when the process dies, whatever the moment (between the
rename and anything else, after a reboot, for a pid since reused), so there is
no window in which a dead claim looks alive or a live one looks dead.
`requeue_dead` takes the flock of each claimed file it can get and renames the
file back to pending. After claiming, the worker appends a second CBOR map to
the file naming itself (pid, process start time, boot id, command, time), for
`e3 repo status` and messages only; `requeue_dead` trims it off again.

Completion: the caller records the outcome (record written, output in the
workspace) first, then `Claim.complete()` renames the file into `done/` while
still holding its flock. A crash before that rename requeues the entry, and the
next worker finds the outcome already recorded under the same execution id and
does not run it again (see e3.exec.queue_worker). Files in `done/` are written over
by the next `enqueue_claimed` of the process (see `_Reaper`), or deleted by a
background thread: on a filesystem mounted with `discard`, freeing a file's
blocks costs milliseconds (2.5 ms here), as much as the rest of an execution;
a rename costs microseconds. Whatever a process leaves in `done/` when it exits
is deleted by the next one that completes a claim.

A process that runs an entry itself (the executor `e3 start` embeds, for an
execution that has run a while: see e3.exec.queue_executor.CLAIM_AFTER) may
write it straight into `claimed/` with `enqueue_claimed`: a spare
completed entry of `done/` (or a new `claimed/.<executionId>.tmp`), locked,
holding the entry and its holder, renamed into place. It is then exactly a
claim, one file write instead of an enqueue and a claim.

Claims need flock semantics that follow processes: a local filesystem (not NFS).
Durability of claim and completion renames is not forced to disk: after a power
loss a claim may reappear as pending or claimed-by-nobody, which is requeued and
then recognised as done, as above.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator

from e3.errors import FormatError, StorageError, UsageError
from e3.storage import locks
from e3.process import boot_id, my_start_time
from e3.storage.files import (
    link_unnamed,
    storage_error,
    sweep_files,
    sync_dir,
    syncfs_path,
    unlink_if_present,
    unnamed_file,
    write_exactly,
)

if TYPE_CHECKING:
    from e3.storage.repository import Repository

DEFAULT_RUNNER = "local"
SUFFIX = ".cbor"
CLAIMED = "claimed"
DONE = "done"
RUNNER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


# ---------------------------------------------------------------- execution ids

_id_mutex = threading.Lock()
_id_last_ms = 0
_id_counter = 0


def new_execution_id() -> str:
    """A UUIDv7: 48-bit Unix milliseconds, then a counter (monotonic within this process), then random bits."""
    global _id_last_ms, _id_counter
    with _id_mutex:
        ms = time.time_ns() // 1_000_000
        if ms <= _id_last_ms:
            ms = _id_last_ms
            _id_counter += 1
            if _id_counter > 0xFFF:
                ms += 1
                _id_counter = 0
        else:
            _id_counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        _id_last_ms = ms
        counter = _id_counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def check_execution_id(text: str) -> str:
    if not ID_RE.fullmatch(text):
        raise UsageError(f"invalid execution id {text!r}")
    return text


def check_runner(name: str) -> str:
    if not RUNNER_RE.fullmatch(name):
        raise UsageError(f"invalid runner name {name!r} (letters, digits, '_', '.', '-')")
    return name


# ---------------------------------------------------------------- entries


@dataclass(frozen=True)
class Entry:
    """One queued execution: run task `task` (object `task_hash`) of workspace `workspace` on `input_hashes`."""

    execution_id: str
    workspace: str
    task: str
    task_hash: str
    task_id: str
    input_hashes: tuple[str, ...]
    output: tuple[str, ...]
    force: bool = False
    enqueued_at: float = field(default_factory=time.time)

    def to_map(self) -> dict:
        return {
            "executionId": self.execution_id,
            "workspace": self.workspace,
            "task": self.task,
            "taskHash": self.task_hash,
            "taskId": self.task_id,
            "inputHashes": list(self.input_hashes),
            "output": list(self.output),
            "force": self.force,
            "enqueuedAt": self.enqueued_at,
        }

    @classmethod
    def from_map(cls, m: object) -> "Entry":
        try:
            assert isinstance(m, dict)
            return cls(
                execution_id=str(m["executionId"]),
                workspace=str(m["workspace"]),
                task=str(m["task"]),
                task_hash=str(m["taskHash"]),
                task_id=str(m["taskId"]),
                input_hashes=tuple(str(h) for h in m["inputHashes"]),
                output=tuple(str(p) for p in m["output"]),
                force=bool(m.get("force", False)),
                enqueued_at=float(m.get("enqueuedAt", 0.0)),
            )
        except (AssertionError, KeyError, TypeError, ValueError):
            raise FormatError("not a queue entry") from None

    def encode(self) -> bytes:
        import cbor2

        return cbor2.dumps(self.to_map())


@dataclass(frozen=True)
class ClaimHolder:
    """Who claimed an entry, as the claimer appended it to the claim file (advice for messages)."""

    pid: int
    start_time: int
    boot_id: str
    command: str
    claimed_at: float

    def to_map(self) -> dict:
        return {"pid": self.pid, "startTime": self.start_time, "bootId": self.boot_id, "command": self.command, "claimedAt": self.claimed_at}

    @classmethod
    def from_map(cls, m: object) -> "ClaimHolder | None":
        try:
            assert isinstance(m, dict)
            return cls(int(m["pid"]), int(m["startTime"]), str(m["bootId"]), str(m.get("command", "")), float(m.get("claimedAt", 0.0)))
        except (AssertionError, KeyError, TypeError, ValueError):
            return None

    @classmethod
    def me(cls) -> "ClaimHolder":
        return cls(os.getpid(), my_start_time(), boot_id(), locks.command_line(), time.time())


def decode_claim_file(data: bytes) -> tuple[Entry, int, ClaimHolder | None]:
    """The entry, its length in bytes, and the holder appended after it (None if absent or torn)."""
    import io

    import cbor2

    f = io.BytesIO(data)
    try:
        entry = Entry.from_map(cbor2.CBORDecoder(f).decode())
    except (cbor2.CBORDecodeError, EOFError, ValueError) as e:
        raise FormatError(f"not a queue entry: {e}") from None
    end = f.tell()
    holder = None
    if end < len(data):
        try:
            holder = ClaimHolder.from_map(cbor2.CBORDecoder(f).decode())
        except (cbor2.CBORDecodeError, EOFError, ValueError):
            holder = None  # torn by a crash while appending: the entry itself is whole
    return entry, end, holder


# ---------------------------------------------------------------- paths


def queue_dir(repo: "Repository") -> str:
    return repo.fspath("queue")


def runner_dir(repo: "Repository", runner: str) -> str:
    return os.path.join(queue_dir(repo), check_runner(runner))


def claimed_dir(repo: "Repository", runner: str) -> str:
    return os.path.join(runner_dir(repo, runner), CLAIMED)


def _ensure_dirs(repo: "Repository", runner: str, again: bool = False) -> tuple[str, str]:
    """The runner's directory and its `claimed/`, made if missing. Known ones are not looked at
    again (e3 start enqueues one entry per task); `again` after a write found one gone."""
    d = runner_dir(repo, runner)
    c = os.path.join(d, CLAIMED)
    if again or c not in _made:
        try:
            os.makedirs(c, exist_ok=True)
        except OSError as e:
            raise storage_error(e, c) from None
        _made.add(c)
    return d, c


_made: set[str] = set()


def _create(repo: "Repository", runner: str, path: str, flags: int) -> int:
    """A new entry file; its directory is made again if someone removed it since."""
    flags |= os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:
        _ensure_dirs(repo, runner, again=True)
        return os.open(path, flags, 0o644)


# ---------------------------------------------------------------- enqueue


def enqueue(repo: "Repository", runner: str, entry: Entry) -> str:
    """Put one entry on the queue durably; return its execution id."""
    enqueue_many(repo, runner, [entry])
    return entry.execution_id


def enqueue_many(repo: "Repository", runner: str, entries: Iterable[Entry], durable: bool = True) -> list[str]:
    """Put entries on the queue: every one whole and durable (with `durable`) before any becomes visible."""
    d, _ = _ensure_dirs(repo, runner)
    entries = list(entries)
    if not entries:
        return []
    written: list[tuple[str, str]] = []
    single = len(entries) == 1
    try:
        for entry in entries:
            check_execution_id(entry.execution_id)
            tmp = os.path.join(d, f".{entry.execution_id}.tmp")
            fd = _create(repo, runner, tmp, os.O_WRONLY)
            written.append((tmp, os.path.join(d, entry.execution_id + SUFFIX)))
            try:
                write_exactly(fd, entry.encode())
                if durable and single:
                    os.fsync(fd)
            finally:
                os.close(fd)
        if durable and not single:
            syncfs_path(d)  # one flush for the whole batch instead of one fsync per file
        for tmp, final in written:
            os.rename(tmp, final)
        if durable:
            sync_dir(d)
    except OSError as e:
        for tmp, _ in written:
            unlink_if_present(tmp)
        raise storage_error(e, d) from None
    except BaseException:
        for tmp, _ in written:
            unlink_if_present(tmp)
        raise
    return [e.execution_id for e in entries]


def enqueue_claimed(repo: "Repository", runner: str, entry: Entry) -> "Claim":
    """Put an entry on the queue already claimed by this process (not durable: like a claim's rename).

    The file is a completed entry of `done/` written over when one is spare (see `_Reaper`),
    else a new one. Either way it is locked and whole before it has a name in `claimed/`,
    which requeue_dead looks at, so it is never taken for a dead or torn claim."""
    import cbor2

    d, c = _ensure_dirs(repo, runner)
    check_execution_id(entry.execution_id)
    final = os.path.join(c, entry.execution_id + SUFFIX)
    data = entry.encode() + cbor2.dumps(ClaimHolder.me().to_map())
    fd = _write_over_spare(os.path.join(d, DONE), final, data)
    if fd is None:
        fd = _write_unnamed(repo, runner, c, final, data)
    if fd is not None:
        return Claim(repo, runner, entry, final, fd)
    tmp = os.path.join(c, f".{entry.execution_id}.tmp")
    try:
        fd = _create(repo, runner, tmp, os.O_RDWR)
    except OSError as e:
        raise storage_error(e, c) from None
    try:
        if not locks.try_flock(fd):
            raise StorageError(f"cannot lock new queue entry {tmp}")
        write_exactly(fd, data)
        os.rename(tmp, final)
    except BaseException as e:
        os.close(fd)
        unlink_if_present(tmp)
        if isinstance(e, OSError):
            raise storage_error(e, c) from None
        raise
    return Claim(repo, runner, entry, final, fd)


def _write_over_spare(done_dir: str, final: str, data: bytes) -> int | None:
    """A spare completed entry, locked, holding `data` and renamed to `final`; its descriptor,
    or None if there is no spare. Nobody reads `done/`, so the spare is written in place."""
    while (spare := _reaper.spare(done_dir)) is not None:
        try:
            fd = os.open(spare, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue  # deleted by another process meanwhile
        try:
            if locks.try_flock(fd):
                write_exactly(fd, data)
                os.ftruncate(fd, len(data))  # it may have been longer
                os.rename(spare, final)  # fails if another process deleted it meanwhile: next one
                return fd
        except OSError:
            pass
        os.close(fd)
    return None


def _write_unnamed(repo: "Repository", runner: str, claimed: str, final: str, data: bytes) -> int | None:
    """A new file, locked and holding `data`, that appears as `final` (an unnamed file linked
    in: no temporary name to rename); its descriptor, or None where unnamed files are not
    available (the caller then uses a temporary name)."""
    try:
        fd = unnamed_file(claimed, os.O_RDWR, 0o644)
    except FileNotFoundError:
        _ensure_dirs(repo, runner, again=True)
        fd = unnamed_file(claimed, os.O_RDWR, 0o644)
    except OSError as e:
        raise storage_error(e, claimed) from None
    if fd is None:
        return None
    try:
        if not locks.try_flock(fd):
            raise StorageError(f"cannot lock a new queue entry in {claimed}")
        write_exactly(fd, data)
        if link_unnamed(fd, final):
            return fd
    except BaseException as e:
        os.close(fd)
        if isinstance(e, OSError):
            raise storage_error(e, claimed) from None
        raise
    os.close(fd)  # the name is taken (or no /proc): the caller writes a temporary file
    return None


def serving_lock(repo: "Repository", runner: str) -> "locks.Lock":
    """`locks/serving-<RUNNER>.lock`, held shared by every worker started by hand while it serves
    the queue: `e3 start` leaves work on the queue for them only when someone holds it."""
    return locks.Lock(repo, f"serving-{check_runner(runner)}", "serving the queue", shared=True)


def served(repo: "Repository", runner: str) -> bool:
    """Is a worker started by hand serving `runner`'s queue now?"""
    return locks.in_use(repo, f"serving-{check_runner(runner)}")


# ---------------------------------------------------------------- claims


class Claim:
    """An entry this process has claimed; holds the entry file's flock until `complete()` or `release()`."""

    def __init__(self, repo: "Repository", runner: str, entry: Entry, path: str, fd: int):
        self.repo = repo
        self.runner = runner
        self.entry = entry
        self.path = path
        self._fd: int | None = fd
        locks.close_on_fork(self)

    def __repr__(self) -> str:
        return f"Claim({self.runner}/{self.entry.execution_id} {self.entry.workspace}.{self.entry.task})"

    @property
    def execution_id(self) -> str:
        return self.entry.execution_id

    @property
    def active(self) -> bool:
        return self._fd is not None

    def complete(self) -> None:
        """The outcome is recorded: remove the entry. Call only after recording completion."""
        if self._fd is None:
            return
        d = runner_dir(self.repo, self.runner)
        done = os.path.join(d, DONE, os.path.basename(self.path))
        try:
            # Still under our flock, so nobody can requeue it meanwhile.
            try:
                os.rename(self.path, done)
            except FileNotFoundError:
                os.makedirs(os.path.join(d, DONE), exist_ok=True)
                os.rename(self.path, done)
        except OSError as e:
            raise storage_error(e, self.path) from None
        finally:
            self._close()
        _reaper.delete(done, os.path.join(d, DONE))

    def release(self) -> None:
        """Give the entry back to the queue unrun (e.g. on Ctrl-C), for another worker to take."""
        if self._fd is None:
            return
        try:
            _return_to_queue(self.repo, self.runner, self.entry.execution_id, self.path, self._fd)
        finally:
            self._close()

    def abandon(self) -> None:
        """Drop the flock without touching the file (as a crash would); the next requeue_dead returns it."""
        self._close()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        locks.forget_on_fork(self)
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        # A claim dropped without complete/release is left for requeue_dead, like a crash would leave it.
        try:
            self._close()
        except Exception:
            pass


class Claimer:
    """Claims entries of one runner in FIFO order, re-listing the directory only when its list runs out.

    Listing a directory of n entries per claim would cost O(n^2) over a queue; a
    cached listing makes it O(n), and entries enqueued meanwhile are picked up
    at the next re-listing.
    """

    def __init__(self, repo: "Repository", runner: str = DEFAULT_RUNNER):
        self.repo = repo
        self.runner = check_runner(runner)
        self._names: list[str] = []
        self._pos = 0

    def claim(self) -> Claim | None:
        for attempt in range(2):
            while self._pos < len(self._names):
                name = self._names[self._pos]
                self._pos += 1
                c = _try_claim(self.repo, self.runner, name)
                if c is not None:
                    return c
            if attempt == 0:
                self._names = pending_names(self.repo, self.runner)
                self._pos = 0
        return None


def claim(repo: "Repository", runner: str = DEFAULT_RUNNER) -> Claim | None:
    """Claim the oldest pending entry of `runner`, or None if there is none."""
    return Claimer(repo, runner).claim()


def claim_entry(repo: "Repository", runner: str, execution_id: str) -> Claim | None:
    """Claim one named pending entry (the one this process just enqueued), or None if another worker has it."""
    return _try_claim(repo, check_runner(runner), check_execution_id(execution_id) + SUFFIX)


def _try_claim(repo: "Repository", runner: str, name: str) -> Claim | None:
    d = runner_dir(repo, runner)
    src = os.path.join(d, name)
    try:
        fd = os.open(src, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None  # taken by another worker since we listed
    except OSError as e:
        raise storage_error(e, src) from None
    try:
        if not locks.try_flock(fd):
            os.close(fd)
            return None  # another worker is claiming it right now
        # Our descriptor may be an inode that was claimed and completed since we opened it.
        try:
            if os.stat(src).st_ino != os.fstat(fd).st_ino:
                os.close(fd)
                return None
        except FileNotFoundError:
            os.close(fd)
            return None
        data = _read_all(fd)
        try:
            entry, end, _ = decode_claim_file(data)
        except FormatError:
            os.close(fd)
            _quarantine(d, name)
            return None
        dst = os.path.join(d, CLAIMED, name)
        try:
            os.rename(src, dst)
        except FileNotFoundError:
            os.makedirs(os.path.join(d, CLAIMED), exist_ok=True)
            os.rename(src, dst)
        # Advice for `repo status`; liveness is the flock we hold, so a crash before this line is harmless.
        holder = ClaimHolder.me()
        try:
            import cbor2

            hb = cbor2.dumps(holder.to_map())
            os.pwrite(fd, hb, end)
            os.ftruncate(fd, end + len(hb))
        except OSError:
            pass
        return Claim(repo, runner, entry, dst, fd)
    except OSError as e:
        try:
            os.close(fd)
        except OSError:
            pass
        raise storage_error(e, src) from None
    except BaseException:
        try:
            os.close(fd)
        except OSError:
            pass
        raise


def _return_to_queue(repo: "Repository", runner: str, execution_id: str, path: str, fd: int) -> None:
    """Under the entry's flock: trim the holder off and rename the entry back to pending."""
    data = _read_all(fd)
    try:
        _, end, _ = decode_claim_file(data)
    except FormatError:
        end = len(data)
    if end < len(data):
        os.ftruncate(fd, end)
    os.rename(path, os.path.join(runner_dir(repo, runner), execution_id + SUFFIX))


@dataclass(frozen=True)
class Requeued:
    runner: str
    entry: Entry
    holder: ClaimHolder | None  # the dead claimer, if it had written itself down


def requeue_dead(repo: "Repository", runner: str | None = None) -> list[Requeued]:
    """Return every claim whose worker is gone to its queue; return what was requeued.

    A claim is dead exactly when its flock is free (the kernel dropped it with the
    process), so this needs no pid checks and no grace period.
    """
    out: list[Requeued] = []
    for r in [runner] if runner else runners(repo):
        c = claimed_dir(repo, r)
        try:
            names = os.listdir(c)
        except FileNotFoundError:
            continue
        for name in names:
            if not name.endswith(SUFFIX):
                continue
            path = os.path.join(c, name)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # completed meanwhile
            try:
                if not locks.try_flock(fd):
                    continue  # alive
                try:
                    if os.stat(path).st_ino != os.fstat(fd).st_ino:
                        continue
                except FileNotFoundError:
                    continue  # completed (unlinked) just before we took the flock
                data = _read_all(fd)
                try:
                    entry, _, holder = decode_claim_file(data)
                except FormatError:
                    _quarantine(c, name)
                    continue
                _return_to_queue(repo, r, entry.execution_id, path, fd)
                out.append(Requeued(r, entry, holder))
            except OSError as e:
                raise storage_error(e, path) from None
            finally:
                os.close(fd)
    return out


# ---------------------------------------------------------------- listing


def runners(repo: "Repository") -> list[str]:
    try:
        return sorted(n for n in os.listdir(queue_dir(repo)) if RUNNER_RE.fullmatch(n) and n != CLAIMED)
    except FileNotFoundError:
        return []


def pending_names(repo: "Repository", runner: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(runner_dir(repo, runner)) if n.endswith(SUFFIX) and not n.startswith("."))
    except FileNotFoundError:
        return []


def claimed_names(repo: "Repository", runner: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(claimed_dir(repo, runner)) if n.endswith(SUFFIX))
    except FileNotFoundError:
        return []


def counts(repo: "Repository") -> dict[str, tuple[int, int]]:
    """Runner -> (pending, claimed), from directory listings alone (cheap, for `repo status`)."""
    return {r: (len(pending_names(repo, r)), len(claimed_names(repo, r))) for r in runners(repo)}


@dataclass(frozen=True)
class Queued:
    runner: str
    state: str  # 'pending' | 'claimed' | 'dead' (claimed by a process that is gone, not yet requeued)
    entry: Entry
    holder: ClaimHolder | None = None


def list_entries(repo: "Repository", runner: str | None = None) -> Iterator[Queued]:
    """Every pending and claimed entry, oldest first per runner; claimed ones say whether their worker lives."""
    for r in [runner] if runner else runners(repo):
        d = runner_dir(repo, r)
        for name in pending_names(repo, r):
            data = _read_path(os.path.join(d, name))
            if data is None:
                continue
            try:
                entry, _, _ = decode_claim_file(data)
            except FormatError:
                continue
            yield Queued(r, "pending", entry)
        c = os.path.join(d, CLAIMED)
        for name in claimed_names(repo, r):
            q = _claimed_entry(r, os.path.join(c, name))
            if q is not None:
                yield q


def queued_task_ids(repo: "Repository", runner: str) -> dict[str, str]:
    """task_id -> execution id of every pending or claimed entry of `runner` (to avoid queueing twice)."""
    return {q.entry.task_id: q.entry.execution_id for q in list_entries(repo, runner)}


def find(repo: "Repository", execution_id: str) -> Queued | None:
    """Where one execution is in the queue, or None if it is not queued (never was, or done)."""
    name = check_execution_id(execution_id) + SUFFIX
    for r in runners(repo):
        d = runner_dir(repo, r)
        data = _read_path(os.path.join(d, name))
        if data is not None:
            try:
                return Queued(r, "pending", decode_claim_file(data)[0])
            except FormatError:
                return None
        q = _claimed_entry(r, os.path.join(d, CLAIMED, name))
        if q is not None:
            return q
    return None


def _claimed_entry(runner: str, path: str) -> Queued | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        data = _read_all(fd)
        alive = not locks.try_flock(fd, shared=True)
    finally:
        os.close(fd)  # closing drops a shared flock we may have taken
    try:
        entry, _, holder = decode_claim_file(data)
    except FormatError:
        return None
    return Queued(runner, "claimed" if alive else "dead", entry, holder)


def sweep_temporaries(repo: "Repository", older_than: float = 60.0) -> int:
    """Remove `.tmp` files of enqueues that crashed (older than `older_than` seconds); return how many.

    A live writer holds its file for milliseconds (and `enqueue_claimed` holds a flock on it)."""
    limit = time.time() - older_than
    return sum(
        sweep_files(d, limit, lambda name: name.startswith(".") and name.endswith(".tmp"))
        for r in runners(repo)
        for d in (runner_dir(repo, r), claimed_dir(repo, r))
    )


# ---------------------------------------------------------------- deleting completed entries


class _Reaper:
    """Deletes completed entries on a daemon thread, off the workers' critical path, or keeps
    them for `enqueue_claimed` to write over.

    Writing over a file is cheaper than creating one, and on ext4 every deleted file makes
    the next creations slower for a while (the inode allocator steps over recently freed
    inodes): a process that enqueues claimed entries (e3 start) keeps up to `SPARES` completed
    ones in `done/`, and the next such process starts with them.
    """

    SPARES = 4096
    """As many as e3 start completes at one commit (e3.exec.scheduler.MAX_UNCOMMITTED): with fewer,
    a run of 100,000 tasks, whose commits grow large and so hold more, deleted most of each batch
    and created new files for the next. At most 16 MB of 4 KB files stay in `done/` between runs."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._todo: list[str] = []
        self._swept: set[str] = set()
        self._spares: dict[str, list[str]] = {}
        """done directory -> completed entries kept to be written over (for processes that reuse)."""
        self._wake = threading.Condition(self._mutex)
        self._thread: threading.Thread | None = None
        self._busy = 0

    def delete(self, path: str, done_dir: str) -> None:
        with self._mutex:
            spares = self._spares.get(done_dir)
            if spares is not None and len(spares) < self.SPARES:
                spares.append(path)
                return
            if done_dir not in self._swept:
                # Leftovers of processes that exited before their deletions ran.
                self._swept.add(done_dir)
                self._todo.extend(p for p in self._leftovers(done_dir) if p != path)
            self._todo.append(path)
            self._start()

    def spare(self, done_dir: str) -> str | None:
        """A completed entry to write over, and from now on keep those of `done_dir` for this."""
        with self._mutex:
            spares = self._spares.get(done_dir)
            if spares is None:
                spares = self._spares[done_dir] = []
                if done_dir not in self._swept:
                    self._swept.add(done_dir)
                    left = self._leftovers(done_dir)
                    spares.extend(left[: self.SPARES])
                    if left[self.SPARES :]:
                        self._todo.extend(left[self.SPARES :])
                        self._start()
            return spares.pop() if spares else None

    @staticmethod
    def _leftovers(done_dir: str) -> list[str]:
        try:
            return [os.path.join(done_dir, n) for n in os.listdir(done_dir)]
        except OSError:
            return []

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="e3-queue-reaper", daemon=True)
            self._thread.start()
        self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._mutex:
                while not self._todo:
                    self._wake.wait()
                batch, self._todo = self._todo, []
                self._busy = len(batch)
            for path in batch:
                unlink_if_present(path)
            with self._mutex:
                self._busy = 0
                self._wake.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every deletion asked for so far is done (for tests and benchmarks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mutex:
            while self._todo or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._wake.wait(left)
        return True

    def _after_fork(self) -> None:
        self.__init__()


_reaper = _Reaper()
os.register_at_fork(after_in_child=_reaper._after_fork)


def flush_deletions(timeout: float | None = None) -> bool:
    return _reaper.flush(timeout)


# ---------------------------------------------------------------- helpers


def _quarantine(d: str, name: str) -> None:
    """An unreadable entry (not written by us: ours are whole): set aside, never claimed again."""
    try:
        os.rename(os.path.join(d, name), os.path.join(d, f".{name}.corrupt"))
    except OSError:
        pass


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while True:
        b = os.pread(fd, 1 << 16, offset)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
        offset += len(b)


def _read_path(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
