"""What a dataflow run needs to know, cached so that a run with nothing to do is cheap.

A no-op `e3 start` must answer "is every task up to date?" from the
workspace's dataset tree, the package's task graph and the memo. Reading the
tree through git and decoding the package and every task object through the
East runtime costs more than the whole answer, so both are cached in
`.e3/cache/`, keyed by what makes them immutable:

    cache/views/<commit id>.cbor     the dataset tree recorded by one workspace commit
    cache/plans/<package hash>.cbor  the task graph of one package object

A key names exactly one content, so an entry is never stale; a missing or
unreadable entry is rebuilt from the repository. The directory is derived
data: deleting it loses nothing. Writes are atomic (tmp + rename) and not
fsync'd: after a crash an entry is either whole or absent.

An entry feeds tasks (the paths of their inputs, the hashes of the datasets)
but is named by its key, not by its bytes, so it ends with the SHA-256 of its
CBOR body (as git's index ends with its checksum): an entry whose bytes
changed on disk fails the check, is never used, and is rebuilt like a missing
one (e3-fsck lists it).

`load_entry` and `store_entry` read and write any such entry (e3.repo.memo_index
keeps `cache/memo/` with them). This module only keeps the entries; the readers that fall back to the
repository are e3.repo.workspace.read_snapshot and e3.exec.plan.graph_of, and
the writers are the workspace's and the package's own commits. So it imports
neither, and neither needs to be told about it through anything but a call.
"""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from e3.model.paths import TreePath

if TYPE_CHECKING:
    from e3.model.task import TaskObject
    from e3.storage.repository import Repository

FORMAT = 2
"""Of a view."""
PLAN_FORMAT = 3
"""Of a plan: each path and command once, tasks name them by position; the graph, once e3.exec.plan built it."""
DIGEST_SIZE = 32
"""The SHA-256 of the body that ends every entry."""


@dataclass(frozen=True)
class Snapshot:
    commit: str
    package_hash: str | None
    datasets: dict[TreePath, str]


def load_view(repo: "Repository", commit: str) -> Snapshot | None:
    """The dataset tree one workspace commit recorded, if it is cached."""
    cached = load_entry(repo, "views", commit)
    if cached is None or cached.get("format") != FORMAT:
        return None
    datasets = {tuple(k.split("/")): v for k, v in cached["datasets"].items()}
    return Snapshot(commit, cached["package"], datasets)


def remember(repo: "Repository", snap: Snapshot) -> None:
    """Cache the dataset tree of one commit (`e3 workspace deploy` and `e3 set` do, so that the
    next run reads no git)."""
    datasets = {"/".join(p): h for p, h in snap.datasets.items()}
    store_entry(repo, "views", snap.commit, {"format": FORMAT, "package": snap.package_hash, "datasets": datasets})


@dataclass(frozen=True)
class CachedPlan:
    """A package's tasks as cached, and its graph if e3.exec.plan stored it with them."""

    tasks: "list[tuple[str, str, TaskObject]]"
    """(name, task hash, task object), in name order."""
    order: list[int] | None
    """Positions in `tasks`, in dataflow order."""
    upstream: list[list[int]] | None
    """For each task, the positions of the tasks whose outputs it reads."""


def load_plan(repo: "Repository", package_hash: str) -> CachedPlan | None:
    """A package's tasks, and their graph if it was stored, if they are cached."""
    from e3.model.task import TaskObject

    cached = load_entry(repo, "plans", package_hash)
    if cached is None or cached.get("format") != PLAN_FORMAT:
        return None
    try:
        # Each path is made once: a task's output is the same tuple as its readers' input. Its
        # names are not interned: at 100,000 tasks that took longer than decoding them.
        paths = [tuple(p) for p in cached["paths"]]
        irs = [sys.intern(ir) for ir in cached["irs"]]
        tasks = [(name, h, TaskObject(irs[ir], tuple([paths[i] for i in ins]), paths[out])) for name, h, ir, ins, out in cached["tasks"]]
        graph = cached.get("graph")
        if graph is None:
            return CachedPlan(tasks, None, None)
        return CachedPlan(tasks, graph["order"], graph["upstream"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # whole but not of this shape (another e3's): rebuilt like a missing one


def remember_tasks(
    repo: "Repository",
    package_hash: str,
    tasks: "dict[str, tuple[str, TaskObject]]",
    order: list[int] | None = None,
    upstream: list[list[int]] | None = None,
) -> None:
    """Cache a package's tasks (name -> (task hash, task object)) for e3.exec.plan.graph_of; `e3 package import`
    calls this while it has them decoded anyway, so a first run needs no East runtime to plan.
    e3.exec.plan adds the graph it built from them (`order` and `upstream` as in CachedPlan)."""
    paths: dict[tuple[str, ...], int] = {}
    irs: dict[str, int] = {}

    def at(p: tuple[str, ...]) -> int:
        return paths.setdefault(tuple(p), len(paths))

    rows = [
        [name, h, irs.setdefault(t.command_ir, len(irs)), [at(p) for p in t.inputs], at(t.output)]
        for name, (h, t) in sorted(tasks.items())
    ]
    value: dict = {"format": PLAN_FORMAT, "paths": [list(p) for p in paths], "irs": list(irs), "tasks": rows}
    if order is not None and upstream is not None:
        value["graph"] = {"order": order, "upstream": upstream}
    store_entry(repo, "plans", package_hash, value)


def plain_key(name: str) -> bool:
    """Can a name (a workspace's) be an entry's key as it is: one file name, never a hidden one?"""
    return bool(name) and "/" not in name and not name.startswith(".") and ".." not in name


def load_entry(repo: "Repository", kind: str, key: str) -> dict | None:
    """The contents of `cache/<kind>/<key>.cbor`, or None if it is missing or fails its checksum."""
    try:
        with open(repo.path("cache", kind, key + ".cbor"), "rb") as f:
            return decode_entry(f.read())
    except OSError:
        return None


def decode_entry(data: bytes) -> dict | None:
    """A cache entry's contents, or None if its checksum fails or it does not decode."""
    import cbor2

    body, digest = data[:-DIGEST_SIZE], data[-DIGEST_SIZE:]
    if len(data) <= DIGEST_SIZE or hashlib.sha256(body).digest() != digest:
        return None
    try:
        value = cbor2.loads(body)
    except (ValueError, cbor2.CBORDecodeError):
        return None
    return value if isinstance(value, dict) else None


def store_entry(repo: "Repository", kind: str, key: str, value: dict) -> None:
    """Write `cache/<kind>/<key>.cbor` atomically, with its checksum; a failure only loses the entry."""
    import cbor2

    d = repo.path("cache", kind)
    path = os.path.join(d, key + ".cbor")
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(d, exist_ok=True)
        body = cbor2.dumps(value)
        with open(tmp, "wb") as f:
            f.write(body + hashlib.sha256(body).digest())
        os.replace(tmp, path)
    except OSError:
        try:  # a cache that cannot be written is only slower, never wrong
            os.unlink(tmp)
        except OSError:
            pass
