"""tests/ and bench/ share their helpers through one package, e3_testing (tests/e3_testing/).

Benchmarks run with a plain python3 (`make bench`), so neither they nor e3_testing may need
pytest, and a benchmark imports no test module or conftest. pytest puts lib/ and tests/ on
the path once (pyproject.toml), so no test does it by hand.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS, BENCH, HELPERS = ROOT / "tests", ROOT / "bench", ROOT / "tests" / "e3_testing"


def imported(path: Path) -> set[str]:
    """Top-level names of the modules `path` imports, anywhere in its text."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("where", [BENCH, HELPERS], ids=["bench", "e3_testing"])
def test_benchmarks_and_helpers_import_no_test_module_no_conftest_and_no_pytest(where):
    test_modules = {p.stem for p in TESTS.glob("*.py")}  # test_*, conftest, and any helper left beside them
    bad = {
        f"{p.relative_to(ROOT)} imports {m}"
        for p in sorted(where.glob("*.py"))
        for m in imported(p) & (test_modules | {"pytest", "_pytest"})
    }
    assert not bad, sorted(bad)


def test_every_helper_imports_in_a_plain_python_without_loading_pytest():
    """As a benchmark runs them: lib/ and tests/ on sys.path, no pytest plugin, no conftest."""
    names = sorted(p.stem for p in HELPERS.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(ROOT / 'lib')!r}, {str(TESTS)!r}]\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module('e3_testing.' + name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest', 'conftest')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_no_test_puts_lib_or_tests_on_the_path_by_hand():
    """sys.path.insert is left only in scripts for child processes (strings) and for man/'s renderer."""
    bad = []
    for p in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) in ("sys.path.insert", "sys.path.append")
                and "man" not in ast.unparse(node.args[-1])
            ):
                bad.append(f"{p.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, bad
