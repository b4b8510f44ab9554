"""A workspace's dataflow drawn for people (text) and for tools (Graphviz DOT, Mermaid).

Each takes the interface's `DataflowGraph` value and returns the text. A task
reads datasets: an input (drawn as a node of its own) or another task's
output (drawn as an edge from that task). An East task's own `function_ir`
is part of the task, not an input anyone sets, so it is left out.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from e3.model.paths import format_tree_path

if TYPE_CHECKING:
    from e3.api.values import DataflowGraph, GraphTask

FORMATS = ("text", "dot", "mermaid")


def _sources(task: "GraphTask", producer: dict) -> list[tuple[str, str]]:
    """What a task reads, in its input order: ("task", name) or ("input", printed path)."""
    out = []
    for path in task.inputs:
        if path == ("tasks", task.name, "function_ir"):
            continue
        name = producer.get(tuple(path))
        out.append(("task", name) if name is not None else ("input", format_tree_path(path)))
    return out


def _producers(graph: "DataflowGraph") -> dict:
    return {tuple(t.output): t.name for t in graph.tasks}


def render(graph: "DataflowGraph", fmt: str) -> str:
    return {"text": text, "dot": dot, "mermaid": mermaid}[fmt](graph)


def text(graph: "DataflowGraph") -> str:
    """One line per task, in dataflow order: `TASK <- what it reads` (tasks by name, inputs by path)."""
    producer = _producers(graph)
    if not graph.tasks:
        return f"{graph.workspace}: no tasks\n"
    width = max(len(t.name) for t in graph.tasks)
    lines = []
    for t in graph.tasks:
        reads = " ".join(name for _, name in _sources(t, producer))
        lines.append(f"{t.name.ljust(width)}  <- {reads}".rstrip() if reads else t.name)
    return "\n".join(lines) + "\n"


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(graph: "DataflowGraph") -> str:
    """Graphviz: tasks are boxes, inputs ellipses; an edge for each dataset a task reads."""
    producer = _producers(graph)
    lines = [f"digraph {_dot_id(graph.workspace)} {{", "  rankdir=LR;", "  node [shape=box];"]
    inputs: list[str] = []
    edges = []
    for t in graph.tasks:
        lines.append(f"  {_dot_id(t.name)};")
        for kind, name in _sources(t, producer):
            if kind == "input" and name not in inputs:
                inputs.append(name)
            edges.append(f"  {_dot_id(name)} -> {_dot_id(t.name)};")
    lines += [f"  {_dot_id(name)} [shape=ellipse];" for name in inputs]
    return "\n".join(lines + edges + ["}"]) + "\n"


def _mermaid_label(name: str) -> str:
    return '"' + name.replace('"', "#quot;") + '"'


def mermaid(graph: "DataflowGraph") -> str:
    """Mermaid flowchart: tasks are boxes, inputs stadiums; ids t0…, i0… (Mermaid ids are plain words)."""
    producer = _producers(graph)
    ids = {t.name: f"t{i}" for i, t in enumerate(graph.tasks)}
    lines = ["flowchart LR"]
    inputs: dict[str, str] = {}
    edges = []
    for t in graph.tasks:
        lines.append(f"  {ids[t.name]}[{_mermaid_label(t.name)}]")
        for kind, name in _sources(t, producer):
            if kind == "input":
                if name not in inputs:
                    inputs[name] = f"i{len(inputs)}"
                source = inputs[name]
            else:
                source = ids[name]
            edges.append(f"  {source} --> {ids[t.name]}")
    lines += [f"  {i}([{_mermaid_label(name)}])" for name, i in inputs.items()]
    return "\n".join(lines + edges) + "\n"
