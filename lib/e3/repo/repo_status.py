"""A repository at a glance: objects and sizes, refs, packages, workspaces, queue, executions, locks held.

Everything is read from the files as they are (no lock is taken), so status is
safe and cheap beside a running `e3 start`. Only workspace states and running
execution records are decoded; the rest comes from directory listings.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from e3.storage import refs
from e3.errors import E3Error

if TYPE_CHECKING:
    from e3.storage.locks import LockHolder
    from e3.storage.repository import Repository

_GIT_LOOSE = re.compile(r"[0-9a-f]{38}")


@dataclass
class Workspace:
    name: str
    commit: str
    package: str | None  # "NAME@VERSION" once deployed
    datasets: int


@dataclass
class Status:
    root: str
    objects: int = 0
    object_bytes: int = 0
    git_loose: int = 0
    git_loose_bytes: int = 0
    git_packed: int = 0
    git_pack_bytes: int = 0
    refs: int = 0
    packages: list[str] = field(default_factory=list)
    workspaces: list[Workspace] = field(default_factory=list)
    task_histories: int = 0
    queue: dict[str, tuple[int, int]] = field(default_factory=dict)
    """runner -> (pending, claimed)."""
    executions: dict[str, int] = field(default_factory=dict)
    """kind of newest record (success, failed, error, running, dead) -> count of task ids."""
    running: list[str] = field(default_factory=list)
    """Task ids whose newest record says running and whose process is alive."""
    tmp_files: int = 0


def status(repo: "Repository") -> Status:
    st = Status(str(repo.root))
    _objects(repo, st)
    for name, commit in refs.list_refs(repo):
        st.refs += 1
        if name.startswith("refs/packages/"):
            pkg, _, version = name[len("refs/packages/"):].rpartition("/")
            st.packages.append(f"{pkg}@{version}")
        elif name.startswith("refs/workspaces/"):
            st.workspaces.append(_workspace(repo, name[len("refs/workspaces/"):], commit))
        elif name.startswith("refs/tasks/"):
            st.task_histories += 1
    _queue(repo, st)
    _executions(repo, st)
    try:
        st.tmp_files = sum(1 for e in os.scandir(repo.path("tmp")) if e.is_file())
    except FileNotFoundError:
        pass
    return st


def _objects(repo: "Repository", st: Status) -> None:
    try:
        buckets = list(os.scandir(repo.path("objects")))
    except FileNotFoundError:
        return
    for b in buckets:
        if b.name == "pack" and b.is_dir():
            for e in os.scandir(b.path):
                if e.name.endswith(".pack"):
                    st.git_pack_bytes += _size(e)
                elif e.name.endswith(".idx"):
                    st.git_packed += _idx_count(e.path)
            continue
        if len(b.name) != 2 or not b.is_dir():
            continue
        for e in os.scandir(b.path):
            n = e.name
            if n.endswith(".beast2") and len(n) == 69:
                st.objects += 1
                st.object_bytes += _size(e)
            elif len(n) == 38 and _GIT_LOOSE.fullmatch(n):
                st.git_loose += 1
                st.git_loose_bytes += _size(e)


def _size(e: os.DirEntry) -> int:
    try:
        return e.stat().st_size
    except FileNotFoundError:
        return 0


def _idx_count(path: str) -> int:
    """Objects in a pack, from its index (v2: the last fan-out entry)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8 + 256 * 4)
    except OSError:
        return 0
    if head[:4] == b"\xfftOc" and len(head) == 8 + 1024:
        return int.from_bytes(head[-4:], "big")
    return int.from_bytes(head[1020:1024], "big") if len(head) >= 1024 else 0


def _workspace(repo: "Repository", name: str, commit: str) -> Workspace:
    package = None
    datasets = 0
    try:
        state = refs.read_state(repo, commit)
    except (E3Error, KeyError, ValueError):
        return Workspace(name, commit, None, 0)
    for path, h in state.items():
        if path == (".workspace",):
            package = _deployed(repo, h)
        else:
            datasets += 1
    return Workspace(name, commit, package, datasets)


def _deployed(repo: "Repository", h: str) -> str | None:
    from e3.east import decode
    from e3.model.task import _decode_as
    from e3.model.types import WorkspaceStateType

    try:
        _, value = _decode_as(repo.objects.read(h), WorkspaceStateType, "workspace state", decode)
        return f"{value['packageName']}@{value['packageVersion']}"
    except (E3Error, KeyError):
        return "?"


def _queue(repo: "Repository", st: Status) -> None:
    try:
        from e3.storage import queue
    except ImportError:  # the queue is optional for status
        return
    try:
        st.queue = queue.counts(repo)
    except (E3Error, OSError):
        st.queue = {}


def _executions(repo: "Repository", st: Status) -> None:
    from e3.storage import records

    try:
        names = os.listdir(repo.path("tasks"))
    except FileNotFoundError:
        return
    for task_id in names:
        try:
            s = records.summary(repo, task_id)
        except (E3Error, OSError):
            s = None
        if s is None:
            continue
        kind = s.kind
        if kind == "running":
            kind = "running" if _alive(repo, s) else "dead"
            if kind == "running":
                st.running.append(task_id)
        st.executions[kind] = st.executions.get(kind, 0) + 1


def _alive(repo: "Repository", s) -> bool:  # noqa: ANN001 - an e3.storage.records.Summary
    from e3.storage import records
    from e3.process import Holder

    try:
        r = records.read(repo, s)
    except E3Error:
        return False
    if r.pid is None:
        return False
    return Holder(r.pid, r.pid_start_time or 0, r.boot_id or "").alive()


@dataclass(frozen=True)
class HeldLock:
    name: str
    holder: "LockHolder | None"
    """Who holds it, as the holder wrote it (None if it wrote nothing readable)."""


def held_locks(repo: "Repository") -> list[HeldLock]:
    """The repository's locks held right now (a running start, a deploy, a gc), by name."""
    from e3.storage import locks

    try:
        names = sorted(os.listdir(repo.path("locks")))
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        if not n.endswith(".lock"):
            continue
        try:
            name = locks.check_name(n[: -len(".lock")])
            if locks.is_held(repo, name):
                out.append(HeldLock(name, locks.holder(repo, name)))
        except Exception:  # noqa: BLE001 - a stray file in locks/ is not a reason to fail
            continue
    return out
