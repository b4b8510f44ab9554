"""Refs and their history: git's files backend, plus state commits through pygit2.

A ref (`refs/packages/NAME/VERSION`, `refs/workspaces/WS`,
`refs/tasks/WS/TASK`) points at a git commit whose tree mirrors the state it
records: each leaf is a small blob holding one object hash. So plain git
(`git --git-dir=.e3 log -p refs/workspaces/dev`) shows what changed when.

Refs are stored exactly as git stores them (a loose file `refs/...` holding the
commit id, else a line of `packed-refs`; the reflog in `logs/refs/...`) and
moved with git's locking protocol: `<ref>.lock` is created exclusively, the old
value checked under it, the new value written into it and renamed over the ref.
libgit2 and git take the same lock files, so they and e3 exclude each other.
Doing this here rather than through libgit2 gives transactions (lock every ref,
verify every old value, then apply) and keeps reading refs free of the 100 ms
pygit2 import, so shell loops over plumbing stay fast.
"""
from __future__ import annotations

import errno
import os
import re
import time
import zlib
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, NamedTuple

from e3.errors import BadRefName, NotFound, ObjectNotFound, RefError, RefMoved, StorageError, UsageError
from e3.storage.files import unlink_if_present

if TYPE_CHECKING:
    from e3.storage.git_objects import Signature

    from e3.storage.locks import LockFile
    from e3.storage.repository import Repository

ZERO = "0" * 40
"""As OLD: the ref must not exist yet. As NEW: delete."""

COMMIT_RE = re.compile(r"[0-9a-f]{40}")

Path = tuple[str, ...]
"""A path in a state tree, e.g. ('inputs', 'x')."""

LOCK_TIMEOUT = 1.0
"""Seconds to wait for another writer's `<ref>.lock` (git waits 0.1 s by default; Python writers are slower)."""

_BAD_COMPONENT = re.compile(r"(^\.|\.lock$|\.\.|[\x00-\x20\x7f~^:?*\[\\]|@\{|^$)")


_WORKSPACE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+=-]*")
E3_NAMESPACES = {"refs/workspaces/": ("workspace",), "refs/packages/": ("package", "version"), "refs/tasks/": ("workspace", "task")}
"""e3's own refs and the names each is made of, one component per name."""


def check_ref_name(name: str) -> str:
    """git's ref-name rules; e3 refs live under refs/; and e3's own namespaces (`E3_NAMESPACES`)
    hold exactly their names, each checked by `check_component`: every path that makes or
    reads a ref checks it here, so a name `e3 workspace create` refuses is refused by
    e3-update-ref too."""
    if not isinstance(name, str) or not name.startswith("refs/") or name.endswith("/") or name.endswith("."):
        raise BadRefName(f"invalid ref name {name!r} (ref names start with refs/; see e3-update-ref(1))")
    for prefix, kinds in E3_NAMESPACES.items():
        if name.startswith(prefix):
            parts = name[len(prefix) :].split("/")
            if len(kinds) == 1:
                parts = ["/".join(parts)]  # refused by check_component, as the command that makes it refuses it
            if len(parts) != len(kinds):
                shape = prefix + "/".join(k.upper() for k in kinds)
                raise BadRefName(f"invalid ref name {name!r} (e3's refs here are {shape})")
            for kind, part in zip(kinds, parts):
                try:
                    check_component(kind, part)
                except BadRefName as e:
                    raise BadRefName(f"invalid ref name {name!r}: {e}") from None
            return name
    for part in name.split("/"):
        if _BAD_COMPONENT.search(part):
            raise BadRefName(f"invalid ref name {name!r}")
    return name


def check_component(kind: str, text: str) -> str:
    """A single name that becomes one ref component (package, version, workspace, task). A
    workspace name is also a lock file's and a command-line word: letters, digits, `_.@+=-`,
    not starting with one of `.@+=-`."""
    if "/" in text or _BAD_COMPONENT.search(text):
        raise BadRefName(f"invalid {kind} name {text!r}")
    if kind == "workspace" and not _WORKSPACE_NAME.fullmatch(text):
        raise BadRefName(f"invalid workspace name {text!r} (use letters, digits and _ . @ + = -)")
    return text


def check_commit_id(text: str, what: str = "commit id") -> str:
    if not COMMIT_RE.fullmatch(text):
        raise RefError(f"invalid {what} {text!r} (expected 40 lower-case hex digits)")
    return text


_GIT_SPACE = " \t\n\v\f\r"


def signature() -> "Signature":
    """The author of e3's commits now: E3_AUTHOR_NAME and E3_AUTHOR_EMAIL, trimmed as libgit2 trims them."""
    from e3.storage.git_objects import Signature

    name, email = _identity()
    for what, text, variable in (("name", name, "E3_AUTHOR_NAME"), ("email", email, "E3_AUTHOR_EMAIL")):
        if not text or any(c in text for c in "<>\n"):
            raise UsageError(f"invalid commit author {what} {text!r} (from {variable} or USER): it must be non-empty, without '<', '>' or a newline")
    return Signature(name, email, int(time.time()), 0)


def _identity() -> tuple[str, str]:
    name = (os.environ.get("E3_AUTHOR_NAME") or os.environ.get("USER") or "e3").strip(_GIT_SPACE)
    email = (os.environ.get("E3_AUTHOR_EMAIL") or f"{name}@localhost").strip(_GIT_SPACE)
    return name, email


# ---------------------------------------------------------------- reading


def read(repo: "Repository", name: str) -> str | None:
    """The commit id a ref points at, or None if it does not exist."""
    check_ref_name(name)
    return _read_raw(repo, name)


def _read_raw(repo: "Repository", name: str, depth: int = 0) -> str | None:
    try:
        with open(repo.path(name), "rb") as f:
            text = f.read().decode("ascii", "replace").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return _packed(repo).get(name)
    except OSError as e:
        raise StorageError(f"cannot read ref {name}: {e.strerror or e}") from None
    if text.startswith("ref: ") and depth < 5:
        target = text[5:].strip()
        return _read_raw(repo, target, depth + 1) if target.startswith("refs/") else None
    if not COMMIT_RE.fullmatch(text):
        raise RefError(f"ref {name} is corrupt: {text[:60]!r}")
    return text


def list_names(repo: "Repository", prefix: str = "refs/") -> list[str]:
    """The name of every ref under `prefix` (loose or packed), sorted, without reading them:
    one whose file holds garbage is listed (reading it then says so); a file whose name is
    not a valid ref name is not (e3-fsck reports it)."""
    names = {n for n in _packed(repo) if n.startswith(prefix)}
    top = repo.path("refs")
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, repo.root).replace(os.sep, "/")
        for f in filenames:
            name = f"{rel}/{f}"
            if name.startswith(prefix) and not f.endswith(".lock"):
                names.add(name)
    out = []
    for name in sorted(names):
        try:
            out.append(check_ref_name(name))
        except RefError:
            continue
    return out


def list_refs(repo: "Repository", prefix: str = "refs/") -> Iterator[tuple[str, str]]:
    """(name, commit id) of every ref under `prefix`, sorted by name (one that is not a ref is
    passed over: e3-fsck reports it)."""
    for name in list_names(repo, prefix):
        try:
            value = _read_raw(repo, name)
        except RefError:
            continue
        if value is not None:
            yield name, value


_packed_cache: dict[str, tuple[tuple[int, int, int], dict[str, str]]] = {}


def _packed(repo: "Repository") -> dict[str, str]:
    """`packed-refs` as {name: commit}, cached while the file is unchanged."""
    path = str(repo.path("packed-refs"))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _packed_cache.get(path)
    if hit and hit[0] == key:
        return hit[1]
    refs: dict[str, str] = {}
    with open(path, "rb") as f:
        for line in f.read().decode("utf-8", "replace").splitlines():
            if not line or line[0] in "#^":
                continue
            oid, _, name = line.partition(" ")
            if COMMIT_RE.fullmatch(oid) and name:
                refs[name] = oid
    _packed_cache[path] = (key, refs)
    return refs


# ---------------------------------------------------------------- reflogs


class ReflogEntry(NamedTuple):
    old: str
    new: str
    name: str
    email: str
    time: int
    tz: str
    message: str


def reflog(repo: "Repository", name: str) -> list[ReflogEntry]:
    """A ref's reflog, newest first (empty if it has none)."""
    check_ref_name(name)
    try:
        with open(repo.path("logs", name), "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    entries = []
    for line in data.splitlines():
        head, _, message = line.partition("\t")
        m = re.fullmatch(r"([0-9a-f]{40}) ([0-9a-f]{40}) (.*) <(.*)> (\d+) ([+-]\d{4})", head)
        if m:  # a torn last line after a crash is skipped, as git does
            entries.append(ReflogEntry(m[1], m[2], m[3], m[4], int(m[5]), m[6], message))
    entries.reverse()
    return entries


def list_reflogs(repo: "Repository") -> Iterator[str]:
    """Names of refs that have a reflog (also of deleted refs whose log remains)."""
    top = repo.path("logs", "refs")
    for dirpath, _, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, repo.path("logs")).replace(os.sep, "/")
        for f in filenames:
            yield f"{rel}/{f}"


def _append_reflog(repo: "Repository", name: str, old: str, new: str, message: str) -> None:
    who, email = _identity()
    line = f"{old} {new} {who} <{email}> {int(time.time())} +0000\t{_one_line(message)}\n"
    path = repo.path("logs", name)
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except FileNotFoundError:
            os.makedirs(path.parent, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise StorageError(f"cannot write reflog of {name}: {e.strerror or e}") from None


def _one_line(message: str) -> str:
    return " ".join(message.split())


# ---------------------------------------------------------------- writing


class RefUpdate(NamedTuple):
    """One step of a transaction.

    new: a commit id; ZERO deletes the ref; None only verifies.
    old: None does not check; ZERO requires the ref to be absent; else the ref must be exactly this.
    """

    name: str
    new: str | None
    old: str | None = None


def update(
    repo: "Repository", name: str, new: str, old: str | None = None, message: str = "", durable: bool = True
) -> None:
    """Point `name` at commit `new`; with `old`, only if the ref is still there (ZERO: absent)."""
    transaction(repo, [RefUpdate(name, new, old)], message or f"update {name}", durable=durable)


def delete(repo: "Repository", name: str, old: str | None = None, message: str = "") -> None:
    """Delete a ref (and its reflog, like git); with `old`, only if it still points there."""
    transaction(repo, [RefUpdate(name, ZERO, old)], message or f"delete {name}")


def transaction(repo: "Repository", updates: Iterable[RefUpdate], message: str = "", durable: bool = True) -> None:
    """Apply every update or none: lock all refs, verify every old value, then write.

    `durable` fsyncs each ref file before renaming it into place (git does not by
    default; it costs about 2 ms here). A caller that makes a batch durable itself
    (one syncfs(2) after the update) may pass False; the update is atomic either way.

    A ref that moved, a missing ref to delete or verify, or a lock held elsewhere
    changes nothing. If writing fails half way (the disk refuses), the refs already
    written are put back before the error is raised.
    """
    ops = list(updates)
    seen: set[str] = set()
    for op in ops:
        check_ref_name(op.name)
        if op.name in seen:
            raise RefError(f"multiple updates for ref {op.name} not allowed")
        seen.add(op.name)
        if op.new is not None:
            check_commit_id(op.new, "new value")
            if op.new != ZERO:
                _check_commit(repo, op.new)
        if op.old is not None:
            check_commit_id(op.old, "old value")
    locks: dict[str, _Lock] = {}
    packed_lock: _Lock | None = None
    deleted: list[str] = []
    try:
        for op in sorted(ops, key=lambda o: o.name):  # one order everywhere: no livelock between transactions
            locks[op.name] = _Lock.acquire(repo, op.name)
        current = {op.name: _read_raw(repo, op.name) for op in ops}
        for op in ops:
            cur = current[op.name]
            if op.old == ZERO and cur is not None:
                raise RefMoved(f"ref {op.name} moved: expected no ref, found {cur}")
            if op.old not in (None, ZERO) and cur != op.old:
                raise RefMoved(f"ref {op.name} moved: expected {op.old}, found {cur or 'no ref'}")
            if cur is None and op.old is None and (op.new == ZERO or op.new is None):
                raise NotFound(f"ref {op.name} does not exist")
        _check_no_dir_conflicts(repo, [op.name for op in ops if current[op.name] is None and op.new not in (None, ZERO)])
        packed = _packed(repo)
        if any(op.new == ZERO and op.name in packed for op in ops):
            packed_lock = _Lock.acquire(repo, "packed-refs")
        writes = [op for op in ops if op.new not in (None, ZERO, current[op.name])]
        # Many refs: write every lock file, make them all durable with one syncfs(2), then rename
        # (git's core.fsyncMethod=batch idea); one ref: a single fsync is cheaper.
        batch = durable and len(writes) > 1
        if batch:
            for op in writes:
                locks[op.name].write(op.new)
            repo.objects.sync()
        applied: list[tuple[str, str | None, str]] = []
        try:
            for op in ops:
                if op.new is None or op.new == current[op.name]:
                    continue
                if op.new == ZERO:
                    _delete_locked(repo, op.name, packed_lock)
                    deleted.append(op.name)
                else:
                    _append_reflog(repo, op.name, current[op.name] or ZERO, op.new, message or f"update {op.name}")
                    if batch:
                        locks[op.name].rename()
                    else:
                        locks[op.name].commit(op.new, durable)
                applied.append((op.name, current[op.name], op.new))
        except BaseException:
            _roll_back(repo, applied, message)
            raise
    finally:
        for lock in locks.values():
            lock.release()
        if packed_lock is not None:
            packed_lock.release()
        for name in deleted:  # after the locks are gone, so their directories can be empty
            _prune_empty_dirs(repo, repo.path(name).parent)
            _prune_empty_dirs(repo, repo.path("logs", name).parent)


def _roll_back(repo: "Repository", applied: list[tuple[str, str | None, str]], message: str) -> None:
    for name, old, new in reversed(applied):
        try:
            lock = _Lock.acquire(repo, name)
        except RefError:
            continue
        try:
            if old is None:  # it did not exist: neither did its reflog (deleting a ref deletes its log)
                unlink_if_present(repo.path(name))
                unlink_if_present(repo.path("logs", name))
            else:
                _append_reflog(repo, name, new, old, f"rollback: {message}")
                lock.commit(old)
        except (OSError, RefError):
            pass
        finally:
            lock.release()


def _delete_locked(repo: "Repository", name: str, packed_lock: "_Lock | None") -> None:
    if packed_lock is not None and name in _packed(repo):
        _rewrite_packed(repo, packed_lock, drop=name)
    try:
        unlink_if_present(repo.path(name))
        unlink_if_present(repo.path("logs", name))
    except OSError as e:
        raise StorageError(f"cannot delete ref {name}: {e.strerror or e}") from None


def _rewrite_packed(repo: "Repository", lock: "_Lock", drop: str) -> None:
    path = repo.path("packed-refs")
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines(keepends=True)
    out, skip_peel = [], False
    for line in lines:
        if line.startswith("^"):
            if not skip_peel:
                out.append(line)
            continue
        skip_peel = line.rstrip("\n").partition(" ")[2] == drop
        if not skip_peel:
            out.append(line)
    lock.commit_bytes("".join(out).encode())
    _packed_cache.pop(str(path), None)


def _prune_empty_dirs(repo: "Repository", start) -> None:  # noqa: ANN001 - a pathlib.Path
    stop = {repo.path("refs"), repo.path("logs", "refs"), repo.path("logs")}
    d = start
    while d not in stop and str(d).startswith(str(repo.root)):
        try:
            os.rmdir(d)
        except OSError:
            return
        d = d.parent


def _check_no_dir_conflicts(repo: "Repository", names: list[str]) -> None:
    """A new ref may not be a directory of an existing one, nor the other way round (git's D/F rule)."""
    existing = set(_packed(repo))
    for name in names:
        parts = name.split("/")
        for i in range(2, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in existing or os.path.isfile(repo.path(prefix)):
                raise RefError(f"cannot create ref {name}: ref {prefix} exists")
        if os.path.isdir(repo.path(name)) or any(e.startswith(name + "/") for e in existing):
            raise RefError(f"cannot create ref {name}: refs exist under {name}/")


def _check_commit(repo: "Repository", oid: str) -> None:
    kind = git_object_type(repo, oid)
    if kind is None:
        raise ObjectNotFound(f"commit {oid} not found")
    if kind != "commit":
        raise RefError(f"object {oid} is a git {kind}, not a commit")


def git_object_type(repo: "Repository", oid: str) -> str | None:
    """'commit', 'tree', 'blob' or 'tag' for a full git object id, None if absent.

    A loose object's header is read with zlib alone, and an object stored whole
    in a pack (e3's commits are, see e3.storage.git_pack) from the pack's index, so
    plumbing that moves refs to fresh commits never pays for importing pygit2;
    anything else (a delta, an object not found) asks libgit2.
    """
    path = repo.path("objects", oid[:2], oid[2:])
    try:
        with open(path, "rb") as f:
            head = zlib.decompressobj().decompress(f.read(64), 16)
        return head.split(b" ", 1)[0].decode("ascii")
    except FileNotFoundError:
        pass
    except (OSError, zlib.error, UnicodeDecodeError):
        raise RefError(f"git object {oid} is corrupt") from None
    from e3.storage import git_pack

    kind = git_pack.packed_type(str(repo.path("objects", "pack")), bytes.fromhex(oid))
    if kind is not None:
        return git_pack.TYPE_NAMES[kind]
    import pygit2

    try:
        obj = repo.git.get(oid)
    except (ValueError, pygit2.GitError):
        return None
    return None if obj is None else obj.type_str


STALE_LOCK_AGE = 1.0
"""Seconds after which a ref lock file that no process holds is taken to be a dead writer's."""


PACKED_LOCK_AGE = 60.0
"""For `packed-refs.lock`: `git pack-refs` (run by e3 repo gc) holds it without flock, for longer than a moment."""


class _Lock:
    """A ref's lock: git's `<ref>.lock` (e3.storage.locks.LockFile), with errors in the words of refs."""

    def __init__(self, name: str, file: LockFile):
        self.name, self.file = name, file

    @classmethod
    def acquire(cls, repo: "Repository", name: str, timeout: float = LOCK_TIMEOUT) -> "_Lock":
        # Imported here: e3.storage.locks brings json and dataclasses, which readers of refs never need.
        from e3.storage.locks import LockFile, LockFileBusy

        stale_age = PACKED_LOCK_AGE if name == "packed-refs" else STALE_LOCK_AGE
        try:
            return cls(name, LockFile.acquire(str(repo.path(name)), timeout, stale_age))
        except LockFileBusy as e:
            raise RefError(
                f"cannot lock ref {name}: {e} exists; another process is updating it (if none is, remove the file)"
            ) from None
        except (FileExistsError, NotADirectoryError):
            raise RefError(f"cannot create ref {name}: {_in_the_way(repo, name)} exists") from None
        except OSError as e:
            raise StorageError(f"cannot lock ref {name}: {e.strerror or e}") from None

    def commit(self, oid: str, durable: bool = True) -> None:
        self.commit_bytes(f"{oid}\n".encode(), durable)

    def commit_bytes(self, data: bytes, durable: bool = True) -> None:
        self.write_bytes(data)
        if durable:
            try:
                self.file.sync()
            except OSError as e:
                raise StorageError(f"cannot write ref {self.name}: {e.strerror or e}") from None
        self.rename()

    def write(self, oid: str) -> None:
        self.write_bytes(f"{oid}\n".encode())

    def write_bytes(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise StorageError(f"no space left on device writing ref {self.name}") from None
            raise StorageError(f"cannot write ref {self.name}: {e.strerror or e}") from None

    def rename(self) -> None:
        try:
            self.file.commit()
        except IsADirectoryError:
            raise RefError(f"cannot create ref {self.name}: refs exist under {self.name}/") from None
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise StorageError(f"no space left on device writing ref {self.name}") from None
            raise StorageError(f"cannot write ref {self.name}: {e.strerror or e}") from None

    def release(self) -> None:
        self.file.release()


def _in_the_way(repo: "Repository", name: str) -> str:
    parts = name.split("/")
    for i in range(2, len(parts)):
        if os.path.isfile(repo.path(*parts[:i])):
            return "ref " + "/".join(parts[:i])
    return "a file in the way of its directory"


# ---------------------------------------------------------------- state trees


def write_state(repo: "Repository", entries: Mapping[Path, str], parent: str | None, message: str, durable: bool = True) -> str:
    """Record `entries` (path -> object hash) as a commit on top of `parent`; return its id.
    With `durable` False the caller makes the commit's objects durable (one sync for its own
    writes and these) before a ref names it."""
    from e3.storage.git_objects import COMMIT, NewObjects, commit_bytes

    new = NewObjects(repo)
    tree = new.build_tree(entries)
    sig = signature()
    commit = new.add(COMMIT, commit_bytes(tree, [bytes.fromhex(parent)] if parent else [], sig, sig, message))
    new.write(durable)
    return commit.hex()


def read_state(repo: "Repository", commit: str) -> dict[Path, str]:
    """The entries (path -> object hash) recorded by a commit."""
    from e3.storage.git_objects import tree_leaves

    return tree_leaves(repo, commit)


def read_leaf(repo: "Repository", commit: str, path: Path) -> str | None:
    """The object hash at `path` in a commit's tree; None if there is no leaf there.

    Raises RefError if `path` names a subtree (a struct of datasets, not one value).
    """
    from e3.storage.git_objects import TREE_MODE, commit_tree_id, read_object, read_tree

    mode, oid = TREE_MODE, commit_tree_id(repo, commit)
    for part in path:
        if mode != TREE_MODE:
            return None
        entry = read_tree(repo, oid).get(part.encode())
        if entry is None:
            return None
        mode, oid = entry
    if mode == TREE_MODE:
        raise RefError(f"path {'/'.join(path) or '/'} holds a tree of datasets, not one value")
    return read_object(repo, oid)[1].decode().strip()


class Entry(NamedTuple):
    """One commit in a ref's history."""

    commit: str
    message: str
    time: int
    author: str


def history(repo: "Repository", commit: str) -> Iterator[Entry]:
    """First-parent history from `commit` back to the root, newest first."""
    import pygit2

    git = repo.git
    c = git[pygit2.Oid(hex=commit)]
    while True:
        yield Entry(str(c.id), c.message.rstrip("\n"), c.commit_time, c.author.name)
        if not c.parents:
            return
        c = c.parents[0]
