"""The library's layers point one way, and no import loop exists (man e3-repository, LAYERS).

Every import in lib/e3 is read from the source (module level, inside functions and under
TYPE_CHECKING alike: a lazy import is still a dependency), so nothing is imported here.
"""
from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"
BIN = Path(__file__).resolve().parents[1] / "bin"

LAYERS: list[tuple[str, ...]] = [
    ("e3.cli",),
    ("e3.server",),
    ("e3.api",),
    ("e3.sdk",),
    ("e3.exec",),
    ("e3.repo",),
    ("e3.storage",),
    ("e3.model",),
    ("e3.formats", "e3.east", "e3.east_csv", "e3.beast2_stream", "e3.beast2_type", "e3.container", "e3.runtime_stderr"),
    ("e3.errors", "e3.process", "e3.collector", "e3"),
]
"""The order, top to bottom, written down once: a module may import its own layer and the
layers below it, never one above. `e3` itself is the package's face (its version)."""

PORCELAIN_MAY_IMPORT = (
    "e3.api", "e3.errors", "e3.cli._", "e3.formats", "e3.east", "e3.beast2_stream", "e3.beast2_type", "e3.model",
    "e3.collector",
)
"""What a porcelain command (lib/e3/cli/<name>.py that no bin/e3-<name> runs) may import:
it reaches a repository only through the interface."""


PORCELAIN_NOT_YET_ON_THE_INTERFACE: set[str] = {
    "e3.cli.auth imports e3.cli.login",
    "e3.cli.convert imports e3.container",
    "e3.cli.logout imports e3.cli.login",
    "e3.cli.watch imports e3.sdk",
    "e3.cli.watch imports e3.sdk.watch",
}
"""Porcelain that still reaches past e3.api, as the interface work (issue 16, the seam) found it:
each is moved onto e3.api and taken off this list. The list only shrinks; the rule above never
bends (test_the_list_of_porcelain_not_yet_on_the_interface_only_shrinks)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((LIB / "e3").rglob("*.py"))}


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The e3 modules `name` imports, anywhere in its text."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from e3.storage import refs` imports the module e3.storage.refs
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {m for m in found if m == "e3" or m.startswith("e3.")}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) - {name} for name, path in known.items()}


def layer(module: str) -> int:
    best, index = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    assert index >= 0, f"{module} is in no layer: add it to LAYERS"
    return index


def test_every_module_is_in_a_layer():
    for name in modules():
        layer(name)


def test_no_module_imports_a_higher_layer():
    upward = sorted(
        f"{a} imports {b}" for a, targets in graph().items() for b in targets if layer(b) < layer(a)
    )
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_no_import_loop():
    g = graph()
    loops: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                loops.append(path[path.index(n):] + [n])
            elif n in g and n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    assert not loops, "import loops:\n" + "\n".join(" -> ".join(loop) for loop in loops)


def plumbing() -> set[str]:
    """The cli modules that a bin/e3-<name> executable runs: the plumbing."""
    return {"e3.cli." + p.name[len("e3-"):].replace("-", "_") for p in BIN.glob("e3-*")}


def porcelain_violations() -> set[str]:
    g = graph()
    plumb = plumbing()
    return {
        f"{a} imports {b}"
        for a, targets in g.items()
        if a.startswith("e3.cli.") and not a.startswith("e3.cli._") and a not in plumb
        for b in targets
        if not (b.startswith("e3.cli._") or any(b == p or b.startswith(p + ".") for p in PORCELAIN_MAY_IMPORT if not p.endswith("_")))
    }


def test_the_layer_order_is_the_one_the_manual_describes():
    text = (LIB.parent / "man" / "e3-repository.5.rst").read_text()
    for prefixes in LAYERS:
        for prefix in prefixes:
            if prefix != "e3":
                assert prefix in text, f"man/e3-repository.5.rst does not name the layer {prefix}"


def test_porcelain_imports_nothing_but_the_interface():
    new = porcelain_violations() - PORCELAIN_NOT_YET_ON_THE_INTERFACE
    assert not new, "porcelain that reaches past e3.api:\n" + "\n".join(sorted(new))


def test_the_list_of_porcelain_not_yet_on_the_interface_only_shrinks():
    done = PORCELAIN_NOT_YET_ON_THE_INTERFACE - porcelain_violations()
    assert not done, "now on the interface: take these off PORCELAIN_NOT_YET_ON_THE_INTERFACE:\n" + "\n".join(sorted(done))
