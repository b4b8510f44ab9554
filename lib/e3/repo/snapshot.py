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
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from e3.storage import refs
from e3.model.paths import TreePath

if TYPE_CHECKING:
    from e3.exec.plan import Graph
    from e3.model.task import TaskObject
    from e3.storage.repository import Repository

FORMAT = 1


@dataclass(frozen=True)
class Snapshot:
    commit: str
    package_hash: str | None
    datasets: dict[TreePath, str]


def view(repo: "Repository", ws: str) -> Snapshot:
    """The workspace's newest dataset tree; raises like e3.repo.workspace.read for an unknown workspace."""
    commit = refs.read(repo, f"refs/workspaces/{ws}") if _plain(ws) else None
    if commit is not None:
        cached = _load(repo, "views", commit)
        if cached is not None and cached.get("format") == FORMAT:
            datasets = {tuple(k.split("/")): v for k, v in cached["datasets"].items()}
            return Snapshot(commit, cached["package"], datasets)
    from e3.repo import workspace

    v = workspace.read(repo, ws)
    snap = Snapshot(v.commit, v.package_hash, dict(v.datasets))
    remember(repo, snap)
    return snap


def remember(repo: "Repository", snap: Snapshot) -> None:
    """Cache the dataset tree of one commit (`e3 workspace deploy` and `e3 set` do, so that the
    next run reads no git)."""
    datasets = {"/".join(p): h for p, h in snap.datasets.items()}
    _store(repo, "views", snap.commit, {"format": FORMAT, "package": snap.package_hash, "datasets": datasets})


def graph(repo: "Repository", package_hash: str) -> "Graph":
    """The task graph of a package object, from the cache or built (and cached) from the store."""
    from e3.exec import plan
    from e3.model.task import TaskObject

    g = plan._cache.get(package_hash)
    if g is not None:
        return g
    cached = _load(repo, "plans", package_hash)
    if cached is not None and cached.get("format") == FORMAT:
        tasks = {
            name: (h, TaskObject(ir, tuple(tuple(p) for p in ins), tuple(out)))
            for name, h, ir, ins, out in cached["tasks"]
        }
        g = plan.build_from_tasks(tasks)
    else:
        from e3.model.package import load_package

        package = load_package(repo.objects, package_hash)
        tasks = {name: (h, plan.load_task(repo.objects, h)) for name, h in package.tasks.items()}
        g = plan.build_from_tasks(tasks)
        remember_tasks(repo, package_hash, tasks)
    plan._cache[package_hash] = g
    return g


def remember_tasks(repo: "Repository", package_hash: str, tasks: "dict[str, tuple[str, TaskObject]]") -> None:
    """Cache a package's tasks (name -> (task hash, task object)) for `graph`; `e3 package import`
    calls this while it has them decoded anyway, so a first run needs no East runtime to plan."""
    rows = [[name, h, t.command_ir, [list(p) for p in t.inputs], list(t.output)] for name, (h, t) in sorted(tasks.items())]
    _store(repo, "plans", package_hash, {"format": FORMAT, "tasks": rows})


def _plain(ws: str) -> bool:
    return bool(ws) and "/" not in ws and not ws.startswith(".") and ".." not in ws


def _load(repo: "Repository", kind: str, key: str) -> dict | None:
    import cbor2

    try:
        with open(repo.path("cache", kind, key + ".cbor"), "rb") as f:
            data = cbor2.load(f)
    except (OSError, ValueError, cbor2.CBORDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _store(repo: "Repository", kind: str, key: str, value: dict) -> None:
    import cbor2

    d = repo.path("cache", kind)
    path = os.path.join(d, key + ".cbor")
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(d, exist_ok=True)
        with open(tmp, "wb") as f:
            cbor2.dump(value, f)
        os.replace(tmp, path)
    except OSError:
        try:  # a cache that cannot be written is only slower, never wrong
            os.unlink(tmp)
        except OSError:
            pass
