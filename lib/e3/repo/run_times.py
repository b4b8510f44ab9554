"""How long each task of a workspace took when it last ran, so e3 start runs the longest work first.

`cache/times/<WS>.cbor` (a checksummed entry of e3.repo.snapshot) maps task
name -> seconds its last execution ran on a worker (from the moment a worker
started it, not from when it was queued). e3 start (e3.exec.scheduler) hands
out the tasks that are ready at once in order of the longest path of known
run times from each down the graph, as ninja orders its build by its previous
build times: with two long tasks and a short one on two workers, both long
ones start first instead of one waiting behind the short one.

Only an order: a missing, damaged or foreign entry leaves the graph's own
order, and deleting it loses nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:
    from e3.storage.repository import Repository

FORMAT = 1
KIND = "times"


def load(repo: "Repository", ws: str) -> dict[str, float]:
    """Task name -> seconds of its last run; empty when none is known."""
    from e3.repo import snapshot

    if not snapshot.plain_key(ws):
        return {}
    cached = snapshot.load_entry(repo, KIND, ws)
    if cached is None or cached.get("format") != FORMAT or not isinstance(cached.get("seconds"), dict):
        return {}
    return {n: float(s) for n, s in cached["seconds"].items() if isinstance(n, str) and isinstance(s, (int, float)) and s >= 0}


def save(repo: "Repository", ws: str, seconds: Mapping[str, float], names: Iterable[str]) -> None:
    """Keep this run's times with the earlier ones of tasks the workspace still has (`names`)."""
    from e3.repo import snapshot

    if not seconds or not snapshot.plain_key(ws):
        return
    kept = set(names)
    merged = {n: s for n, s in load(repo, ws).items() if n in kept}
    merged.update(seconds)
    snapshot.store_entry(repo, KIND, ws, {"format": FORMAT, "seconds": merged})
