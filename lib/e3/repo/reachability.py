"""What the repository can reach: the mark phase shared by gc and fsck.

Roots are every ref, every reflog entry (old and new value), every commit in
their history (all parents), `tasks/*` pointers, and every entry of the queue
(pending, claimed by a live or dead worker, or being enqueued). From a commit
the walk goes through its tree; each leaf is a blob holding one e3 object hash.

Some e3 objects name others. Their kind is known from where they are found,
never guessed from user data:

- the leaf `package` of a package commit: a package object, naming its task
  objects and the values of its dataset refs;
- the leaf `.workspace` of a workspace commit: a WorkspaceState, naming its package;
- the leaf `execution` of a task-history commit, and `tasks/*`: an execution
  record, naming its input and output values. A pointer embeds its record after
  its line (e3.storage.records): those bytes are checked against the hash the
  line gives and opened where they lie, so that hash is not looked for in the
  store; a pointer written before records were embedded names a record object;
- `taskHash` of a queue entry: a task object, naming its command IR (its
  `inputHashes` are values).

Every other leaf is a dataset value and is not opened: a user's value that
happens to contain a hash does not keep that object alive (as in git, where a
blob's content never references anything).
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Iterable, Iterator, NamedTuple

from e3.storage import refs
from e3.storage.locks import lock_file_abandoned
from e3.errors import CorruptObject, E3Error

if TYPE_CHECKING:
    import pygit2

    from e3.storage.repository import Repository

HASH_RE = re.compile(r"[0-9a-f]{64}")

# Kinds of e3 object the walk opens; everything else is a plain value.
VALUE, PACKAGE, WORKSPACE_STATE, RECORD, TASK = "value", "package", "workspace state", "execution record", "task"
_LEAF_KINDS = {("package",): PACKAGE, (".workspace",): WORKSPACE_STATE, ("execution",): RECORD}
# Fields of a queue entry that hold object hashes (`taskId` and `executionId` are names, not objects).
_QUEUE_KEYS = {"taskHash": TASK, "inputHashes": VALUE, "outputHash": VALUE}


class Problem(NamedTuple):
    """Something named that is absent or unreadable. `where` says who names it."""

    kind: str  # 'missing' | 'corrupt'
    what: str  # 'commit', 'tree', 'blob', or an e3 object kind
    hash: str
    where: str
    detail: str = ""
    path: str = ""
    """Where the damage lies when it is not the object's own file (a `tasks/` pointer's embedded record)."""

    def __str__(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.kind} {self.what} {self.hash} (named by {self.where}){extra}"


class Reachable:
    def __init__(self) -> None:
        self.objects: set[str] = set()
        """e3 object hashes."""
        self.git: set[str] = set()
        """git object ids: commits, trees and blobs."""
        self.problems: list[Problem] = []
        self.opened: set[tuple[str, str]] = set()


class Walker:
    """Marks everything reachable. `walk()` may be called again to pick up roots added meanwhile."""

    def __init__(self, repo: "Repository", check_objects: bool = False):
        self.repo = repo
        self.check_objects = check_objects
        self.result = Reachable()
        self._pending: list[tuple[str, str, str]] = []  # (hash, kind, where) of e3 objects to open
        self._embedded: dict[str, list[str]] = {}
        """Record hash -> the line words its record implies, for embedded records already opened
        (a second walk, or two pointers holding one record, decode it once)."""

    # ------------------------------------------------------------ roots

    def walk(self) -> Reachable:
        self._walk_refs()
        self._walk_tasks()
        self._walk_queue()
        self._drain()
        return self.result

    def _walk_refs(self) -> None:
        starts: list[tuple[str, str]] = []
        for name, commit in refs.list_refs(self.repo):
            starts.append((commit, name))
        for name in refs.list_reflogs(self.repo):
            try:
                entries = refs.reflog(self.repo, name)
            except E3Error:
                continue
            for i, e in enumerate(entries):
                for oid in (e.new, e.old):
                    if oid != refs.ZERO:
                        starts.append((oid, f"{name}@{{{i}}}"))
        self._walk_commits(starts)

    def _walk_tasks(self) -> None:
        d = self.repo.path("tasks")
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return
        for n in names:
            try:
                with open(os.path.join(d, n), "rb") as f:
                    data = f.read()
            except (FileNotFoundError, IsADirectoryError):
                continue
            line, newline, embedded = data.partition(b"\n")
            if not newline:
                continue  # torn (no whole line): readers take it for no record, and it names nothing
            words = line.decode("ascii", "replace").split()
            hashes = [w for w in words if HASH_RE.fullmatch(w)]
            where = f"tasks/{n}"
            if embedded and words and HASH_RE.fullmatch(words[0]):
                self._open_embedded(words[0], words, embedded, where)
                for h in hashes[1:]:  # the output, which the line names too
                    self._mark(h, VALUE, where)
                continue
            for i, h in enumerate(hashes):  # "<record> <kind> [<output>]": the first hash is the record
                self._mark(h, RECORD if i == 0 else VALUE, where)

    def _open_embedded(self, h: str, words: list[str], data: bytes, where: str) -> None:
        """Mark what the record a pointer embeds names, once its bytes are that record."""
        from e3.storage.records import embedded_problem

        self.result.objects.add(h)  # with e3.recordObjects it is also an object, which this keeps
        problem = embedded_problem(h, data)
        record = None
        if problem is None and h not in self._embedded:
            try:
                record = _record(data)
            except E3Error as e:
                problem = f"its execution record does not decode ({e})"
            else:
                self._embedded[h] = [record.kind] + ([record.output_hash] if record.output_hash else [])
        if problem is None and words[1:] != self._embedded[h]:
            problem = f"its line does not match its execution record (a {self._embedded[h][0]})"
        if problem is not None:
            if not where.endswith(".tmp"):  # what it names cannot be known: gc must not prune
                self._problem("corrupt", RECORD, h, where, problem, path=where)
            # A replacement being written, or left torn by a crash: no record yet, and no damage.
            return
        if record is not None:  # else opened before: what it names is marked
            for child, kind in _record_children(record):
                self._mark(child, kind, where)

    def _walk_queue(self) -> None:
        top = self.repo.path("queue")
        for dirpath, _, filenames in os.walk(top):
            for n in filenames:
                if not (n.endswith(".cbor") or n.endswith(".tmp")):
                    continue
                path = os.path.join(dirpath, n)
                where = os.path.relpath(path, self.repo.root)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except (FileNotFoundError, IsADirectoryError):
                    continue  # claimed or completed while we looked: its hashes are recorded elsewhere
                for key, h in _cbor_hashes(data):
                    if key in _QUEUE_KEYS:
                        self._mark(h, _QUEUE_KEYS[key], where)

    # ------------------------------------------------------------ git objects

    def _walk_commits(self, starts: Iterable[tuple[str, str]]) -> None:
        seen = self.result.git
        stack = [(oid, where) for oid, where in starts if oid not in seen]
        if not stack:
            return  # no refs: no need to load pygit2 (about 50 ms)
        import pygit2

        git = self.repo.git
        while stack:
            oid, where = stack.pop()
            if oid in seen:
                continue
            try:
                c = git[oid]
            except (KeyError, ValueError):
                self._problem("missing", "commit", oid, where)
                continue
            except pygit2.GitError as e:
                seen.add(oid)  # reported once, whoever else names it
                self._problem("corrupt", "commit", oid, where, self._unreadable(oid, e))
                continue
            if c.type != pygit2.GIT_OBJECT_COMMIT:
                self._problem("corrupt", "commit", oid, where, f"a {c.type_str}, not a commit")
                continue
            seen.add(oid)
            self._walk_tree(c.tree_id, (), f"commit {oid[:12]}")
            for p in c.parent_ids:
                stack.append((str(p), f"commit {oid[:12]}"))

    def _walk_tree(self, tree_id: "pygit2.Oid", prefix: tuple[str, ...], where: str) -> None:
        import pygit2

        git = self.repo.git
        seen = self.result.git
        oid = str(tree_id)
        if oid in seen:
            return
        try:
            tree = git[tree_id]  # by Oid: a str would go through libgit2's prefix lookup
        except (KeyError, ValueError):
            self._problem("missing", "tree", oid, where)
            return
        except pygit2.GitError as e:
            self._problem("corrupt", "tree", oid, where, self._unreadable(oid, e))
            return
        seen.add(oid)
        for entry in tree:
            path = prefix + (entry.name,)
            child = str(entry.id)
            if entry.filemode == pygit2.GIT_FILEMODE_TREE:
                self._walk_tree(entry.id, path, where)
            elif entry.filemode in (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE):
                kind = _LEAF_KINDS.get(path, VALUE)
                if child in seen and kind == VALUE:
                    continue
                try:
                    data = git[entry.id].data
                except (KeyError, ValueError):
                    self._problem("missing", "blob", child, f"{where}:{'/'.join(path)}")
                    continue
                except pygit2.GitError as e:
                    self._problem("corrupt", "blob", child, f"{where}:{'/'.join(path)}", self._unreadable(child, e))
                    continue
                seen.add(child)
                text = data.decode("ascii", "replace").strip()
                if not HASH_RE.fullmatch(text):
                    self._problem("corrupt", "blob", child, f"{where}:{'/'.join(path)}", "not an object hash")
                    continue
                self._mark(text, kind, f"{where}:{'/'.join(path)}")

    def _unreadable(self, oid: str, e: Exception) -> str:
        return unreadable_git_object(self.repo, oid, e)

    # ------------------------------------------------------------ e3 objects

    def _mark(self, h: str, kind: str, where: str) -> None:
        objects = self.result.objects
        if kind == VALUE:
            if h not in objects:
                objects.add(h)
                if self.check_objects and not self.repo.objects.exists(h):
                    self._problem("missing", "object", h, where)
            return
        objects.add(h)
        if (h, kind) not in self.result.opened:
            self._pending.append((h, kind, where))

    def _drain(self) -> None:
        while self._pending:
            h, kind, where = self._pending.pop()
            if (h, kind) in self.result.opened:
                continue
            self.result.opened.add((h, kind))
            try:
                data = self.repo.objects.read(h)
            except CorruptObject as e:  # what it names cannot be known: gc must not prune
                self._problem("corrupt", kind, h, where, str(e).partition(": ")[2])
                continue
            except E3Error:
                self._problem("missing", kind, h, where)
                continue
            try:
                children = list(_children(kind, data))
            except E3Error as e:
                self._problem("corrupt", kind, h, where, str(e))
                continue
            for child, child_kind in children:
                if HASH_RE.fullmatch(child):
                    self._mark(child, child_kind, f"{kind} {h[:12]}")
                else:
                    self._problem("corrupt", kind, h, where, f"names {child!r}, not an object hash")

    def _problem(self, kind: str, what: str, h: str, where: str, detail: str = "", path: str = "") -> None:
        self.result.problems.append(Problem(kind, what, h, where, detail, path))


def _children(kind: str, data: bytes) -> Iterator[tuple[str, str]]:
    """The hashes an object of a known kind names, with their kinds."""
    if kind == PACKAGE:
        from e3.model.package import decode_package

        pkg = decode_package(data)
        for task_hash in pkg.tasks.values():
            yield task_hash, TASK
        for ref in pkg.refs.values():
            if ref.kind == "value" and ref.hash:
                yield ref.hash, VALUE
    elif kind == TASK:
        from e3.east import decode
        from e3.model.task import TaskObject, _decode_as

        _, value = _decode_as(data, _type("TaskObjectType"), "task object", decode)
        yield TaskObject.from_east(value).command_ir, VALUE
    elif kind == WORKSPACE_STATE:
        value = _decode(data, "WorkspaceStateType", "workspace state")
        yield str(value["packageHash"]), PACKAGE
    elif kind == RECORD:
        yield from _record_children(_record(data))


def _record(data: bytes):  # noqa: ANN202 - an e3.storage.records.Record
    from e3.storage.records import Record

    return Record.from_east(_decode(data, "ExecutionStatusType", "execution record"))


def _record_children(record) -> Iterator[tuple[str, str]]:  # noqa: ANN001 - an e3.storage.records.Record
    for h in record.input_hashes:
        yield h, VALUE
    if record.output_hash:
        yield record.output_hash, VALUE


def _type(name: str):  # noqa: ANN202 - an East type
    from e3.model import types

    return getattr(types, name)


def _decode(data: bytes, type_name: str, what: str):  # noqa: ANN202 - an East value
    from e3.east import decode
    from e3.model.task import _decode_as

    return _decode_as(data, _type(type_name), what, decode)[1]


def _cbor_hashes(data: bytes) -> Iterator[tuple[str | None, str]]:
    """(key, hash) of every 64-hex string in a CBOR sequence; a torn tail is ignored."""
    import io

    import cbor2

    f = io.BytesIO(data)
    while f.tell() < len(data):
        try:
            item = cbor2.CBORDecoder(f).decode()
        except Exception:  # noqa: BLE001 - torn or foreign: what was read so far counts
            return
        yield from _strings(item, None)


def _strings(item: object, key: str | None) -> Iterator[tuple[str | None, str]]:
    if isinstance(item, str):
        if HASH_RE.fullmatch(item):
            yield key, item
    elif isinstance(item, dict):
        for k, v in item.items():
            yield from _strings(v, k if isinstance(k, str) else None)
    elif isinstance(item, (list, tuple)):
        for v in item:
            yield from _strings(v, key)


def unreadable_git_object(repo: "Repository", oid: str, e: Exception) -> str:
    """Why libgit2 could not read a git object, with the pack it is in (as git fsck says):
    `in pack-<sha>.pack: incorrect data check`."""
    from e3.storage import git_pack

    reason = str(e)
    if reason.startswith(oid):
        reason = reason[len(oid) :].lstrip(": ")
    pack = git_pack.pack_holding(os.path.join(repo.objects.objects_dir, "pack"), bytes.fromhex(oid))
    return f"in {pack}.pack: {reason}" if pack else reason or type(e).__name__


def reachable(repo: "Repository", check_objects: bool = False) -> Reachable:
    return Walker(repo, check_objects).walk()


# ---------------------------------------------------------------- e3-fsck's connectivity pass

MISSING, CORRUPT, DANGLING, TEMP = "missing", "corrupt", "dangling", "temp"


def fsck_pass(repo: "Repository", report, list_dangling: bool = False) -> None:  # noqa: ANN001 - an e3.repo.fsck.Report
    """Every hash named by a ref, commit tree, execution record, queue entry or stored value
    must exist; count (and with `list_dangling` list) e3 objects nothing reaches, which
    is informational as in git; report ref files that are not refs, and ref locks left
    behind by a crash."""
    import time

    _check_ref_files(repo, report, time.time())
    walker = Walker(repo, check_objects=True)
    reach = walker.walk()
    for p in reach.problems:
        report.add(MISSING if p.kind == "missing" else CORRUPT, p.path or _object_path(p.what, p.hash), _describe(p))
    dangling = 0
    # The object pass has listed the store already (a second listing cost as much as the walk).
    for h in repo.objects if report.listed is None else report.listed:
        if h not in reach.objects:
            dangling += 1
            if list_dangling:
                report.add(DANGLING, _object_path("object", h), "nothing reaches it (e3 repo gc removes it once old)")
    report.counts["refs"] = report.counts.get("refs", 0) + sum(1 for _ in refs.list_refs(repo))
    report.counts["reachable git objects"] = len(reach.git)
    report.counts["reachable e3 objects"] = len(reach.objects)
    report.counts["dangling e3 objects"] = dangling


def _object_path(what: str, h: str) -> str:
    if what in ("commit", "tree", "blob"):
        return f"objects/{h[:2]}/{h[2:]}"
    return f"objects/{h[:2]}/{h[2:]}.beast2"


def _describe(p: Problem) -> str:
    if p.path:
        return p.detail  # the damage is in the file the line names
    what = "object" if p.what == VALUE else p.what
    detail = f" ({p.detail})" if p.detail else ""
    if p.kind == "missing":
        return f"{what} {p.hash} is missing, named by {p.where}"
    return f"{what} {p.hash} is unreadable{detail}, named by {p.where}"


def _check_ref_files(repo: "Repository", report, now: float) -> None:  # noqa: ANN001 - an e3.repo.fsck.Report
    top = repo.path("refs")
    for dirpath, _, filenames in os.walk(top):
        for f in filenames:
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, repo.root).replace(os.sep, "/")
            if f.endswith(".lock"):
                if lock_file_abandoned(path, refs.STALE_LOCK_AGE, now):
                    report.add(TEMP, rel, "ref lock left by a writer that died (the next update of the ref removes it)")
                continue
            try:
                refs.check_ref_name(rel)
                refs.read(repo, rel)
            except E3Error as e:
                report.add(CORRUPT, rel, f"not a ref: {e}")
