"""The model of stored objects: dataset paths, task objects, package objects, task ids."""
from __future__ import annotations

import pytest

from e3 import east
from e3.errors import FormatError, UsageError
from e3.storage.identity import inputs_hash, task_id
from e3.model.package import UNASSIGNED, DatasetRef, DatasetSpec, Package, load_package, store_package
from e3.model.paths import format_tree_path, parse_dataset_path, parse_tree_path
from e3.model.task import TaskObject, load_task, store_task
from e3.storage.repository import open_repository


def test_dataset_path_splits_workspace_from_tree_path():
    assert parse_dataset_path("dev.tasks.my-task.output") == ("dev", ("tasks", "my-task", "output"))
    assert parse_dataset_path("dev") == ("dev", ())


def test_backticks_quote_dots_and_print_back():
    ws, path = parse_dataset_path("dev.inputs.`a.b`")
    assert path == ("inputs", "a.b")
    assert format_tree_path(path) == ".inputs.`a.b`"
    assert parse_tree_path(format_tree_path(path)) == path


@pytest.mark.parametrize("bad", ["dev..x", ".x", "dev.`open"])
def test_malformed_dataset_paths_are_usage_errors(bad):
    with pytest.raises(UsageError):
        parse_dataset_path(bad)


def test_task_id_pins_the_inputs_hash_of_the_original_engine():
    # SHA-256 of the input hashes joined by one NUL byte, as the original engine computes it
    assert inputs_hash(["a", "b"]) == "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138"
    assert task_id("t", ["a"]) != task_id("t", ["b"])
    assert task_id("t", ["a"]) != task_id("u", ["a"])


def test_task_and_package_objects_round_trip_through_the_store(repo):
    store = open_repository(repo).objects
    task = TaskObject("ab" * 32, (("tasks", "f", "function_ir"), ("inputs", "x")), ("tasks", "f", "output"))
    th = store_task(store, task)
    assert load_task(store, th) == task
    pkg = Package(
        {"f": th},
        {"inputs": {"x": DatasetSpec(east.parse_type("Integer"), True)}, "tasks": {"f": {"output": DatasetSpec(east.parse_type("Integer"), False)}}},
        {("inputs", "x"): DatasetRef("value", "cd" * 32, {}), ("tasks", "f", "output"): UNASSIGNED},
    )
    ph = store_package(store, pkg)
    back = load_package(store, ph)
    assert back.tasks == pkg.tasks and back.refs == pkg.refs
    assert list(back.datasets()) == [("inputs", "x"), ("tasks", "f", "output")]
    with pytest.raises(FormatError, match="wrong type"):
        load_package(store, th)


def test_newest_execution_record_replaces_the_previous_one(repo):
    from e3.storage import records

    r = open_repository(repo)
    tid = task_id("t" * 64, ["a" * 64])
    assert records.latest(r, tid) is None
    records.write(r, tid, records.Record("running", "e1", ("a" * 64,), records.now(), pid=1, pid_start_time=2, boot_id="b"))
    assert records.latest(r, tid).kind == "running"
    done = records.Record("success", "e1", ("a" * 64,), records.now(), records.now(), output_hash="f" * 64)
    records.write(r, tid, done)
    back = records.latest(r, tid)
    assert (back.kind, back.output_hash, back.pid) == ("success", "f" * 64, None)


def test_record_pointer_summarises_kind_and_output_without_decoding(repo):
    from e3.storage import records

    r = open_repository(repo)
    tid = task_id("t" * 64, [])
    done = records.Record("success", "e1", (), records.now(), records.now(), output_hash="f" * 64)
    h = records.write(r, tid, done, durable=False)
    r.objects.sync()
    s = records.summary(r, tid)
    assert (s.record_hash, s.kind, s.output_hash) == (h, "success", "f" * 64)
    assert not r.objects.exists(h)  # the record is in the pointer, not the store (e3.storage.records)


def test_writing_a_value_again_repairs_an_object_a_power_loss_left_short(repo):
    import os

    store = open_repository(repo).objects
    h = store.write(b"\x89East\r\n\x05 some bytes", durable=False)
    path = store.path(h)
    os.chmod(path, 0o644)
    with open(path, "wb"):
        pass  # what a power cut can leave of a rename whose data never reached the disk
    assert store.write(b"\x89East\r\n\x05 some bytes") == h
    assert store.read(h) == b"\x89East\r\n\x05 some bytes"
