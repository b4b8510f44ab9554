"""The dataflow graph of a deployed package: which task feeds which.

A task depends on the task whose output path is one of its input paths.
Built once per package object and cached in-process; everything here is
linear in the number of tasks and edges.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from e3 import collector
from e3.errors import FormatError
from e3.model.paths import TreePath, format_tree_path
from e3.model.task import TaskObject, load_task

if TYPE_CHECKING:
    from e3.model.package import Package
    from e3.storage.objects import ObjectStore
    from e3.storage.repository import Repository


@dataclass(slots=True)
class Node:
    name: str
    task_hash: str
    task: TaskObject
    index: int = 0
    """Position in the topological order (ties broken by name, like the original engine)."""
    upstream: list[str] = field(default_factory=list)
    downstream: list[str] = field(default_factory=list)


@dataclass
class Graph:
    nodes: dict[str, Node]
    order: list[str]
    producer: dict[TreePath, str]
    """Output path -> name of the task writing it."""
    consumers: dict[TreePath, list[str]]
    """Input path -> names of the tasks reading it."""

    def downstream_closure(self, names: Iterable[str]) -> set[str]:
        return self._closure(names, lambda n: n.downstream)

    def upstream_closure(self, names: Iterable[str]) -> set[str]:
        return self._closure(names, lambda n: n.upstream)

    def _closure(self, names: Iterable[str], edges) -> set[str]:
        seen: set[str] = set()
        stack = list(names)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(edges(self.nodes[n]))
        return seen


_cache: dict[str, Graph] = {}


def graph_of(repo: "Repository", package_hash: str) -> Graph:
    """The task graph of a package object: kept in this process, else from e3.repo.snapshot,
    else built from the stored package and task objects (and cached there)."""
    from e3.repo import snapshot

    g = _cache.get(package_hash)
    if g is not None:
        return g
    with collector.paused():  # a node and its lists per task, none in a reference cycle
        tasks = snapshot.load_tasks(repo, package_hash)
        if tasks is None:
            from e3.model.package import load_package

            package = load_package(repo.objects, package_hash)
            tasks = {name: (h, load_task(repo.objects, h)) for name, h in package.tasks.items()}
            snapshot.remember_tasks(repo, package_hash, tasks)
        g = _cache[package_hash] = build_from_tasks(tasks)
    return g


def graph_for(store: "ObjectStore", package_hash: str, package: "Package") -> Graph:
    g = _cache.get(package_hash)
    if g is None:
        with collector.paused():
            g = _cache[package_hash] = build(store, package)
    return g


def build(store: "ObjectStore", package: "Package") -> Graph:
    return build_from_tasks({name: (h, load_task(store, h)) for name, h in package.tasks.items()})


def build_from_tasks(tasks: dict[str, tuple[str, TaskObject]]) -> Graph:
    """The graph of tasks given as name -> (task object hash, task object)."""
    nodes = {name: Node(name, h, t) for name, (h, t) in sorted(tasks.items())}
    producer: dict[TreePath, str] = {}
    for node in nodes.values():
        other = producer.setdefault(node.task.output, node.name)
        if other != node.name:
            raise FormatError(f"tasks {other} and {node.name} both write {format_tree_path(node.task.output)}")
    consumers: dict[TreePath, list[str]] = {}
    for node in nodes.values():
        ups = set()
        for path in node.task.inputs:
            consumers.setdefault(path, []).append(node.name)
            p = producer.get(path)
            if p is not None:
                ups.add(p)
        node.upstream = sorted(ups)
        for u in node.upstream:
            nodes[u].downstream.append(node.name)
    order = _topological(nodes)
    for i, name in enumerate(order):
        nodes[name].index = i
    return Graph(nodes, order, producer, consumers)


def _topological(nodes: dict[str, Node]) -> list[str]:
    """Kahn's algorithm, smallest name first among the ready; a cycle is a malformed package."""
    missing = {name: len(n.upstream) for name, n in nodes.items()}
    ready = [name for name, k in missing.items() if k == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for d in nodes[name].downstream:
            missing[d] -= 1
            if missing[d] == 0:
                heapq.heappush(ready, d)
    if len(order) != len(nodes):
        cyclic = sorted(n for n, k in missing.items() if k > 0)
        raise FormatError(f"the package's tasks form a cycle: {', '.join(cyclic[:5])}")
    return order
