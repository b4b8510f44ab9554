"""Workspaces: a package deployed into a live dataset tree, with its history.

`refs/workspaces/WS` points at a git commit whose tree mirrors the dataset
tree: one leaf per assigned dataset at its tree path (`inputs/x`,
`tasks/t/output`, `tasks/t/function_ir`) holding the value's object hash, plus
the leaf `.workspace` holding the WorkspaceState object (which package is
deployed). An unassigned dataset has no leaf; a created but undeployed
workspace has a commit with an empty tree. Every change (deploy, set, reset, a
batch of task outputs) is one commit made by `transact` (or, for e3 start's
batches, by e3.repo.workspace_writer, which keeps its own tree), under
`locks/workspace-WS.lock` and with compare-and-swap on the ref, so history is
linear and no writer's change is lost.

`e3 start` holds `locks/dataflow-WS.lock` for a whole run; deploy, remove and a
reset that changes the deployment refuse while it is held.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, Mapping

from e3.storage import refs
from e3.errors import (
    Conflict,
    DatasetNotFound,
    DatasetNotWritable,
    E3Error,
    FormatError,
    NotFound,
    ObjectNotFound,
    RefMoved,
    UsageError,
    WorkspaceExists,
    WorkspaceLocked,
    WorkspaceNotDeployed,
    WorkspaceNotFound,
)
from e3.model.paths import TreePath, format_tree_path

if TYPE_CHECKING:
    from e3.model.package import DatasetSpec, Package
    from e3.repo.package import ImportResult
    from e3.repo.snapshot import Snapshot
    from e3.storage.repository import Repository

REF_PREFIX = "refs/workspaces/"
STATE_PATH: TreePath = (".workspace",)
"""The tree leaf holding the WorkspaceState object; never a dataset (package trees hold inputs/ and tasks/)."""

Changes = Mapping[TreePath, "str | None"]
"""Dataset path -> new object hash, or None to unassign."""


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class WorkspaceState:
    """Which package a workspace runs (the original engine's WorkspaceState)."""

    package_name: str
    package_version: str
    package_hash: str
    deployed_at: datetime
    current_run_id: str | None = None

    def to_east(self):
        from e3.east import none, some, struct

        return struct(
            {
                "packageName": self.package_name,
                "packageVersion": self.package_version,
                "packageHash": self.package_hash,
                "deployedAt": self.deployed_at,
                "currentRunId": none if self.current_run_id is None else some(self.current_run_id),
            }
        )

    @classmethod
    def from_east(cls, value) -> "WorkspaceState":
        run = value["currentRunId"]
        return cls(
            package_name=str(value["packageName"]),
            package_version=str(value["packageVersion"]),
            package_hash=str(value["packageHash"]),
            deployed_at=value["deployedAt"],
            current_run_id=None if run.type == "none" else str(run.value),
        )


@dataclass(frozen=True)
class WorkspaceView:
    """One commit of a workspace, decoded. `datasets` holds assigned datasets only."""

    name: str
    commit: str
    state: WorkspaceState | None
    package_hash: str | None
    datasets: dict[TreePath, str] = field(default_factory=dict)
    repo: "Repository | None" = field(default=None, repr=False, compare=False)

    @property
    def deployed(self) -> bool:
        return self.state is not None

    @property
    def package(self) -> "Package | None":
        """The deployed package, decoded when first asked for (once per process, see load_package):
        e3 start commits datasets only, and a package of 100,000 tasks takes seconds to decode
        and hundreds of megabytes to hold."""
        if self.package_hash is None or self.repo is None:
            return None
        return load_package(self.repo, self.package_hash)


@dataclass(frozen=True)
class DeployReport:
    commit: str
    package_name: str
    package_version: str
    package_hash: str
    kept: list[TreePath]
    """Input values set in the workspace that the new deployment keeps."""
    dropped: list[TreePath]
    """Input values set in the workspace that the new package has no place for (path gone or type changed)."""


@dataclass(frozen=True)
class DatasetChange:
    path: TreePath
    old: str | None
    new: str | None


# ---------------------------------------------------------------- names and caches


def ref_name(ws: str) -> str:
    return REF_PREFIX + check_name(ws)


def check_name(ws: str) -> str:
    """A workspace name (the rule is e3.storage.refs.check_component's, for every path that makes a ref)."""
    try:
        return refs.check_component("workspace", ws)
    except E3Error as e:
        raise UsageError(str(e)) from None


_lock = threading.Lock()
_packages: dict[str, "Package"] = {}
_states: dict[str, WorkspaceState] = {}
_views: dict[tuple[str, str], tuple[WorkspaceView, dict[TreePath, str]]] = {}
"""(repository root, ws) -> newest view read or written in this process, with its full entries."""
_trees: dict[tuple[str, str], "Snapshot"] = {}
"""(repository root, workspace) -> the cached tree `dataset_hash` last read: looked up, never handed out."""


def load_package(repo: "Repository", package_hash: str) -> "Package":
    """A package object, decoded once per process (package objects never change)."""
    pkg = _packages.get(package_hash)
    if pkg is None:
        from e3.model.package import load_package as _load

        pkg = _load(repo.objects, package_hash)
        with _lock:
            _packages[package_hash] = pkg
    return pkg


_checked_packages: dict[str, "Package | None"] = {}


def sketched_spec(view: WorkspaceView, path: TreePath) -> "DatasetSpec | None":
    """The dataset at `path` in the deployed package, read without the East runtime
    (e3.model.canonical): its type a `TypeValue`, so it can be matched with a value's header
    (`TypeValue.sketch`) but given to nothing else. None when that reader declines the
    package or there is no dataset there: `dataset_spec` then says what is wrong, in its words."""
    pkg = canonical_package(view)
    return None if pkg is None else pkg.datasets().get(tuple(path))


def canonical_package(view: WorkspaceView) -> "Package | None":
    """The deployed package read without the East runtime (e3.model.canonical, once per process):
    its types `TypeValue`s. None when that reader declines it, or it is missing or damaged (the
    runtime's reading then says what is wrong)."""
    if view.package_hash is None or view.repo is None:
        return None
    key = view.package_hash
    if key not in _checked_packages:
        from e3.model.canonical import read_package

        try:
            data = view.repo.objects.read(key)
        except E3Error:
            return None
        pkg = read_package(data)
        with _lock:
            _checked_packages[key] = pkg
    return _checked_packages[key]


def _load_state(repo: "Repository", state_hash: str) -> WorkspaceState:
    state = _states.get(state_hash)
    if state is None:
        from e3.model.canonical import read_workspace_state

        data = repo.objects.read(state_hash)
        fields = read_workspace_state(data)  # e3 writes them so: no runtime to load
        if fields is not None:
            state = WorkspaceState(*fields)
        else:
            from e3.east import decode, type_equal
            from e3.model.types import WorkspaceStateType

            t, value = decode(data)
            if not type_equal(t, WorkspaceStateType):
                raise FormatError(f"workspace state object {state_hash} has the wrong type")
            state = WorkspaceState.from_east(value)
        with _lock:
            _states[state_hash] = state
    return state


def _store_state(repo: "Repository", state: WorkspaceState, durable: bool = True) -> str:
    """Write a WorkspaceState (canonical bytes, made without the East runtime) and remember it
    decoded, so the view of the commit that names it decodes nothing."""
    from e3.model.canonical import encode_workspace_state

    data = encode_workspace_state(state.package_name, state.package_version, state.package_hash, state.deployed_at, state.current_run_id)
    state_hash = repo.objects.write(data, durable=durable)
    with _lock:
        _states[state_hash] = state
    return state_hash


def _view_of(repo: "Repository", ws: str, commit: str, entries: dict[TreePath, str]) -> WorkspaceView:
    state_hash = entries.get(STATE_PATH)
    state = _load_state(repo, state_hash) if state_hash is not None else None
    datasets = {p: h for p, h in entries.items() if p != STATE_PATH}
    return WorkspaceView(ws, commit, state, state.package_hash if state else None, datasets, repo)


_blobs: dict[str, dict[bytes, str]] = {}
"""repository root -> (blob id -> the object hash it holds): blobs never change, so a re-walk reads only new ones."""
_BLOB_CACHE_MAX = 1 << 20


def read_entries(repo: "Repository", commit: str) -> dict[TreePath, str]:
    """The leaves (path -> object hash) of a workspace commit, like refs.read_state but reading each blob once per process.

    After another process changes a workspace, a reader walks the new tree
    again; with this cache it only reads the blobs of values it has not seen,
    so the re-walk costs a tree iteration, not a blob read per dataset.
    """
    from e3.storage.git_objects import tree_leaves

    blobs = _blobs.setdefault(str(repo.root), {})
    if len(blobs) > _BLOB_CACHE_MAX:
        blobs.clear()
    return tree_leaves(repo, commit, blobs)


def _cached(repo: "Repository", ws: str, commit: str) -> tuple[WorkspaceView, dict[TreePath, str]]:
    key = (str(repo.root), ws)
    hit = _views.get(key)
    if hit is not None and hit[0].commit == commit:
        return hit
    entries = read_entries(repo, commit)
    view = _view_of(repo, ws, commit, entries)
    with _lock:
        _views[key] = (view, entries)
    return view, entries


def _copy(view: WorkspaceView) -> WorkspaceView:
    # The cached view stays private: callers get their own datasets dict to change as they please.
    return replace(view, datasets=dict(view.datasets))


# ---------------------------------------------------------------- reading


def exists(repo: "Repository", ws: str) -> bool:
    return refs.read(repo, ref_name(ws)) is not None


def list_workspaces(repo: "Repository") -> list[str]:
    """Every workspace's name, a workspace whose ref is corrupt included: reading it says so."""
    return [name[len(REF_PREFIX) :] for name in refs.list_names(repo, REF_PREFIX)]


def read(repo: "Repository", ws: str) -> WorkspaceView:
    """The newest state of a workspace: one ref read, and one tree walk when it moved since the last read."""
    commit = refs.read(repo, ref_name(ws))
    if commit is None:
        raise WorkspaceNotFound(f"workspace {ws} does not exist", workspace=ws)
    return _copy(_cached(repo, ws, commit)[0])


def read_commit(repo: "Repository", ws: str, commit: str) -> WorkspaceView:
    """The workspace as recorded by one of its commits."""
    return _view_of(repo, ws, commit, read_entries(repo, commit))


def require_deployed(view: WorkspaceView) -> WorkspaceView:
    if view.state is None:
        raise WorkspaceNotDeployed(
            f"workspace {view.name} is not deployed (deploy a package with 'e3 workspace deploy REPO {view.name} PKG')", workspace=view.name
        )
    return view


# ---------------------------------------------------------------- changing


def transact(
    repo: "Repository",
    ws: str,
    fn: Callable[[WorkspaceView], "Changes | None"],
    message: "str | Callable[[WorkspaceView, dict[TreePath, str | None]], str]",
    *,
    _locked: bool = False,
) -> WorkspaceView:
    """Apply `fn(newest view)`'s changes as one commit; with e3.repo.workspace_writer, the only
    way datasets change.

    Under `locks/workspace-WS.lock`: read the newest view, call `fn`, which
    returns {path: hash or None} (None unassigns) or None to abort, write one
    commit whose tree differs from its parent's only on the changed paths, and
    move the ref with compare-and-swap. Changes that change nothing make no
    commit. Returns the resulting view. `message` may be a function of the view
    and the effective changes.
    """
    name = ref_name(ws)
    with contextlib.nullcontext() if _locked else workspace_lock(repo, ws, "dataset_write"):
        commit = refs.read(repo, name)
        if commit is None:
            raise WorkspaceNotFound(f"workspace {ws} does not exist", workspace=ws)
        change = _change(repo, ws, commit, fn, message)
        if change.commit is None:
            return _copy(change.view)
        return _copy(_move(repo, ws, change))


@dataclass
class _Change:
    """A commit `transact` made on `parent` (None: nothing changed) and the view it gives."""

    parent: str
    commit: str | None
    message: str
    view: WorkspaceView
    entries: dict[TreePath, str]


def _change(
    repo: "Repository", ws: str, commit: str, fn: Callable[[WorkspaceView], "Changes | None"],
    message: "str | Callable[[WorkspaceView, dict[TreePath, str | None]], str]", durable: bool = True,
) -> _Change:
    """Write the commit of `fn`'s changes on `commit` (a ref does not name it yet). With
    `durable` False the caller syncs the store before a ref names it."""
    view, entries = _cached(repo, ws, commit)
    effective = effective_changes(entries, fn(_copy(view)))
    if not effective:
        return _Change(commit, None, "", view, entries)
    text = message(view, effective) if callable(message) else message
    new_commit = write_commit(repo, commit, effective, text, durable)
    new_entries = dict(entries)
    for p, h in effective.items():
        if h is None:
            new_entries.pop(p, None)
        else:
            new_entries[p] = h
    return _Change(commit, new_commit, text, _view_of(repo, ws, new_commit, new_entries), new_entries)


def _move(repo: "Repository", ws: str, change: _Change) -> WorkspaceView:
    """Move the workspace's ref from the change's parent to its commit; the new view is cached."""
    try:
        refs.update(repo, ref_name(ws), change.commit, old=change.parent, message=change.message)
    except RefMoved:
        raise Conflict(f"workspace {ws} was changed by a writer that does not take its lock; try again") from None
    with _lock:
        _views[(str(repo.root), ws)] = (change.view, change.entries)
    return change.view


def effective_changes(entries: Mapping[TreePath, str], changes: "Changes | None") -> dict[TreePath, "str | None"]:
    """The changes that change something in a tree of `entries` (path -> hash); an invalid
    dataset path is refused."""
    effective = {} if changes is None else {tuple(p): h for p, h in changes.items() if entries.get(tuple(p)) != h}
    for path in effective:
        if not path or any(not part or "/" in part or "\0" in part or part in (".", "..") for part in path):
            raise UsageError(f"invalid dataset path {format_tree_path(path)!r}")
    return effective


def write_commit(repo: "Repository", parent: str, changes: Mapping[TreePath, "str | None"], message: str, durable: bool = True) -> str:
    """A commit on `parent` whose tree is the parent's with `changes` applied, rebuilding only the changed subtrees.

    The new blobs, trees and commit are built in Python and written together
    (one pack when there are many, see e3.storage.git_objects): a flush of `e3 start`
    would otherwise write two loose objects per task output.
    """
    from e3.storage.git_objects import BLOB, BLOB_MODE, COMMIT, TREE, TREE_MODE, NewObjects, commit_bytes

    new = NewObjects(repo)
    blobs: dict[str, bytes] = {}

    def blob(h: str) -> bytes:
        oid = blobs.get(h)
        if oid is None:
            oid = blobs[h] = new.add(BLOB, (h + "\n").encode())
        return oid

    def apply(base: bytes | None, sub: Mapping[TreePath, "str | None"]) -> bytes | None:
        edits: dict[bytes, tuple[int, bytes] | None] = {}
        deeper: dict[bytes, dict[TreePath, str | None]] = {}
        for path, h in sub.items():
            name = path[0].encode()
            if len(path) > 1:
                deeper.setdefault(name, {})[path[1:]] = h
            else:
                edits[name] = None if h is None else (BLOB_MODE, blob(h))
        if deeper:
            layout = new.layout(base) if base is not None else None
            for name, more in deeper.items():
                entry = layout.get(name) if layout is not None else None
                oid = apply(entry[1] if entry is not None and entry[0] == TREE_MODE else None, more)
                edits[name] = None if oid is None else (TREE_MODE, oid)
        return new.edit_tree(base, edits)

    parent_id = bytes.fromhex(parent)
    tree = apply(new.commit_tree(parent), changes) or new.add(TREE, b"")
    sig = refs.signature()
    commit = new.add(COMMIT, commit_bytes(tree, [parent_id], sig, sig, message))
    new.write(durable)
    return commit.hex()


def create(repo: "Repository", ws: str) -> str:
    """Make an empty, undeployed workspace; return its first commit."""
    name = ref_name(ws)
    commit = refs.write_state(repo, {}, None, f"create workspace {ws}")
    try:
        refs.update(repo, name, commit, old=refs.ZERO, message=f"create workspace {ws}")
    except RefMoved:
        raise WorkspaceExists(f"workspace {ws} already exists", workspace=ws) from None
    return commit


def remove(repo: "Repository", ws: str) -> None:
    """Delete a workspace and its task histories (objects stay until gc); refused while it runs."""
    name = ref_name(ws)
    with dataflow_guard(repo, ws, "removal"), workspace_lock(repo, ws, "removal"):
        if refs.read(repo, name) is None:
            raise WorkspaceNotFound(f"workspace {ws} does not exist", workspace=ws)
        for task_ref, _ in list(refs.list_refs(repo, f"refs/tasks/{ws}/")):
            refs.delete(repo, task_ref)
        refs.delete(repo, name)
        with _lock:
            _views.pop((str(repo.root), ws), None)


# ---------------------------------------------------------------- packages and deploy


def resolve_package(repo: "Repository", name: str, version: str | None) -> tuple[str, str]:
    """(version, package object hash) of NAME@VERSION, by e3.repo.package's rules (no version: the only one imported)."""
    from e3.repo import package

    found = package.resolve(repo, name, version)
    return found.version, found.package_hash


def parse_package_spec(spec: str) -> tuple[str, str | None]:
    """'name@1.0.0' -> ('name', '1.0.0'); 'name' -> ('name', None)."""
    from e3.repo import package

    return package.parse_spec(spec)


_null_bytes: dict[bytes, bytes] = {}


def null_value(t: Any) -> bytes:
    """The canonical bytes of the null a `null` dataset ref stands for: null of type `t` if it has one, else Null."""
    from e3.east import NullType, encode, type_key
    from e3.errors import TypeMismatch

    key = type_key(t)
    data = _null_bytes.get(key)
    if data is None:
        try:
            data = encode(None, t)
        except TypeMismatch:
            data = encode(None, NullType)
        _null_bytes[key] = data
    return data


def null_hash(repo: "Repository", t: Any, durable: bool = True) -> str:
    """Store the null value for a dataset of type `t`; return its hash."""
    return repo.objects.write(null_value(t), durable=durable)


def initial_entries(repo: "Repository", package: "Package", durable: bool = True) -> dict[TreePath, str]:
    """The dataset tree a fresh deployment of `package` starts with (its null values stored)."""
    specs = package.datasets()
    out: dict[TreePath, str] = {}
    for path, ref in package.refs.items():
        if ref.kind == "value" and ref.hash:
            out[path] = ref.hash
        elif ref.kind == "null" and path in specs:
            out[path] = null_hash(repo, specs[path].type, durable)
    return out


def deploy(repo: "Repository", ws: str, package_name: str, version: str | None = None, *, create_missing: bool = True) -> DeployReport:
    """Deploy NAME@VERSION into `ws` as one commit; refused while the workspace runs.

    A redeploy keeps every input value the user set (one that differs from the
    old package's initial value) whose path is still a writable dataset of the
    same type in the new package, and reports the others as dropped. Everything
    else, task outputs included, starts from the new package's initial refs.
    A workspace that does not exist is created, as in the original engine.
    """
    version, package_hash = resolve_package(repo, package_name, version)
    plan = _Deployment(repo, package_name, version, package_hash)
    with dataflow_guard(repo, ws, "deployment"), workspace_lock(repo, ws, "deployment"):
        if not exists(repo, ws):
            if not create_missing:
                raise WorkspaceNotFound(f"workspace {ws} does not exist", workspace=ws)
            create(repo, ws)
        view = transact(repo, ws, plan.change, plan.message, _locked=True)
    _remember(repo, view)
    return plan.report(view)


def import_zip(repo: "Repository", ws: str, zip_path: "str | BinaryIO") -> "tuple[ImportResult, DeployReport]":
    """Import a package zip and deploy it into `ws` (created if it does not exist), made durable together.

    The package's objects and commit, the workspace's first commit when it is
    created, and the deployment's objects and commit are all written first and
    made durable by one sync; only then do the package's ref and the
    workspace's move, in that order. A zip that fails a check or a workspace
    that runs leaves the repository as it was; a package of that name and
    version imported meanwhile with other contents leaves every ref as it was.
    """
    from e3.repo import package

    name = ref_name(ws)
    pid = running_pid(repo, ws)
    if pid is not None:  # before the zip is read: a refused import writes nothing (its locks are taken after)
        raise WorkspaceLocked(f"workspace {ws} is running (pid {pid or 'unknown'}); stop it first", workspace=ws)
    staged = package.stage_zip(repo, zip_path)
    checked = None if isinstance(staged, package.ImportResult) else staged.package
    plan = _Deployment(repo, staged.name, staged.version, staged.package_hash, checked, durable=False)
    with dataflow_guard(repo, ws, "deployment"), workspace_lock(repo, ws, "deployment"):
        head = refs.read(repo, name)
        created = None if head is not None else refs.write_state(repo, {}, None, f"create workspace {ws}", durable=False)
        change = _change(repo, ws, head or created, plan.change, plan.message, durable=False)
        repo.objects.sync()  # one syncfs: the package, the workspace's commits and their objects
        result = package.publish(repo, staged) if checked is not None else staged
        if created is not None:
            try:
                refs.update(repo, name, created, old=refs.ZERO, message=f"create workspace {ws}")
            except RefMoved:
                raise WorkspaceExists(f"workspace {ws} already exists", workspace=ws) from None
        view = change.view if change.commit is None else _move(repo, ws, change)
    _remember(repo, view)
    return result, plan.report(view)


class _Deployment:
    """What deploying one package changes in a workspace: its initial values, and the input
    values a redeploy keeps or drops.

    `checked` is the package as an import just checked it (its dataset types may be
    e3.model.canonical's): when it holds no null ref, a deployment into a workspace that has no
    package yet needs nothing decoded, so no East runtime; otherwise the package is read
    (and decoded once per process) from the repository.
    """

    def __init__(self, repo: "Repository", name: str, version: str, package_hash: str, checked: "Package | None" = None,
                 durable: bool = True):
        self.repo, self.name, self.version, self.package_hash, self.durable = repo, name, version, package_hash, durable
        if checked is not None and all(r.kind != "null" for r in checked.refs.values()):
            self.fresh = initial_entries(repo, checked)
        else:
            self.fresh = initial_entries(repo, load_package(repo, package_hash), durable)
        for path, h in self.fresh.items():
            if not repo.objects.exists(h):
                raise NotFound(f"package {name}@{version} is incomplete: object {h} of {format_tree_path(path)} is missing")
        self.kept: list[TreePath] = []
        self.dropped: list[TreePath] = []

    def change(self, view: WorkspaceView) -> dict[TreePath, str | None]:
        self.kept.clear()
        self.dropped.clear()
        target = dict(self.fresh)
        if view.package is not None:
            from e3.east import type_equal

            old_specs = view.package.datasets()
            old_initial = initial_entries(self.repo, view.package, self.durable)
            new_specs = load_package(self.repo, self.package_hash).datasets()
            for path, h in sorted(view.datasets.items()):
                spec = old_specs.get(path)
                if spec is None or not spec.writable or old_initial.get(path) == h:
                    continue
                new = new_specs.get(path)
                if new is not None and new.writable and type_equal(new.type, spec.type):
                    target[path] = h
                    self.kept.append(path)
                else:
                    self.dropped.append(path)
        now = datetime.now(timezone.utc)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # a DateTime holds milliseconds
        target[STATE_PATH] = _store_state(self.repo, WorkspaceState(self.name, self.version, self.package_hash, now), self.durable)
        out: dict[TreePath, str | None] = {p: None for p in view.datasets if p not in target}
        out.update(target)
        return out

    def message(self, view: WorkspaceView, changes) -> str:  # noqa: ANN001 - the effective changes
        text = f"deploy {self.name}@{self.version}"
        if self.dropped:
            text += "\n\ndropped: " + ", ".join(format_tree_path(p) for p in self.dropped)
        return text

    def report(self, view: WorkspaceView) -> DeployReport:
        return DeployReport(view.commit, self.name, self.version, self.package_hash, list(self.kept), list(self.dropped))


def _remember(repo: "Repository", view: WorkspaceView) -> None:
    """Cache the new tree for `e3 start` (see e3.repo.snapshot): the next run then reads no git."""
    from e3.repo import snapshot

    snapshot.remember(repo, snapshot.Snapshot(view.commit, view.package_hash, dict(view.datasets)))


def dataset_hash(repo: "Repository", ws: str, path: TreePath) -> str | None:
    """The object hash at `path` in the workspace's newest commit when its cached tree
    (e3.repo.snapshot) answers: deployed, and a value at that path. One ref read, and one
    cache read when the commit moved: no git object and no package decoded, so no East
    runtime. None otherwise; `read` then says what is wrong, in its words."""
    from e3.repo import snapshot

    if not snapshot.plain_key(ws):
        return None
    commit = refs.read(repo, ref_name(ws))
    if commit is None:
        return None
    key = (str(repo.root), ws)
    tree = _trees.get(key)
    if tree is None or tree.commit != commit:
        tree = snapshot.load_view(repo, commit)
        if tree is None:
            return None
        with _lock:
            _trees[key] = tree
    return tree.datasets.get(path) if tree.package_hash is not None else None


def read_snapshot(repo: "Repository", ws: str) -> "Snapshot":
    """The workspace's newest dataset tree, from e3.repo.snapshot when its commit is cached
    (one ref read), else read like `read` (and cached); raises like `read` for an unknown workspace."""
    from e3 import collector
    from e3.repo import snapshot

    with collector.paused():  # a path and a hash per dataset, none in a reference cycle
        commit = refs.read(repo, f"refs/workspaces/{ws}") if snapshot.plain_key(ws) else None
        if commit is not None:
            cached = snapshot.load_view(repo, commit)
            if cached is not None:
                return cached
        v = read(repo, ws)
        snap = snapshot.Snapshot(v.commit, v.package_hash, dict(v.datasets))
        snapshot.remember(repo, snap)
        return snap


# ---------------------------------------------------------------- datasets


def set_dataset(
    repo: "Repository",
    ws: str,
    path: TreePath,
    value_hash: str | None,
    *,
    check_type: bool = True,
    value_type: Any = None,
    value_sketch: str | None = None,
    force: bool = False,
) -> WorkspaceView:
    """Point one dataset at a stored value (None unassigns), as one commit.

    The dataset must exist in the deployed package and be writable (inputs),
    unless `force`. With `check_type`, the value's Beast2 header must name the
    dataset's type exactly; a caller that knows the value's type passes it as
    `value_type` instead, or, having checked the value without the East runtime,
    as `value_sketch`, its type as e3.beast2_type.type_text prints it: when the
    package read without the runtime (`sketched_spec`) gives the dataset that
    type, nothing loads the runtime; otherwise the value's type is read from its
    header as without it. The type is compared again under the lock, so a
    deploy that changes the dataset's type meanwhile is not overwritten by a
    value of the old type.
    """
    path = tuple(path)
    if value_hash is not None:
        if not repo.objects.exists(value_hash):
            raise ObjectNotFound(f"object {value_hash} not found", hash=value_hash)
    if value_hash is None or not check_type or value_type is not None:
        value_sketch = None
    found_type = value_type
    if value_hash is not None and check_type and value_type is None and value_sketch is None:
        from e3.east import type_of_stream

        with repo.objects.open(value_hash) as f:
            found_type = type_of_stream(f)

    def change(view: WorkspaceView):
        nonlocal found_type
        if value_sketch is not None:
            spec = sketched_spec(view, path)
            if spec is not None and (spec.writable or force) and spec.type.sketch() == value_sketch:
                return {path: value_hash}
        from e3.east import format_type, type_equal, type_of_stream
        from e3.errors import TypeMismatch

        if value_hash is not None and check_type and found_type is None:
            with repo.objects.open(value_hash) as f:
                found_type = type_of_stream(f)
        spec = dataset_spec(view, path)
        if not spec.writable and not force:
            raise DatasetNotWritable(f"{ws}{format_tree_path(path)} is not writable (it is computed by a task)")
        if value_hash is not None and found_type is not None and not type_equal(spec.type, found_type):
            raise TypeMismatch(f"{ws}{format_tree_path(path)} has type {format_type(spec.type)}, value has type {format_type(found_type)}")
        return {path: value_hash}

    verb = "unset" if value_hash is None else "set"
    view = transact(repo, ws, change, f"{verb} {format_tree_path(path)}")
    _remember(repo, view)
    return view


def dataset_spec(view: WorkspaceView, path: TreePath):
    """The DatasetSpec of `path` in the deployed package, or a one-line error naming the problem."""
    require_deployed(view)
    spec = view.package.datasets().get(tuple(path))
    if spec is None:
        shown = f"{view.name}{format_tree_path(tuple(path))}"
        if is_tree(view.package.structure, tuple(path)):
            raise DatasetNotFound(f"{shown} is a tree, not a dataset", workspace=view.name, path=format_tree_path(tuple(path)))
        raise DatasetNotFound(f"dataset {shown} does not exist", workspace=view.name, path=format_tree_path(tuple(path)))
    return spec


def is_tree(structure, path: TreePath) -> bool:
    node = structure
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, dict)


# ---------------------------------------------------------------- history


def history(repo: "Repository", ws: str, rev: str | None = None) -> Iterator[refs.Entry]:
    """The workspace's commits, newest first (first-parent history)."""
    start = resolve(repo, ws, rev) if rev else _head(repo, ws)
    return refs.history(repo, start)


def diff(repo: "Repository", ws: str, a: str | None = None, b: str | None = None) -> list[DatasetChange]:
    """Datasets that differ between revisions `a` (default: the previous commit) and `b` (default: now)."""
    new = resolve(repo, ws, b or "")
    old = resolve(repo, ws, a) if a else parent(repo, new)
    return diff_commits(repo, old, new)


def diff_commits(repo: "Repository", old: str | None, new: str) -> list[DatasetChange]:
    """Datasets that differ between two workspace commits (`old` None: the empty tree)."""
    before = read_entries(repo, old) if old else {}
    after = read_entries(repo, new)
    out = []
    for path in sorted(set(before) | set(after)):
        if path == STATE_PATH:
            continue
        if before.get(path) != after.get(path):
            out.append(DatasetChange(path, before.get(path), after.get(path)))
    return out


def state_at(repo: "Repository", commit: str) -> WorkspaceState | None:
    h = read_entries(repo, commit).get(STATE_PATH)
    return None if h is None else _load_state(repo, h)


def reset(repo: "Repository", ws: str, rev: str) -> tuple[WorkspaceView, list[DatasetChange]]:
    """Put back the dataset tree (and deployment) of revision `rev`, as a new commit on top.

    History is never rewritten: the reset is itself a commit, so it can be
    undone with another reset. A reset that changes the deployed package is
    refused while the workspace runs, like deploy.
    """
    target = resolve(repo, ws, rev)
    wanted = read_entries(repo, target)
    short = target[:12]

    def change(view: WorkspaceView):
        out: dict[TreePath, str | None] = {p: None for p in view.datasets if p not in wanted}
        out.update(wanted)
        out.setdefault(STATE_PATH, None)
        return out

    head = _head(repo, ws)
    deployment_changes = read_entries(repo, head).get(STATE_PATH) != wanted.get(STATE_PATH)
    changes = diff_commits(repo, head, target)
    if deployment_changes:
        with dataflow_guard(repo, ws, "deployment"), workspace_lock(repo, ws, "deployment"):
            view = transact(repo, ws, change, f"reset to {short}", _locked=True)
    else:
        view = transact(repo, ws, change, f"reset to {short}")
    return view, changes


def _head(repo: "Repository", ws: str) -> str:
    commit = refs.read(repo, ref_name(ws))
    if commit is None:
        raise WorkspaceNotFound(f"workspace {ws} does not exist", workspace=ws)
    return commit


def parent(repo: "Repository", commit: str) -> str | None:
    import pygit2

    c = repo.git[pygit2.Oid(hex=commit)]
    return str(c.parents[0].id) if c.parents else None


def _belongs(repo: "Repository", ws: str, commit: str) -> bool:
    """True if `commit` is in the workspace's history or its reflog (so a reset can undo a reset)."""
    import pygit2

    head = _head(repo, ws)
    git = repo.git
    if commit == head or git.descendant_of(pygit2.Oid(hex=head), pygit2.Oid(hex=commit)):
        return True
    return any(str(e.oid_new) == commit for e in git.references.get(ref_name(ws)).log())


def resolve(repo: "Repository", ws: str, rev: str) -> str:
    """A commit of `ws` named by a revision (the grammar of e3-rev-parse(1), see e3.repo.revision).

    Relative to the workspace: empty or `HEAD` is now, and a bare suffix
    (`~2`, `^`, `@{1}`) applies to it. The commit must be in the workspace's
    history or its reflog: `dev~1`, `dev@{3}`, `3f2a9c1`.
    """
    from e3.repo import revision

    head = _head(repo, ws)  # an unknown workspace is named as such, not as a bad revision
    text = rev.strip()
    if text in ("", "HEAD"):
        return head
    if text.startswith("HEAD") and text[4:5] in ("~", "^", "@"):
        text = ws + text[4:]
    elif text[0] in "~^@":
        text = ws + text
    try:
        found = revision.resolve_revision(repo, text)
    except NotFound as e:
        if "revision" in str(e):
            raise
        raise NotFound(f"bad revision {rev!r}: {e}") from None
    if found.kind != "commit":
        raise NotFound(f"revision {rev!r} is not a commit")
    if not _belongs(repo, ws, found.hash):
        raise NotFound(f"revision {rev!r} is not in the history of workspace {ws}")
    return found.hash


# ---------------------------------------------------------------- locks


def running_pid(repo: "Repository", ws: str) -> int | None:
    """The pid of the `e3 start` running `ws`, 0 if it runs but its pid is unknown, or None if it is not running."""
    from e3.storage import locks

    name = f"dataflow-{check_name(ws)}"
    if not locks.is_held(repo, name):
        return None
    who = locks.holder(repo, name)
    return who.pid if who else 0


BUSY_WAIT = 60.0
"""How long a deploy, reset or remove waits for another one (not for a run, which it refuses at once)."""


@contextlib.contextmanager
def dataflow_guard(repo: "Repository", ws: str, operation: str):
    """Hold `locks/dataflow-WS.lock` for a deploy, reset or remove, so no run starts meanwhile.

    Refused at once while `e3 start` runs the workspace; another deploy, reset
    or remove holds it only for a moment, so that one is waited for.
    """
    import time

    from e3.storage.locks import Lock, LockHeld

    lock = Lock(repo, f"dataflow-{check_name(ws)}", operation)
    deadline = time.monotonic() + BUSY_WAIT
    while True:
        try:
            lock.acquire(wait=False)
            break
        except LockHeld as e:
            who = e.holder
            pid = who.pid if who else "unknown"
            if who is None or who.operation not in ("deployment", "removal"):
                raise WorkspaceLocked(f"workspace {ws} is running (pid {pid}); stop it first", workspace=ws) from None
            if time.monotonic() > deadline:
                raise WorkspaceLocked(f"workspace {ws} is busy ({who.operation} by pid {pid}); try again", workspace=ws) from None
            time.sleep(0.02)
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def workspace_lock(repo: "Repository", ws: str, operation: str):
    """Hold `locks/workspace-WS.lock` for one read-modify-commit; waits for the current holder."""
    from e3.storage.locks import Lock

    with Lock(repo, f"workspace-{check_name(ws)}", operation):
        yield


# ---------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportReport:
    name: str
    version: str
    package_hash: str
    object_count: int


def current_package(repo: "Repository", view: WorkspaceView) -> "Package":
    """The deployed package with its initial refs replaced by the workspace's current values."""
    require_deployed(view)
    return _with_current_refs(view, view.package, lambda t: _hash_of(null_value(t)))


def _with_current_refs(view: WorkspaceView, pkg: "Package", null_hash_of: Callable[[Any], "str | None"]) -> "Package | None":
    """`pkg` with the refs `view` holds now; `null_hash_of(type)` is the hash of what a null ref
    stands for (None: unknown, which gives None here)."""
    from e3.model.package import UNASSIGNED, DatasetRef, Package

    refs_now = {}
    for path, spec in pkg.datasets().items():
        h = view.datasets.get(path)
        if h is None:
            refs_now[path] = UNASSIGNED
            continue
        null = null_hash_of(spec.type)
        if null is None:
            return None
        refs_now[path] = DatasetRef("null") if h == null else DatasetRef("value", h)
    return Package(dict(pkg.tasks), pkg.structure, refs_now)


def exported_package(repo: "Repository", view: WorkspaceView, runtime: bool = False) -> "tuple[Package, bytes, list[str]]":
    """What `export` writes of a deployed workspace: the current package (see current_package),
    its bytes, and the command IR of each of its tasks.

    Read and written without the East runtime (e3.model.canonical) when the deployed package
    and its tasks are in e3's canonical encoding: the same bytes as the runtime's, which makes
    them otherwise (and with `runtime`, always).
    """
    made = None if runtime else _exported_canonically(repo, view)
    if made is not None:
        return made
    from e3.model.package import encode_package
    from e3.model.task import load_task

    pkg = current_package(repo, view)
    return pkg, encode_package(pkg), [load_task(repo.objects, h).command_ir for h in pkg.tasks.values()]


def _exported_canonically(repo: "Repository", view: WorkspaceView) -> "tuple[Package, bytes, list[str]] | None":
    from e3.model import canonical

    deployed = canonical_package(view)
    if deployed is None:
        return None
    nulls: dict[bytes, str] = {}

    def null_hash_of(t: Any) -> str | None:
        data = canonical.null_value(t)
        if data is None:
            return None
        if data not in nulls:
            nulls[data] = _hash_of(data)
        return nulls[data]

    pkg = _with_current_refs(view, deployed, null_hash_of)
    data = canonical.encode_package(pkg) if pkg is not None else None
    if data is None:
        return None
    commands = []
    for task_hash in pkg.tasks.values():
        try:
            task = canonical.read_task(repo.objects.read(task_hash))
        except E3Error:
            return None  # missing or damaged: the runtime's reading says so
        if task is None:
            return None
        commands.append(task.command_ir)
    return pkg, data, commands


def _hash_of(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def export(repo: "Repository", ws: str, zip_path: "str | BinaryIO", name: str | None = None, version: str | None = None, *,
           runtime: bool = False) -> ExportReport:
    """Write the workspace as a package zip (the package zip layout) carrying its current values.

    The package keeps the deployed package's tasks and structure; its initial
    refs are the workspace's values now. Name defaults to the deployed
    package's, version to `<deployed version>-<first 8 hex of the new package
    object's hash>`. A zip path is written to `ZIP.partial` and renamed; a binary file is written into.
    `runtime`: make the package object with the East runtime (see exported_package).
    """
    view = require_deployed(read(repo, ws))
    # The new package object goes into the zip only: exporting writes nothing into the
    # repository, so it works on one this process cannot write.
    pkg, package_bytes, commands = exported_package(repo, view, runtime)
    package_hash = _hash_of(package_bytes)
    name = refs.check_component("package", name or view.state.package_name)
    version = refs.check_component("version", version or f"{view.state.package_version}-{package_hash[:8]}")
    objects = {package_hash, *pkg.tasks.values(), *commands}
    objects.update(r.hash for r in pkg.refs.values() if r.kind == "value" and r.hash)
    from e3.repo.package import zip_objects
    from e3.repo.package_zip import write_package_zip

    count = write_package_zip(zip_path, name, version, package_hash, zip_objects(repo, sorted(objects), {package_hash: package_bytes}))
    return ExportReport(name, version, package_hash, count)
