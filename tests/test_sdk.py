"""The Python SDK: declaring inputs and tasks, the objects it builds, and the zip it exports."""
from __future__ import annotations

import importlib.util
import shutil
import sys
import zipfile

import pytest

from e3_testing.commands import ROOT, run

from e3 import east, sdk
from e3.east import East, IntegerType, StringType
from e3.model.package import decode_package
from e3.model.task import TaskObject
from e3.model.types import TaskObjectType
from e3.storage.objects import hash_bytes

from e3_testing import packages

EXAMPLE = ROOT / "examples" / "my_package.py"


def load_example():
    spec = importlib.util.spec_from_file_location("my_package_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return sdk.build(load_example().package)


def task_object(built, name) -> TaskObject:
    _, value = east.decode(built.objects[built.package.tasks[name]], TaskObjectType)
    return TaskObject.from_east(value)


def command_argv(built, name, inputs, output):
    command = east.compile_function(built.objects[task_object(built, name).command_ir])
    return list(command(inputs, output))


def test_example_script_writes_the_same_zip_twice(tmp_path):
    run(sys.executable, EXAMPLE, tmp_path / "a.zip")
    run(sys.executable, EXAMPLE, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert not list(tmp_path.glob("*.partial"))


def test_the_same_source_builds_the_same_package_however_often_it_is_loaded(example):
    # The builder invents names for nested lambdas' parameters from one counter per process, and
    # numbers source locations by who called it: loaded again (as `e3 watch` does after a save),
    # the same source gave another package hash, and importing the exported zip then failed.
    again = sdk.build(load_example().package)
    assert again.package_hash == sdk.build(load_example().package).package_hash == example.package_hash
    assert again.objects == example.objects


def test_exported_zip_names_the_package_and_every_object_by_its_hash(example, tmp_path):
    sdk.export(example, tmp_path / "p.zip")
    with zipfile.ZipFile(tmp_path / "p.zip") as z:
        names = z.namelist()
        assert names[0] == "packages/my-package/1.0.0"
        assert z.read(names[0]) == (example.package_hash + "\n").encode()
        for name in names[1:]:
            data = z.read(name)
            assert name == f"objects/{hash_bytes(data)[:2]}/{hash_bytes(data)[2:]}.beast2"
        assert len(names) - 1 == len(example.objects)
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())


def test_package_tree_has_writable_inputs_and_read_only_task_datasets(example):
    datasets = example.package.datasets()
    assert sorted(datasets) == [
        ("inputs", "greeting"),
        ("inputs", "name"),
        ("inputs", "times"),
        ("tasks", "greet", "function_ir"),
        ("tasks", "greet", "output"),
        ("tasks", "my-task", "function_ir"),
        ("tasks", "my-task", "output"),
        ("tasks", "shout", "output"),
    ]
    assert all(spec.writable == (path[0] == "inputs") for path, spec in datasets.items())
    assert east.type_equal(datasets[("tasks", "greet", "function_ir")].type, east.IR_TYPE)
    refs = example.package.refs
    assert refs[("tasks", "my-task", "output")].kind == "unassigned"
    assert east.decode(example.objects[refs[("inputs", "times")].hash]) [1] == 2
    assert refs[("tasks", "greet", "function_ir")].kind == "value"


def test_input_without_default_starts_unassigned():
    x = sdk.input("x", IntegerType)
    built = sdk.build(sdk.package("p", "1", x))
    assert built.package.refs[("inputs", "x")].kind == "unassigned"


def test_package_object_decodes_as_the_original_engines_package_type(example):
    back = decode_package(example.objects[example.package_hash])
    assert back.tasks == example.package.tasks and back.refs == example.package.refs


def test_east_task_reads_its_function_ir_first_and_writes_the_output_dataset(example):
    task = task_object(example, "my-task")
    assert task.inputs == (("tasks", "my-task", "function_ir"), ("tasks", "greet", "output"), ("inputs", "times"))
    assert task.output == ("tasks", "my-task", "output")


def test_east_task_command_is_the_original_engines_east_py_argv(example):
    argv = command_argv(example, "my-task", ["/s/input-0.beast2", "/s/input-1.beast2", "/s/input-2.beast2"], "/s/output.beast2")
    assert argv == [
        "east-py", "run", "-p", "east-py-std",
        "-i", "/s/input-1.beast2", "-i", "/s/input-2.beast2",
        "-o", "/s/output.beast2", "/s/input-0.beast2",
    ]  # fmt: skip


def test_runner_option_replaces_the_argv_prefix():
    x = sdk.input("x", IntegerType, 1)
    t = sdk.task("t", [x], packages.INCREMENT, runner=["uv", "run", "east-py", "run", "-p", "east-py-std"])
    built = sdk.build(sdk.package("p", "1", t))
    argv = command_argv(built, "t", ["ir", "a"], "out")
    assert argv == ["uv", "run", "east-py", "run", "-p", "east-py-std", "-i", "a", "-o", "out", "ir"]


def test_custom_task_command_is_bash_with_the_script_built_from_the_paths(example):
    task = task_object(example, "shout")
    assert task.inputs == (("tasks", "my-task", "output"),)
    argv = command_argv(example, "shout", ["/s/input-0.beast2"], "/s/output.beast2")
    assert argv[:2] == ["bash", "-c"] and len(argv) == 3
    assert "'/s/input-0.beast2'" in argv[2] and "'/s/output.beast2'" in argv[2]


def test_quote_makes_any_path_one_bash_word(tmp_path):
    f = East.function([StringType], StringType, lambda b, s: sdk.quote(s))
    tricky = "it's a $(dir) with spaces"
    out = run("bash", "-c", f"printf %s {f(tricky)}")
    assert out.out == tricky


@pytest.mark.skipif(shutil.which("east-py") is None, reason="east-py is not installed")
def test_east_py_runs_the_stored_function_ir_on_the_stored_inputs(example, tmp_path):
    def write(name, obj_hash):
        (tmp_path / name).write_bytes(example.objects[obj_hash])
        return str(tmp_path / name)

    refs = example.package.refs
    ir = write("ir.beast2", refs[("tasks", "greet", "function_ir")].hash)
    g = write("g.beast2", refs[("inputs", "greeting")].hash)
    n = write("n.beast2", refs[("inputs", "name")].hash)
    argv = command_argv(example, "greet", [ir, g, n], str(tmp_path / "out.beast2"))
    run(*argv)
    assert east.decode((tmp_path / "out.beast2").read_bytes(), StringType)[1] == "Hello, World!"


def test_custom_task_script_upper_cases_its_input(example, tmp_path):
    if run("e3", "convert", "--help", expect=None).returncode != 0:
        pytest.skip("e3 convert is not available yet")
    (tmp_path / "in.beast2").write_bytes(east.encode("Hello, World!", StringType))
    argv = command_argv(example, "shout", [str(tmp_path / "in.beast2")], str(tmp_path / "out.beast2"))
    run(*argv)
    assert east.decode((tmp_path / "out.beast2").read_bytes(), StringType)[1] == "HELLO, WORLD!"


def test_chain_of_a_thousand_tasks_shares_one_function_and_one_command():
    built = sdk.build(packages.chain(1000))
    assert len(built.package.tasks) == 1000
    # the default of x, one function IR, one command IR, 1000 task objects, the package object
    assert len(built.objects) == 1000 + 4


def test_package_collects_upstream_tasks_and_inputs_of_the_items_given(example):
    pkg = load_example().package
    assert sorted(pkg.tasks) == ["greet", "my-task", "shout"]
    assert sorted(pkg.inputs) == ["greeting", "name", "times"]


def test_function_parameter_type_must_match_the_input_type():
    x = sdk.input("x", StringType, "a")
    with pytest.raises(sdk.SdkError, match="parameter 0 has type Integer but input inputs.x has type String"):
        sdk.task("t", [x], packages.INCREMENT)


def test_function_parameter_count_must_match_the_inputs():
    x = sdk.input("x", IntegerType, 1)
    with pytest.raises(sdk.SdkError, match="takes 2 parameters but the task has 1 inputs"):
        sdk.task("t", [x], packages.ADD)


def test_task_fn_must_be_an_east_function():
    with pytest.raises(sdk.SdkError, match="must be an East.function"):
        sdk.task("t", [], lambda b: 1)


def test_a_task_itself_is_not_an_input():
    x = sdk.input("x", IntegerType, 1)
    t = sdk.task("t", [x], packages.INCREMENT)
    with pytest.raises(sdk.SdkError, match="use t.output"):
        sdk.task("u", [t], packages.INCREMENT)


@pytest.mark.parametrize("bad", ["a/b", "", "..", ".hidden", "sp ace"])
def test_names_that_cannot_be_one_path_segment_are_refused(bad):
    with pytest.raises(sdk.SdkError, match="invalid input name"):
        sdk.input(bad, IntegerType)


def test_two_different_tasks_with_one_name_are_refused():
    x = sdk.input("x", IntegerType, 1)
    a = sdk.task("t", [x], packages.INCREMENT)
    b = sdk.task("t", [x], packages.INCREMENT)
    with pytest.raises(sdk.SdkError, match="two different tasks are named 't'"):
        sdk.package("p", "1", a, b)


def test_default_that_does_not_fit_the_type_is_refused_when_building():
    x = sdk.input("x", IntegerType, "ten")
    with pytest.raises(sdk.SdkError, match="input 'x': default value does not fit type Integer"):
        sdk.build(sdk.package("p", "1", x))


def test_package_name_with_at_sign_is_refused():
    with pytest.raises(sdk.SdkError, match="'@' separates name and version"):
        sdk.package("a@b", "1")
