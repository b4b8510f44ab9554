"""The fixpoint entry: a workspace commit on which a whole run found every task cached.

A no-op `e3 start` plans the package, reads the dataset tree, computes every
task's id and asks the memo for each: at 100,000 tasks that is most of its
time, to learn what the last no-op run already learnt. When a run of every
task (no --filter, no --force) found each one cached and committed nothing,
it keeps what it found in `cache/fixpoint/<WS>.cbor` (a checksummed entry of
e3.repo.snapshot): the commit, the package, each task's name, task id and
output, and the stat of `tasks/` the memo answered under (e3.repo.memo_index,
with its racily-clean rule: kept only if `tasks/` last changed strictly before
the run began reading it).

The next run trusts it while nothing it rests on moved: the workspace's ref is
still that commit (so every input and the package are the same), and `tasks/`
has that stat (so no record changed). Like the memo, it replaces the reading,
not the check of the bytes: each output is still stat'd, and a run that finds
one lost, or a pending queue entry of the workspace, takes the long way. A
missing, damaged or foreign entry is read as none; deleting it loses nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from e3.storage.repository import Repository

FORMAT = 1
KIND = "fixpoint"
_DIGEST = 32
"""Bytes of a task id or an output hash, as stored."""


@dataclass(frozen=True)
class Fixpoint:
    commit: str
    package_hash: str
    names: list[str]
    """Every task, in the order the run settled them (the dataflow's)."""
    task_ids: list[str]
    outputs: list[str]


def load(repo: "Repository", ws: str, commit: str) -> Fixpoint | None:
    """The fixpoint kept for `commit` of workspace `ws`, if it still holds; else None."""
    from e3.repo import memo_index, snapshot

    if not snapshot.plain_key(ws):
        return None
    cached = snapshot.load_entry(repo, KIND, ws)
    if cached is None or cached.get("format") != FORMAT or cached.get("commit") != commit:
        return None
    try:
        package, names, ids, outputs, tasks = (cached[k] for k in ("package", "names", "ids", "outputs", "tasks"))
        n = len(names)
        if not (
            isinstance(package, str)
            and isinstance(ids, bytes) and isinstance(outputs, bytes)
            and len(ids) == len(outputs) == n * _DIGEST
            and all(isinstance(name, str) for name in names)
        ):
            return None
    except (KeyError, TypeError):
        return None
    if tasks != memo_index.tasks_signature(repo):
        return None  # a record changed since: the memo decides again
    return Fixpoint(commit, package, names, _hexes(ids), _hexes(outputs))


def store(repo: "Repository", ws: str, fixpoint: Fixpoint, tasks: list[int]) -> None:
    """Keep `fixpoint`, found while `tasks/` had the stat `tasks` (MemoIndex.unchanged_signature)."""
    from e3.repo import snapshot

    if not snapshot.plain_key(ws):
        return
    snapshot.store_entry(repo, KIND, ws, {
        "format": FORMAT,
        "commit": fixpoint.commit,
        "package": fixpoint.package_hash,
        "tasks": tasks,
        "names": fixpoint.names,
        "ids": bytes.fromhex("".join(fixpoint.task_ids)),
        "outputs": bytes.fromhex("".join(fixpoint.outputs)),
    })


def _hexes(data: bytes) -> list[str]:
    text = data.hex()
    step = 2 * _DIGEST
    return [text[i : i + step] for i in range(0, len(text), step)]
