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
