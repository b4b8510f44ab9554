"""The dataflow graph of a deployed package: which task feeds which.

A task depends on the task whose output path is one of its input paths.
Built once per package object and cached in-process, and its order and edges
stored with the package's tasks in e3.repo.snapshot's plan cache, so that a
later process reads them back instead of building them; everything here is
linear in the number of tasks and edges.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from functools import cached_property
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


class Graph:
    def __init__(self, nodes: dict[str, Node], order: list[str], producer: dict[TreePath, str]) -> None:
        self.nodes = nodes
        self.order = order
        self.producer = producer
        """Output path -> name of the task writing it."""

    @cached_property
    def consumers(self) -> dict[TreePath, list[str]]:
        """Input path -> names of the tasks reading it (in name order); made when first asked
        (a run asks only once the workspace changed under it)."""
        consumers: dict[TreePath, list[str]] = {}
        for name in sorted(self.nodes):
            for path in self.nodes[name].task.inputs:
                consumers.setdefault(path, []).append(name)
        return consumers

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
    else built from the stored package and task objects (and cached there, with the graph)."""
    from e3.repo import snapshot

    g = _cache.get(package_hash)
    if g is not None:
        return g
    with collector.paused():  # a node and its lists per task, none in a reference cycle
        cached = snapshot.load_plan(repo, package_hash)
        if cached is not None and cached.order is not None and cached.upstream is not None:
            try:
                g = _cache[package_hash] = _from_cached(cached.tasks, cached.order, cached.upstream)
                return g
            except (IndexError, TypeError, ValueError):
                pass  # not a graph of these tasks (another e3's): built again below
        if cached is not None:
            tasks = {name: (h, t) for name, h, t in cached.tasks}
        else:
            from e3.model.package import load_package

            package = load_package(repo.objects, package_hash)
            tasks = {name: (h, load_task(repo.objects, h)) for name, h in package.tasks.items()}
        g = _cache[package_hash] = build_from_tasks(tasks)
        # Stored with the tasks, the graph is not built again: the next run reads it (_from_cached).
        position = {name: i for i, name in enumerate(sorted(tasks))}
        upstream = [[position[u] for u in g.nodes[name].upstream] for name in sorted(tasks)]
        snapshot.remember_tasks(repo, package_hash, tasks, [position[n] for n in g.order], upstream)
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
    for node in nodes.values():
        ups = set()
        for path in node.task.inputs:
            p = producer.get(path)
            if p is not None:
                ups.add(p)
        node.upstream = sorted(ups)
        for u in node.upstream:
            nodes[u].downstream.append(node.name)
    order = _topological(nodes)
    for i, name in enumerate(order):
        nodes[name].index = i
    return Graph(nodes, order, producer)


def _from_cached(tasks: list[tuple[str, str, TaskObject]], order: list[int], upstream: list[list[int]]) -> Graph:
    """The graph build_from_tasks made of these tasks (in name order), from the order and edges it
    found then: no sort, no search (the entry is checked whole by its checksum)."""
    names = [t[0] for t in tasks]
    if not (len(order) == len(upstream) == len(names)):
        raise ValueError("a cached graph of other tasks")
    downstream: list[list[str]] = [[] for _ in names]
    nodes: dict[str, Node] = {}
    for (name, h, task), ups in zip(tasks, upstream):
        nodes[name] = Node(name, h, task, 0, [names[u] for u in ups], downstream[len(nodes)])
        for u in ups:
            downstream[u].append(name)
    in_order = [names[i] for i in order]
    for i, name in enumerate(in_order):
        nodes[name].index = i
    return Graph(nodes, in_order, {task.output: name for name, _, task in tasks})


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
