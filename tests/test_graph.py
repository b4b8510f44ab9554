"""e3 workspace graph: the dataflow as text, Graphviz DOT and Mermaid."""
from __future__ import annotations

from e3.api.values import DataflowGraph, GraphTask
from e3.cli import _graph

# The example package's shape: greet reads two inputs (and its own function), my-task reads
# greet's output and an input, shout (a bash task: no function_ir) reads my-task's output.
EXAMPLE = DataflowGraph(
    "dev",
    [
        GraphTask("greet", "1" * 64, [("tasks", "greet", "function_ir"), ("inputs", "greeting"), ("inputs", "name")], ("tasks", "greet", "output"), []),
        GraphTask("my-task", "2" * 64, [("tasks", "my-task", "function_ir"), ("tasks", "greet", "output"), ("inputs", "times")], ("tasks", "my-task", "output"), ["greet"]),
        GraphTask("shout", "3" * 64, [("tasks", "my-task", "output")], ("tasks", "shout", "output"), ["my-task"]),
    ],
)


def test_text_is_a_line_per_task_naming_what_it_reads():
    assert _graph.text(EXAMPLE) == (
        "greet    <- .inputs.greeting .inputs.name\n"
        "my-task  <- greet .inputs.times\n"
        "shout    <- my-task\n"
    )


def test_dot_draws_tasks_as_boxes_inputs_as_ellipses_and_an_edge_per_read():
    out = _graph.dot(EXAMPLE)
    assert out.startswith('digraph "dev" {\n  rankdir=LR;\n  node [shape=box];\n')
    assert '  ".inputs.times" [shape=ellipse];\n' in out
    assert '  "greet" -> "my-task";\n' in out and '  ".inputs.name" -> "greet";\n' in out
    assert "function_ir" not in out
    assert out.count("->") == 5


def test_mermaid_uses_plain_ids_and_quoted_labels():
    out = _graph.mermaid(EXAMPLE)
    assert out.splitlines()[:4] == ["flowchart LR", '  t0["greet"]', '  t1["my-task"]', '  t2["shout"]']
    assert '  i2([".inputs.times"])' in out and "  t0 --> t1" in out and "  i0 --> t0" in out


def test_a_package_without_tasks_says_so():
    assert _graph.text(DataflowGraph("dev", [])) == "dev: no tasks\n"
    assert _graph.mermaid(DataflowGraph("dev", [])) == "flowchart LR\n"
