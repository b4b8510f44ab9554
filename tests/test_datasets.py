"""Datasets by path: e3 list, e3 get, e3 set (type-checked), and concurrent writers."""
from __future__ import annotations

import json
import subprocess

import pytest

from e3_testing.commands import assert_one_line_error, command_env, copy_repository, run, write
from e3_testing.pkgfixture import INT, make_package

from e3 import east
from e3.storage import refs
from e3.repo import workspace
from e3.storage.repository import open_repository


@pytest.fixture(scope="module")
def _deployed_once(tmp_path_factory):
    repo = tmp_path_factory.mktemp("deployed") / "repo"
    run("e3", "repo", "create", repo)
    make_package(repo)
    run("e3", "workspace", "deploy", repo, "dev", "demo@1.0.0", "--create")
    return repo


@pytest.fixture
def deployed(tmp_path, _deployed_once):
    """demo@1.0.0 deployed to dev by `e3 workspace deploy --create`: each test's own copy of one made per module."""
    return copy_repository(_deployed_once, tmp_path / "repo")


def head(repo):
    return refs.read(open_repository(repo), "refs/workspaces/dev")


def test_list_without_path_lists_workspaces(deployed, e3):
    assert e3("list", deployed).out == "dev  (demo@1.0.0)\n"


def test_list_shows_children_names(deployed, e3):
    assert e3("list", deployed, "dev").out == "inputs\ntasks\n"
    assert e3("list", deployed, "dev.inputs").out == "a\nb\nc\n"


def test_list_recursive_shows_dataset_paths(deployed, e3):
    out = e3("list", deployed, "dev.tasks", "-r").out
    assert out == ".tasks.double.function_ir\n.tasks.double.output\n.tasks.greet.function_ir\n.tasks.greet.output\n"


def test_list_long_shows_type_status_and_size(deployed, e3):
    lines = e3("list", deployed, "dev.inputs", "-l").out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "STATUS", "SIZE"]
    assert lines[1].split() == ["a", "Integer", "set", "19", "B"]
    assert lines[2].split() == ["b", "String", "unset", "-"]
    rl = e3("list", deployed, "dev", "-r", "-l").out.splitlines()
    assert rl[0].split()[0] == "PATH" and rl[1].split() == [".inputs", "(tree)", "-", "-"]


def test_list_as_json(deployed, e3):
    rows = json.loads(e3("list", deployed, "dev.inputs", "--json").out)
    assert [(r["path"], r["type"], r["status"], r["writable"]) for r in rows] == [
        (".inputs.a", "Integer", "set", True), (".inputs.b", "String", "unset", True), (".inputs.c", "Float", "set", True)
    ]
    assert rows[0]["size"] == 19 and len(rows[0]["hash"]) == 64 and rows[1]["hash"] is None
    assert json.loads(e3("list", deployed, "--json").out)[0]["name"] == "dev"


def test_list_of_unknown_path_is_one_line(deployed, e3):
    assert_one_line_error(e3("list", deployed, "dev.nope", expect=128), "dev.nope does not exist")


def test_get_prints_east_json_and_exact_beast2(deployed, e3):
    assert e3("get", deployed, "dev.inputs.c").out == "0.5\n"
    assert json.loads(e3("get", deployed, "dev.inputs.a", "-f", "json").out) == "1"
    raw = e3("get", deployed, "dev.inputs.a", "-f", "beast2").stdout
    assert east.decode(raw) == (INT, 1) or east.decode(raw)[1] == 1


def test_get_of_a_tree_or_unknown_dataset_is_one_line(deployed, e3):
    assert_one_line_error(e3("get", deployed, "dev.inputs", expect=128), "is a tree")
    assert_one_line_error(e3("get", deployed, "dev.inputs.zz", expect=128), "dataset dev.inputs.zz does not exist")
    assert_one_line_error(e3("get", deployed, "dev.inputs.b", expect=128), "unassigned")
    assert_one_line_error(e3("get", deployed, "dev..x", expect=2), "invalid dataset path")


@pytest.mark.parametrize(
    "name,data,extra",
    [("v.east", "7", []), ("v.json", '"7"', []), ("v.json", '"7"', ["--type", "Integer"]), ("v.east", "7", ["--type", ".Integer"])],
)
def test_set_reads_east_json_and_checks_type(deployed, e3, tmp_path, name, data, extra):
    out = e3("set", deployed, "dev.inputs.a", write(tmp_path, name, data), *extra).out
    assert out.startswith("Set dev.inputs.a from ")
    assert e3("get", deployed, "dev.inputs.a").out == "7\n"


def test_set_takes_a_json_number_for_an_integer(deployed, e3, tmp_path):
    # East's JSON writes an Integer as a string ("7"); people and other tools write 7.
    e3("set", deployed, "dev.inputs.a", write(tmp_path, "v.json", "7"))
    assert e3("get", deployed, "dev.inputs.a").out == "7\n"
    assert_one_line_error(e3("set", deployed, "dev.inputs.a", write(tmp_path, "f.json", "7.5"), expect=128), "integer")


TABLE = east.ArrayType(east.StructType([("name", east.StringType), ("n", INT), ("w", east.OptionType(east.FloatType))]))


@pytest.fixture
def table(repo, e3):
    make_package(repo, "tables", "1.0.0", inputs={"rows": (TABLE, [])})
    e3("workspace", "deploy", repo, "dev", "tables@1.0.0", "--create")
    return repo


def test_set_reads_a_csv_table_into_an_array_of_structs(table, e3, tmp_path):
    f = write(tmp_path, "rows.csv", 'n,name,w\n1,"a, b",0.5\n2,c,\n')  # columns in any order; empty = none
    e3("set", table, "dev.inputs.rows", f)
    assert e3("get", table, "dev.inputs.rows").out == '[(name="a, b", n=1, w=.some 0.5), (name="c", n=2, w=.none)]\n'
    assert e3("get", table, "dev.inputs.rows", "-f", "csv").out == 'name,n,w\n"a, b",1,0.5\nc,2,\n'


@pytest.mark.parametrize(
    "text,needle",
    [
        ("name,n\nx,one\n", "line 2, column 'n'"),
        ("name,w\nx,1\n", "no column 'n'"),
        ("name,n,zz\nx,1,2\n", "column 'zz' is not a field"),
        ("name,n\nx\n", "line 2: 1 cells"),
        ("", "csv is empty"),
    ],
)
def test_set_refuses_a_csv_that_does_not_fit_with_one_line(table, e3, tmp_path, text, needle):
    assert_one_line_error(e3("set", table, "dev.inputs.rows", write(tmp_path, "bad.csv", text), expect=128), needle)


def test_csv_is_only_for_tables(deployed, e3, tmp_path):
    assert_one_line_error(e3("set", deployed, "dev.inputs.a", write(tmp_path, "a.csv", "a\n1\n"), expect=128), "array of structs")


def test_set_from_beast2_stores_the_canonical_encoding(deployed, e3, tmp_path):
    from east.serialization.beast2 import encode_beast2_with_header_for  # deflate-compressed, not canonical

    f = write(tmp_path, "v.beast2", encode_beast2_with_header_for(INT)(7))
    e3("set", deployed, "dev.inputs.a", f)
    r = open_repository(deployed)
    assert workspace.read(r, "dev").datasets[("inputs", "a")] == r.objects.write(east.encode(7, INT))


def test_set_from_stdin_needs_a_format(deployed, e3):
    e3("set", deployed, "dev.inputs.a", "-", "--from", "east", input="9")
    assert e3("get", deployed, "dev.inputs.a").out == "9\n"
    e3("set", deployed, "dev.inputs.a", "-", "--format", "east", input="8")  # the option's older name still works
    assert e3("get", deployed, "dev.inputs.a").out == "8\n"
    assert_one_line_error(e3("set", deployed, "dev.inputs.a", "-", input="9", expect=2), "--from")


def test_set_refuses_wrong_types_and_writes_nothing(deployed, e3, tmp_path):
    before = head(deployed)
    cases = [
        (write(tmp_path, "s.beast2", east.encode("x", east.StringType)), [], "has type String, expected Integer"),
        (write(tmp_path, "s.east", '"x"'), [], "cannot set dev.inputs.a"),
        (write(tmp_path, "s.json", "[1]"), [], "cannot set dev.inputs.a"),
        (write(tmp_path, "i.east", "1"), ["--type", "String"], "has type Integer, not String"),
        (write(tmp_path, "bad.beast2", b"\x89East\r\n\x01junk"), [], "version 1"),
    ]
    for f, extra, needle in cases:
        assert_one_line_error(e3("set", deployed, "dev.inputs.a", f, *extra, expect=128), needle)
    assert head(deployed) == before


def test_set_refuses_task_outputs_and_unknown_paths(deployed, e3, tmp_path):
    f = write(tmp_path, "v.east", "1")
    assert_one_line_error(e3("set", deployed, "dev.tasks.double.output", f, expect=128), "not writable")
    assert_one_line_error(e3("set", deployed, "dev.inputs.zz", f, expect=128), "does not exist")
    assert_one_line_error(e3("set", deployed, "dev.inputs.a", tmp_path / "missing.east", expect=128), "no such file")
    assert_one_line_error(e3("set", deployed, "dev.inputs.a", write(tmp_path, "v.txt", "1"), expect=2), "format")


def test_set_of_the_same_value_makes_no_commit(deployed, e3, tmp_path):
    f = write(tmp_path, "v.east", "1")
    before = head(deployed)
    e3("set", deployed, "dev.inputs.a", f)
    assert head(deployed) == before


def test_concurrent_sets_from_two_processes_are_all_kept_in_linear_history(deployed, tmp_path):
    n = 8
    files = [write(tmp_path, f"v{i}.east", str(100 + i)) for i in range(n)]
    files_b = [write(tmp_path, f"s{i}.east", f'"s{i}"') for i in range(n)]
    script_a = " && ".join(f"e3 set {deployed} dev.inputs.a {f}" for f in files)
    script_b = " && ".join(f"e3 set {deployed} dev.inputs.b {f}" for f in files_b)
    procs = [subprocess.Popen(["bash", "-c", s], env=command_env(), stderr=subprocess.PIPE) for s in (script_a, script_b)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    r = open_repository(deployed)
    history = list(workspace.history(r, "dev"))
    sets = [e.message for e in history if e.message.startswith("set ")]
    assert len(sets) == 2 * n  # none lost
    assert all(len(r.git[e.commit].parents) <= 1 for e in history)  # linear
    view = workspace.read(r, "dev")
    assert east.decode(r.objects.read(view.datasets[("inputs", "a")]))[1] == 100 + n - 1
    assert east.decode(r.objects.read(view.datasets[("inputs", "b")]))[1] == f"s{n - 1}"


def test_null_dataset_refs_read_as_null_and_export_as_null(repo, e3, tmp_path):
    from e3.model.package import DatasetRef, DatasetSpec, Package, store_package

    r = open_repository(repo)
    specs = {"n": DatasetSpec(east.IntegerType, True), "z": DatasetSpec(east.NullType, True)}
    pkg = Package({}, {"inputs": specs}, {("inputs", k): DatasetRef("null") for k in specs})
    commit = refs.write_state(r, {("package",): store_package(r.objects, pkg)}, None, "import p@1")
    refs.update(r, "refs/packages/p/1", commit)
    e3("workspace", "deploy", repo, "dev", "p@1", "--create")
    assert e3("get", repo, "dev.inputs.n").out == "null\n"
    assert [line.split()[2] for line in e3("list", repo, "dev.inputs", "-l").out.splitlines()[1:]] == ["null", "null"]
    e3("workspace", "export", repo, "dev", tmp_path / "p.zip", "--version", "2")
    exported = workspace.current_package(r, workspace.read(r, "dev"))
    assert {p: ref.kind for p, ref in exported.refs.items()} == {("inputs", "n"): "null", ("inputs", "z"): "null"}


def test_a_dict_dataset_holding_a_value_lists_as_set(repo, e3, tmp_path):
    """A Dict has no null of its own (its null is Null's): asking the runtime for one was an internal error."""
    from e3.model.package import DatasetSpec, Package, store_package

    r = open_repository(repo)
    d = east.DictType(east.StringType, INT)
    commit = refs.write_state(r, {("package",): store_package(r.objects, Package({}, {"inputs": {"d": DatasetSpec(d, True)}}, {}))}, None, "import p@1")
    refs.update(r, "refs/packages/p/1", commit)
    e3("workspace", "deploy", repo, "dev", "p@1", "--create")
    e3("set", repo, "dev.inputs.d", write(tmp_path, "d.beast2", east.encode({"a": 1}, d)))
    row = e3("list", repo, "dev.inputs.d", "-l").out.splitlines()[1].split()
    assert row[:4] == ["d", "Dict<String,", "Integer>", "set"]


def test_status_shows_one_dataset_its_writer_and_whether_it_is_up_to_date(deployed, e3):
    out = e3("status", deployed, "dev.tasks.double.output").out.splitlines()
    assert out[0] == "dataset:    dev.tasks.double.output" and out[1] == "type:       Integer"
    assert out[2] == "value:      unassigned"
    assert out[3] == "written by: task double, never run" and out[4] == "read by:    greet"
    e3("start", deployed, "dev", "--filter", "double")
    out = e3("status", deployed, "dev.tasks.double.output").out.splitlines()
    assert out[2].startswith("value:      set, 19 B, ") and out[3] == "written by: task double, up to date"
    st = json.loads(e3("status", deployed, "dev.inputs.a", "--json").out)
    assert (st["written_by"], st["read_by"], st["type"], st["status"]) == (None, ["double"], "Integer", "set")
    assert_one_line_error(e3("status", deployed, "dev.inputs", expect=128), "is a tree")


# ------------------------------------------------------------------ e3 set of Beast2 without the East runtime

FLOATS = east.ArrayType(east.FloatType)


@pytest.fixture(scope="module")
def _arrays_once(tmp_path_factory):
    repo = tmp_path_factory.mktemp("arrays") / "repo"
    run("e3", "repo", "create", repo)
    inputs = {"a": (INT, 1), "xs": (FLOATS, None), "d": (east.DictType(east.StringType, INT), None), "s": (east.SetType(INT), None)}
    make_package(repo, inputs=inputs)
    run("e3", "workspace", "deploy", repo, "dev", "demo@1.0.0", "--create")
    return repo


@pytest.fixture
def arrays(tmp_path, _arrays_once):
    """demo@1.0.0 with inputs a (Integer), xs (Array<Float>), d (Dict<String, Integer>), s (Set<Integer>) and task double."""
    return copy_repository(_arrays_once, tmp_path / "repo")


def objects(repo) -> set:
    return {p.name for p in (repo / ".e3" / "objects").rglob("*") if p.is_file()}


def test_set_of_an_array_refuses_a_wrong_truncated_or_damaged_value_in_the_same_words_and_keeps_nothing(arrays, e3, tmp_path):
    value = east.encode([float(i) for i in range(1000)], FLOATS)
    damaged = bytearray(value)
    damaged[len(value) // 2] = 0xFF
    cases = [
        (east.encode("x", east.StringType), "e3 set: fatal: cannot set dev.inputs.xs: value has type String, expected Array<Float>"),
        (east.encode([1, 2], east.ArrayType(INT)), "e3 set: fatal: cannot set dev.inputs.xs: value has type Array<Integer>, expected Array<Float>"),
        (value[:-100], "e3 set: fatal: cannot set dev.inputs.xs: malformed beast2 value: truncated frame"),
        (value[:12], "e3 set: fatal: cannot set dev.inputs.xs: malformed beast2 value: truncated header"),
        (value + b"\x00", "e3 set: fatal: cannot set dev.inputs.xs: malformed beast2 value: bytes after the end of the value"),
        (bytes(damaged[:-1]), "e3 set: fatal: cannot set dev.inputs.xs: malformed beast2 value: truncated frame"),
    ]
    before, stored = head(arrays), objects(arrays)
    for data, line in cases:
        out = e3("set", arrays, "dev.inputs.xs", write(tmp_path, "v.beast2", data), expect=128)
        assert out.err == line + "\n"
    f = write(tmp_path, "i.beast2", east.encode(3, INT))
    assert e3("set", arrays, "dev.tasks.double.output", f, expect=128).err == (
        "e3 set: fatal: dev.tasks.double.output is not writable (it is computed by a task)\n")
    assert head(arrays) == before and objects(arrays) == stored


def test_set_of_an_array_not_in_the_canonical_encoding_stores_the_canonical_one(arrays, e3, tmp_path):
    from east.serialization.beast2 import encode_beast2_with_header_for  # deflate-compressed, not canonical

    xs = [0.5 * i for i in range(5000)]
    e3("set", arrays, "dev.inputs.xs", write(tmp_path, "v.beast2", encode_beast2_with_header_for(FLOATS)(xs)))
    r = open_repository(arrays)
    assert workspace.read(r, "dev").datasets[("inputs", "xs")] == r.objects.write(east.encode(xs, FLOATS))


def test_set_of_a_dict_or_a_set_is_checked_by_the_runtime(arrays, e3, tmp_path):
    d = east.DictType(east.StringType, INT)
    s = east.SetType(INT)
    e3("set", arrays, "dev.inputs.d", write(tmp_path, "d.beast2", east.encode({"a": 1, "b": 2}, d)))
    e3("set", arrays, "dev.inputs.s", write(tmp_path, "s.beast2", east.encode({3, 1, 2}, s)))
    r = open_repository(arrays)
    view = workspace.read(r, "dev")
    assert view.datasets[("inputs", "d")] == r.objects.write(east.encode({"a": 1, "b": 2}, d))
    assert view.datasets[("inputs", "s")] == r.objects.write(east.encode({1, 2, 3}, s))
    before = head(arrays)
    wrong = e3("set", arrays, "dev.inputs.s", write(tmp_path, "x.beast2", east.encode([1.0], FLOATS)), expect=128)
    assert wrong.err == "e3 set: fatal: cannot set dev.inputs.s: value has type Array<Float>, expected Set<Integer>\n"
    assert head(arrays) == before
