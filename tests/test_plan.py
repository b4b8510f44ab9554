"""The dataflow graph: dependencies from output paths to input paths, order, cycles."""
from __future__ import annotations

import pytest

from e3 import east
from e3.errors import FormatError
from e3.exec.plan import build
from e3.model.package import UNASSIGNED, DatasetSpec, Package
from e3.model.task import TaskObject, store_task
from e3.storage.repository import open_repository

INT = east.parse_type("Integer")


def _package(store, edges: dict[str, list[str]]) -> Package:
    """Tasks named by `edges`, each reading the outputs of the tasks it lists (or inputs.x)."""
    tasks = {}
    for name, ups in edges.items():
        inputs = tuple(("tasks", u, "output") if u in edges else ("inputs", u) for u in ups)
        tasks[name] = store_task(store, TaskObject("0" * 64, inputs, ("tasks", name, "output")))
    structure = {"inputs": {"x": DatasetSpec(INT, True)}, "tasks": {n: {"output": DatasetSpec(INT, False)} for n in edges}}
    return Package(tasks, structure, {("tasks", n, "output"): UNASSIGNED for n in edges})


def test_order_puts_producers_first_and_breaks_ties_by_name(repo):
    store = open_repository(repo).objects
    g = build(store, _package(store, {"c": ["a", "b"], "b": ["x"], "a": ["x"], "d": ["c"]}))
    assert g.order == ["a", "b", "c", "d"]
    assert g.nodes["c"].upstream == ["a", "b"]
    assert g.downstream_closure(["b"]) == {"b", "c", "d"}
    assert g.upstream_closure(["d"]) == {"a", "b", "c", "d"}
    assert g.consumers[("inputs", "x")] == ["a", "b"]


def test_a_cycle_is_a_malformed_package(repo):
    store = open_repository(repo).objects
    with pytest.raises(FormatError, match="cycle"):
        build(store, _package(store, {"a": ["b"], "b": ["a"]}))


def test_two_tasks_writing_one_path_are_refused(repo):
    store = open_repository(repo).objects
    pkg = _package(store, {"a": ["x"]})
    dup = store_task(store, TaskObject("0" * 64, (("inputs", "x"),), ("tasks", "a", "output")))
    with pytest.raises(FormatError, match="both write"):
        build(store, Package({**pkg.tasks, "b": dup}, pkg.structure, pkg.refs))


def test_a_graph_read_back_from_the_plan_cache_is_the_graph_built(repo):
    """e3 package import caches the tasks; the first graph_of builds the graph and stores its order
    and edges with them; later ones read those back instead of building: the same graph."""
    from e3.exec import plan
    from e3.model.task import load_task
    from e3.repo import snapshot

    r = open_repository(repo)
    pkg = _package(r.objects, {"c": ["a", "b"], "b": ["x"], "a": ["x"], "d": ["c", "a"], "e": ["x"], "f": ["e", "e"]})
    tasks = {name: (h, load_task(r.objects, h)) for name, h in pkg.tasks.items()}
    key = "f" * 64
    snapshot.remember_tasks(r, key, tasks)  # as e3 package import does: no graph yet
    assert snapshot.load_plan(r, key).order is None
    built = plan.build_from_tasks(tasks)
    try:
        first = plan.graph_of(r, key)
        assert snapshot.load_plan(r, key).order is not None
        plan._cache.pop(key)
        again = plan.graph_of(r, key)
        assert again is not first
        for g in (first, again):
            assert g.order == built.order and g.producer == built.producer and g.consumers == built.consumers
            assert {n: (x.name, x.task_hash, x.task, x.index, x.upstream, x.downstream) for n, x in g.nodes.items()} == {
                n: (x.name, x.task_hash, x.task, x.index, x.upstream, x.downstream) for n, x in built.nodes.items()
            }
        # A cached graph that does not fit its tasks (another e3's) is built again, not used.
        cached = snapshot.load_plan(r, key)
        snapshot.remember_tasks(r, key, tasks, cached.order[:-1], cached.upstream)
        plan._cache.pop(key)
        assert plan.graph_of(r, key).order == built.order
    finally:
        plan._cache.pop(key, None)
