"""`e3 workspace export` without the East runtime: the zip it writes is the one the runtime makes, byte for byte.

Each test exports a deployed workspace with the real command (which makes the
package object with e3.model.canonical where it can, and then loads no East
runtime) and the same workspace
in-process with `e3.repo.workspace.export(..., runtime=True)` (the East
runtime decodes the deployed package and encodes the new one), and compares
the two zips' bytes. The packages cover what a package object can hold: many
types (nested structs, variants, dicts, options, the IR type of the tasks'
functions), null refs of the types whose null is not Null's, values set, task
outputs, and a package object written by another encoder (types not shared).
"""
from __future__ import annotations

import itertools
import zipfile
from pathlib import Path

import pytest

from e3 import east, sdk
from e3.model import canonical
from e3.model.canonical import TypeValue
from e3.model.package import DatasetRef, DatasetSpec, Package, decode_package, encode_package
from e3.repo import workspace
from e3.storage.objects import hash_bytes
from e3.storage.repository import open_repository
from e3_testing.commands import assert_one_line_error, deployed, run, run_loading, write
from e3_testing.packages import INCREMENT

E = east
INT, STR = E.IntegerType, E.StringType
POINT = E.StructType([("x", E.FloatType), ("y", E.FloatType)])
SHAPE = E.VariantType([("circle", E.StructType([("centre", POINT), ("r", E.FloatType)])), ("dot", POINT), ("none", E.NullType)])
TYPES = {
    "i": (INT, 3), "s": (STR, None), "f": (E.FloatType, 0.5), "b": (E.BooleanType, True), "d": (E.DateTimeType, None),
    "blob": (E.BlobType, b"\x00\x01"), "nul": (E.NullType, None), "xs": (E.ArrayType(E.FloatType), [1.0, 2.0]),
    "set": (E.SetType(STR), None), "dict": (E.DictType(STR, E.ArrayType(POINT)), {"a": [{"x": 1.0, "y": 2.0}]}),
    "p": (POINT, {"x": 0.0, "y": 1.0}), "q": (POINT, None), "shape": (SHAPE, None), "opt": (E.OptionType(SHAPE), None),
    "empty": (E.StructType([]), None), "nested": (E.StructType([("a", POINT), ("b", E.ArrayType(POINT)), ("c", SHAPE)]), None),
}


def both_exports(repo: Path, tmp_path: Path, ws: str = "dev", *args: str, declined: bool = False) -> tuple[bytes, bytes]:
    """(the zip `e3 workspace export` writes, the zip the runtime path writes), same arguments;
    the command loads the East runtime only if `declined` (e3.model.canonical declines the package)."""
    fast, slow = tmp_path / f"{ws}-fast.zip", tmp_path / f"{ws}-runtime.zip"
    out, loaded = run_loading(("east",), "workspace", "export", repo, ws, fast, *args)
    assert out.returncode == 0 and b"Exported workspace" in out.stdout, out.stderr
    assert loaded == ({"east"} if declined else set())
    options = dict(zip(("name", "version"), args[1::2])) if args else {}
    workspace.export(open_repository(repo), ws, slow, options.get("name"), options.get("version"), runtime=True)
    return fast.read_bytes(), slow.read_bytes()


def package_of(zip_bytes: bytes, tmp_path: Path) -> Package:
    objects, h = contents(write(tmp_path, "read.zip", zip_bytes))
    return decode_package(objects[h])


def many_types_zip(tmp_path: Path) -> Path:
    inputs = {n: sdk.input(n, t, v) for n, (t, v) in TYPES.items()}
    inc = sdk.task("inc", [inputs["i"]], INCREMENT)
    first = sdk.task("first", [inputs["xs"]], E.East.function([E.ArrayType(E.FloatType)], E.FloatType, lambda b, xs: xs.get(0)))
    move = sdk.task("move", [inputs["p"]], E.East.function([POINT], POINT, lambda b, p: E.East.value({"x": p.y, "y": p.x}, POINT)))
    path = tmp_path / "many.zip"
    sdk.export(sdk.package("many", "1.0.0", *inputs.values(), inc, first, move), path)
    return path


@pytest.fixture(scope="module")
def many_zip(tmp_path_factory) -> Path:
    return many_types_zip(tmp_path_factory.mktemp("many"))


def test_a_workspace_of_many_types_exports_the_runtimes_bytes(tmp_path, many_zip):
    repo = deployed(tmp_path, many_zip, "many@1.0.0")
    fast, slow = both_exports(repo, tmp_path)
    assert fast == slow
    refs = package_of(fast, tmp_path).refs
    assert refs[("inputs", "s")].kind == "unassigned" and refs[("inputs", "i")].kind == "value"


def test_values_set_and_task_outputs_export_as_the_runtime_exports_them(tmp_path, many_zip):
    repo = deployed(tmp_path, many_zip, "many@1.0.0")
    run("e3", "set", repo, "dev.inputs.s", write(tmp_path, "s.east", '"hello"'))
    run("e3", "set", repo, "dev.inputs.q", write(tmp_path, "q.east", "(x=1.5, y=-2.0)"))
    run("e3", "set", repo, "dev.inputs.shape", write(tmp_path, "shape.east", ".dot (x=0.0, y=0.0)"))
    run("e3", "set", repo, "dev.inputs.b", write(tmp_path, "b.east", "false"))  # false is what a null Boolean stands for
    run("e3", "start", repo, "dev")
    fast, slow = both_exports(repo, tmp_path, "dev", "--name", "snap", "--version", "2.0.0")
    assert fast == slow
    refs = package_of(fast, tmp_path).refs
    assert refs[("tasks", "inc", "output")].kind == "value" and refs[("inputs", "s")].kind == "value"
    assert refs[("inputs", "b")].kind == "null"


def test_null_refs_of_every_kind_of_null_export_as_the_runtime_exports_them(repo, tmp_path):
    """A null ref stands for null, or for false, the empty blob or the empty struct (the runtime
    encodes None so for those types): export finds them all null again."""
    built = sdk.export(sdk.package("nulls", "1.0.0", *(sdk.input(n, TYPES[n][0]) for n in ("i", "b", "blob", "empty", "nul", "p"))),
                       tmp_path / "n.zip")
    pkg = built.package
    for path in pkg.refs:
        pkg.refs[path] = DatasetRef("null")
    zip_path = rezipped(tmp_path / "nulls.zip", "nulls", built.objects, pkg)
    run("e3", "workspace", "import", repo, "dev", zip_path)
    fast, slow = both_exports(repo, tmp_path)
    assert fast == slow
    assert {r.kind for r in package_of(fast, tmp_path).refs.values()} == {"null"}


def contents(path: Path) -> tuple[dict[str, bytes], str]:
    """A package zip's objects (hash -> bytes) and its package object's hash."""
    with zipfile.ZipFile(path) as z:
        objects = {n[8:10] + n[11:73]: z.read(n) for n in z.namelist() if n.startswith("objects/")}
        (ref,) = [n for n in z.namelist() if n.startswith("packages/")]
        return objects, z.read(ref).decode().strip()


def rezipped(path: Path, name: str, objects: dict[str, bytes], pkg: Package | bytes) -> Path:
    """A package zip of `objects` with `pkg` (or these bytes) as its package object."""
    data = pkg if isinstance(pkg, bytes) else encode_package(pkg)
    h = hash_bytes(data)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"packages/{name}/1.0.0", h + "\n")
        for k, v in {**objects, h: data}.items():
            z.writestr(f"objects/{k[:2]}/{k[2:]}.beast2", v)
    return path


def test_the_example_package_exports_as_the_runtime_exports_it(tmp_path, example_zip):
    repo = deployed(tmp_path, example_zip, "my-package@1.0.0")
    run("e3", "set", repo, "dev.inputs.name", write(tmp_path, "n.east", '"e3"'))
    fast, slow = both_exports(repo, tmp_path)
    assert fast == slow


_fresh = itertools.count(1 << 30)


def unshared(t: TypeValue) -> TypeValue:
    """`t` with a new container for every struct, variant and function in it: as an encoder writes
    it that never refers back to a container it wrote."""
    k, p = t.kind, t.parts
    if k in ("Struct", "Variant"):
        return TypeValue(k, tuple((n, unshared(v)) for n, v in p), next(_fresh))
    if k in ("Function", "AsyncFunction"):
        return TypeValue(k, (tuple(unshared(i) for i in p[0]), unshared(p[1])), next(_fresh))
    if k == "Dict":
        return TypeValue(k, (unshared(p[0]), unshared(p[1])))
    if k == "Recursive":
        return t if p[0] == "ref" else TypeValue(k, ("wrapper", p[1], unshared(p[2])))
    return TypeValue(k, unshared(p)) if isinstance(p, TypeValue) else t


def test_a_package_object_whose_types_share_nothing_exports_as_the_runtime_exports_it(repo, tmp_path, many_zip):
    """The runtime writes a type's container as a reference where the object it read did, and only
    there: equal types of two datasets, read in full twice, are written in full twice."""
    objects, h = contents(many_zip)
    original = objects.pop(h)
    read = canonical.read_package(original)

    def walk(node):
        return DatasetSpec(unshared(node.type), node.writable) if isinstance(node, DatasetSpec) else {k: walk(v) for k, v in node.items()}

    data = canonical.encode_package(Package(read.tasks, walk(read.structure), read.refs))
    assert len(data) > 4 * len(original)  # every type written out in full
    assert encode_package(decode_package(data)) == data  # and the runtime writes it back so
    run("e3", "workspace", "import", repo, "dev", rezipped(tmp_path / "unshared.zip", "many", objects, data))
    fast, slow = both_exports(repo, tmp_path)
    assert fast == slow


def test_a_package_object_the_canonical_reader_declines_is_exported_by_the_runtime(repo, tmp_path, many_zip):
    from east.serialization.beast2 import encode_beast2_v5_for

    from e3.model.types import PackageObjectType

    objects, h = contents(many_zip)
    deflated = encode_beast2_v5_for(PackageObjectType, codec="deflate")(decode_package(objects.pop(h)).to_east())
    assert canonical.read_package(deflated) is None
    run("e3", "workspace", "import", repo, "dev", rezipped(tmp_path / "deflated.zip", "many", objects, deflated))
    fast, slow = both_exports(repo, tmp_path, declined=True)
    assert fast == slow


def test_an_exported_zip_imports_back_and_exports_the_same_bytes(tmp_path, many_zip):
    repo = deployed(tmp_path, many_zip, "many@1.0.0")
    run("e3", "set", repo, "dev.inputs.s", write(tmp_path, "s.east", '"round trip"'))
    run("e3", "start", repo, "dev")
    first = tmp_path / "first.zip"
    run("e3", "workspace", "export", repo, "dev", first, "--name", "snap", "--version", "1.0.0")
    other = tmp_path / "other"
    run("e3", "repo", "create", other)
    out, loaded = run_loading(("east",), "workspace", "import", other, "prod", first)
    assert out.returncode == 0 and loaded == set(), out.stderr
    again = tmp_path / "again.zip"
    run("e3", "workspace", "export", other, "prod", again, "--name", "snap", "--version", "1.0.0")
    assert again.read_bytes() == first.read_bytes()
    for path in ("inputs.s", "inputs.p", "inputs.dict", "tasks.inc.output"):
        assert run("e3", "get", other, f"prod.{path}").out == run("e3", "get", repo, f"dev.{path}").out


def test_exporting_a_workspace_whose_task_object_is_missing_fails_in_one_line(tmp_path, many_zip):
    repo = deployed(tmp_path, many_zip, "many@1.0.0")
    view = workspace.read(open_repository(repo), "dev")
    task = next(iter(workspace.canonical_package(view).tasks.values()))
    (repo / ".e3" / "objects" / task[:2] / f"{task[2:]}.beast2").unlink()
    assert_one_line_error(run("e3", "workspace", "export", repo, "dev", tmp_path / "x.zip", expect=128), task)
    assert not (tmp_path / "x.zip").exists()
