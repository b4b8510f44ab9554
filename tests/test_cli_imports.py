"""Commands reach a repository only through the repository interface (e3.api).

An ast walk over lib/e3/cli: a porcelain command may import the interface, the
frame, errors, and the helpers that print and parse values and paths; the
object plumbing (e3-cat-object, e3-hash-object) reads and writes objects
through the interface too; no command imports pygit2. A command that needs
more than this needs a new operation on the interface instead.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[1] / "lib" / "e3" / "cli"

PORCELAIN = (
    "repo", "package", "workspace", "list", "get", "set", "start", "logs", "run", "watch", "convert",
    "login", "logout", "auth", "status",
)
PORCELAIN_MAY_IMPORT = (
    "e3.api",
    "e3.errors",
    "e3.cli._command",
    "e3.cli._json",  # --json: the interface's values as JSON
    "e3.cli._graph",  # e3 workspace graph: text, DOT, Mermaid
    "e3.cli._progress",  # e3 start's display
    "e3.cli._complete",  # completion of what exists, through the interface
    "e3.formats",  # a value's file formats (.east, .json, .beast2, .csv)
    "e3.east",  # printing and parsing values
    "e3.beast2_stream",  # ... a piece at a time
    "e3.beast2_type",
    "e3.container",
    "e3.runtime_stderr",
    "e3.model",  # dataset paths
    "e3.collector",  # e3 start: this process may freeze what its run loads
    "e3.sdk",  # e3 watch builds the package it watches (e3.sdk.watch), as its author would
    "e3.cli.login",  # login, logout and auth are one module's three commands
)
OBJECT_PLUMBING = ("cat_object", "hash_object")
NEVER = ("pygit2",)
NOT_BESIDE_THE_INTERFACE = ("e3.storage", "e3.repo")
OBJECT_PLUMBING_MAY_IMPORT = ("e3.repo.ingest", "e3.repo.ingest_pool")  # reading and checking the user's files


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports; `from M import x` counts as M.x (a submodule, or a name within M)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("name", PORCELAIN)
def test_a_porcelain_command_imports_only_the_interface_and_value_helpers(name):
    ours = {m for m in imported_modules(CLI / f"{name}.py") if within(m, ("e3",))}
    assert {m for m in ours if not within(m, PORCELAIN_MAY_IMPORT)} == set()


@pytest.mark.parametrize("name", OBJECT_PLUMBING)
def test_object_plumbing_reaches_objects_through_the_interface(name):
    beside = {m for m in imported_modules(CLI / f"{name}.py") if within(m, NOT_BESIDE_THE_INTERFACE)}
    assert {m for m in beside if not within(m, OBJECT_PLUMBING_MAY_IMPORT)} == set()


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.stem)
def test_no_command_imports_pygit2(path):
    assert {m for m in imported_modules(path) if within(m, NEVER)} == set()


def test_every_porcelain_command_is_checked():
    commands = {p.stem for p in CLI.glob("*.py") if not p.stem.startswith("_")}
    plumbing = {"cat_object", "hash_object", "update_ref", "rev_parse", "show_ref", "fsck", "enqueue", "run_task", "log_tail"}
    server = {"api_server"}  # serves repositories: it stands beside the interface (e3.server over e3.api.local)
    assert commands - plumbing - server == set(PORCELAIN), "a new command: list it as porcelain, plumbing or server here"


def test_reading_an_object_through_the_interface_loads_no_heavy_module(tmp_path):
    """Plumbing that opens a repository to read one object starts fast: no pygit2, East runtime,
    rich, or the values' dataclasses."""
    import subprocess
    import sys

    from e3_testing.commands import command_env, run

    run("e3", "repo", "create", tmp_path)
    h = run("e3-hash-object", "-w", "--stdin", "--from", "east", "-t", "String", "--repo", tmp_path, input='"x"').out.strip()
    probe = (
        "import sys, e3.api\n"
        f"r = e3.api.open({str(tmp_path)!r})\n"
        f"r.object_size({h!r}); r.object_head({h!r}, 64)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygit2', 'east', 'rich', 'dataclasses', 'httpx')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=command_env(), check=True).stdout
    assert out.strip() == "[]"


def test_getting_a_value_as_beast2_loads_neither_the_east_runtime_nor_pygit2(demo_dev):
    """`e3 get -f beast2` copies the stored bytes out: the cached tree of the workspace's commit
    names them, so nothing decodes the package (the fast path e3-get(1) names)."""
    from e3_testing.commands import run, run_loading

    def get(path: str):
        return run_loading(("east", "pygit2"), "get", demo_dev, path, "-f", "beast2")

    out, loaded = get("dev.inputs.a")
    assert out.returncode == 0, out.stderr
    h = run("e3-rev-parse", "--repo", demo_dev, "dev.inputs.a").out.strip()
    assert out.stdout == (demo_dev / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2").read_bytes()
    assert loaded == set()
    unassigned, _ = get("dev.inputs.b")  # the cached tree has no value there: the package says why
    assert unassigned.returncode != 0 and b"dev.inputs.b is unassigned" in unassigned.stderr


def test_importing_a_package_loads_neither_the_east_runtime_nor_pygit2(repo, tmp_path):
    """`e3 package import` of a zip in e3's canonical encoding reads its package and task
    objects and the types of its values without the East runtime (e3.model.canonical); a
    value of the wrong type is still refused, in one line, by the runtime's check."""
    from e3 import east, sdk
    from e3.model.package import DatasetRef, encode_package
    from e3.storage.objects import hash_bytes
    from e3_testing.commands import assert_one_line_error, run, run_loading
    from e3_testing.packages import INCREMENT

    x = sdk.input("x", east.ArrayType(east.FloatType), [1.0, 2.5])
    n = sdk.input("n", east.IntegerType, 1)
    built = sdk.export(sdk.package("p", "1.0.0", x, n, sdk.task("inc", [n], INCREMENT)), tmp_path / "p.zip")
    out, loaded = run_loading(("east", "pygit2"), "package", "import", repo, tmp_path / "p.zip")
    assert out.returncode == 0, out.stderr
    assert b"Imported p@1.0.0" in out.stdout and loaded == set()

    text = east.encode("five", east.StringType)
    pkg = built.package
    pkg.refs[("inputs", "n")] = DatasetRef("value", hash_bytes(text), {})
    data = encode_package(pkg)
    h = hash_bytes(data)
    entries = {f"objects/{k[:2]}/{k[2:]}.beast2": v for k, v in built.objects.items() if k != built.package_hash}
    entries.update({f"objects/{h[:2]}/{h[2:]}.beast2": data, f"objects/{hash_bytes(text)[:2]}/{hash_bytes(text)[2:]}.beast2": text})
    import zipfile

    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.writestr("packages/p/2.0.0", h + "\n")
        for name, value in entries.items():
            z.writestr(name, value)
    before = sorted(p.name for p in (repo / ".e3" / "refs").rglob("*"))
    assert_one_line_error(run("e3", "package", "import", repo, tmp_path / "bad.zip", expect=128), "inputs.n", "has type String, expected Integer")
    assert sorted(p.name for p in (repo / ".e3" / "refs").rglob("*")) == before


def test_importing_a_package_into_a_workspace_loads_neither_the_east_runtime_nor_pygit2(repo, tmp_path):
    """`e3 workspace import` checks the zip as `e3 package import` does and deploys it into a new
    workspace without decoding anything through the East runtime; the workspace then holds the
    package's values and runs."""
    from e3 import east, sdk
    from e3_testing.commands import run, run_loading
    from e3_testing.packages import INCREMENT

    n = sdk.input("n", east.IntegerType, 41)
    sdk.export(sdk.package("p", "1.0.0", n, sdk.task("inc", [n], INCREMENT)), tmp_path / "p.zip")
    out, loaded = run_loading(("east", "pygit2"), "workspace", "import", repo, "dev", tmp_path / "p.zip")
    assert out.returncode == 0, out.stderr
    assert b"Deployed to workspace: dev" in out.stdout and loaded == set()
    assert [line.split()[-1] for line in run("e3", "workspace", "log", repo, "dev").out.splitlines()] == ["p@1.0.0", "dev"]
    assert run("e3", "get", repo, "dev.inputs.n").out.strip() == "41"
    run("e3", "start", repo, "dev")
    assert run("e3", "get", repo, "dev.tasks.inc.output").out.strip() == "42"
    assert "dev" in run("e3", "workspace", "status", repo, "dev").out


def test_setting_an_array_of_floats_loads_neither_the_east_runtime_nor_pygit2(repo, tmp_path):
    """`e3 set` of a Beast2 Array<Float> in e3's canonical encoding reads the package, matches the
    value's header with the dataset's type and checks the value without the East runtime
    (e3.repo.datasets._set_sketched); what it cannot tell goes to the runtime, as before."""
    from e3 import east
    from e3_testing.commands import run, run_loading, write
    from e3_testing.pkgfixture import make_package

    floats = east.ArrayType(east.FloatType)
    make_package(repo, inputs={"xs": (floats, None)})
    run("e3", "workspace", "deploy", repo, "dev", "demo@1.0.0", "--create")
    f = write(tmp_path, "xs.beast2", east.encode([1.0, 2.5, -0.0], floats))
    out, loaded = run_loading(("east", "pygit2"), "set", repo, "dev.inputs.xs", f)
    assert out.returncode == 0, out.stderr
    assert loaded == set()
    assert run("e3", "get", repo, "dev.inputs.xs", "-f", "beast2").stdout == f.read_bytes()
    assert run("e3", "get", repo, "dev.inputs.xs").out.strip() == "[1.0, 2.5, -0.0]"


def test_exporting_a_workspace_loads_neither_the_east_runtime_nor_pygit2(repo, tmp_path):
    """`e3 workspace export` of a workspace whose package is in e3's canonical encoding reads it and
    writes the new package object without the East runtime (e3.model.canonical); the zip imports
    into another repository with its values."""
    from e3 import east, sdk
    from e3_testing.commands import run, run_loading, write
    from e3_testing.packages import INCREMENT

    n = sdk.input("n", east.IntegerType, 41)
    s = sdk.input("s", east.StructType([("x", east.FloatType), ("tags", east.ArrayType(east.StringType))]))
    sdk.export(sdk.package("p", "1.0.0", n, s, sdk.task("inc", [n], INCREMENT)), tmp_path / "p.zip")
    run("e3", "workspace", "import", repo, "dev", tmp_path / "p.zip")
    run("e3", "set", repo, "dev.inputs.s", write(tmp_path, "s.east", '(x=1.5, tags=["a"])'))
    out, loaded = run_loading(("east", "pygit2"), "workspace", "export", repo, "dev", tmp_path / "dev.zip")
    assert out.returncode == 0, out.stderr
    assert b"Exported workspace dev as p@1.0.0-" in out.stdout and loaded == set()
    other = tmp_path / "other"
    run("e3", "repo", "create", other)
    run("e3", "workspace", "import", other, "prod", tmp_path / "dev.zip")
    assert run("e3", "get", other, "prod.inputs.s").out == run("e3", "get", repo, "dev.inputs.s").out
    assert run("e3", "get", other, "prod.inputs.n").out.strip() == "41"
