"""The fixpoint entry: a workspace commit on which a whole run left every task up to date.

A no-op `e3 start` plans the package, reads the dataset tree, computes every
task's id and asks the memo for each: at 100,000 tasks that is most of its
time, to learn what the last run already learnt. When a run of every task (no
--filter, no --force) settled each one, cached or run, on a workspace no other
writer moved meanwhile, it keeps what it ended with in
`cache/fixpoint/<WS>.cbor` (a checksummed entry of e3.repo.snapshot): the
commit, the package, each task's name, task id and output, and a stat of
`tasks/` under which every task's pointer names that success. So the first
no-op after a run that executed tasks is as quick as the ones after it.

That stat is taken under the racily-clean rule of e3.repo.memo_index (a
pointer replaced in the same clock tick as the stat leaves it unchanged), one
of two ways. A run that found every task cached while `tasks/` did not move
since before its first read (`store`, with MemoIndex.unchanged_signature) has
read each pointer under that stat already. A run during which `tasks/` moved
(its own records, or another writer's: a worker of another workspace running
the same task id, a failure recorded by hand) cannot tell from the stat whose
changes it holds, so `store_checked`, once the run is over, takes the stat and
waits for the filesystem's clock to pass it (memo_index.settled_signature: a
tick at most, the run's own last record being written already), and only then
reads every task's pointer again: a change before that read is seen by it, one
after it moves the stat. Reading again costs one small file read per task, at
the end of each run during which `tasks/` moved; the other choice, an entry
the next run must check pointer by pointer, would put that cost back on the
no-op it is meant to spare.

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


def store_checked(repo: "Repository", ws: str, fixpoint: Fixpoint) -> list[int] | None:
    """Keep `fixpoint`, found by a run during which `tasks/` changed, if every task's pointer,
    read once the clock has passed the stat the entry keeps, still names that task's success
    with that output: that stat, under which those pointers were read; None if one does not,
    or the stat could not be settled."""
    from e3.repo import memo_index
    from e3.storage import records

    tasks = memo_index.settled_signature(repo, ws)
    if tasks is None:
        return None
    for task_id, output in zip(fixpoint.task_ids, fixpoint.outputs):
        s = records.summary(repo, task_id)
        if s is None or s.kind != "success" or s.output_hash != output:
            return None  # another writer's record: the next run reads the memo and decides
    store(repo, ws, fixpoint, tasks)
    return tasks


def _hexes(data: bytes) -> list[str]:
    text = data.hex()
    step = 2 * _DIGEST
    return [text[i : i + step] for i in range(0, len(text), step)]
