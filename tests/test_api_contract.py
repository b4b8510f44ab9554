"""The repository interface's contract (e3.api), written once and run against every implementation.

Each test takes the `repo` fixture: a new, empty repository reached through one
implementation of `e3.api.Repository`. IMPLEMENTATIONS lists how to make one;
adding an implementation (the HTTP client) is adding a factory there, and every
test then runs against it too. Repositories are real, in temporary
directories; nothing is mocked.

Errors are checked by class (which is what crosses a wire as the error's
kind), never by message.
"""
from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from e3_testing.runner_tasks import run_package

import e3.api as api
from e3 import east, errors, sdk
from e3.api import values as v


@dataclass(frozen=True)
class Implementation:
    name: str
    create: Callable[[Path], api.Repository]
    """A new, empty repository in (or for) the given fresh directory, opened."""


from e3_testing.api_server import shared as _served  # noqa: E402

IMPLEMENTATIONS = [
    Implementation("local", lambda d: api.create(d)),
    Implementation("remote", _served.create),
]


CRASH_SIGNS = ("Fatal Python error", "Segmentation fault", "malloc()", "free()", "corrupted", "Aborted")
"""What a crashing server leaves on its stderr (glibc's heap checks, Python's fault handler)."""


@pytest.fixture(scope="module", autouse=True)
def served_server_survives():
    """The shared e3-api-server outlives the suite: a server that crashed (heap corruption from the
    East runtime under threads did) otherwise shows only as the errors of the tests after it."""
    yield
    server = _served.server
    if server is None:
        return
    code, err = server.proc.poll(), server.stderr()
    signs = [s for s in CRASH_SIGNS if s in err]
    assert code is None and not signs, f"e3-api-server exited {code} during the suite ({', '.join(signs)}):\n{err[-3000:]}"


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda i: i.name)
def implementation(request) -> Implementation:
    return request.param


@pytest.fixture
def repo(implementation: Implementation, tmp_path: Path):
    r = implementation.create(tmp_path / "repo")
    yield r
    r.close()


@pytest.fixture(scope="session")
def runpkg_zip(tmp_path_factory) -> Path:
    """runpkg@1.0.0: inputs greeting (String, "Hello"), name (String, unset), times (Integer, 2);
    tasks greet (greeting, name), noisy (prints, times + 1), broken (fails), copy (bash, greet's output)."""
    path = tmp_path_factory.mktemp("zips") / "runpkg.zip"
    sdk.export(run_package(), path)
    return path


@pytest.fixture(scope="session")
def runpkg2_zip(tmp_path_factory) -> Path:
    """runpkg@1.0.0 with other contents (an extra input), for conflicts."""
    path = tmp_path_factory.mktemp("zips") / "runpkg-other.zip"
    extra = sdk.input("extra", east.IntegerType, 7)
    sdk.export(sdk.package("runpkg", "1.0.0", extra), path)
    return path


def imported(repo: api.Repository, zip_path: Path) -> v.PackageImport:
    with open(zip_path, "rb") as f:
        return repo.package_import(f)


def deployed(repo: api.Repository, zip_path: Path, ws: str = "dev") -> api.Repository:
    imported(repo, zip_path)
    repo.workspace_deploy(ws, "runpkg", create=True)
    return repo


def text(value: str) -> v.ValueInput:
    return v.ValueInput(io.BytesIO(value.encode()), "east", "<test>")


def value_of(repo: api.Repository, ws: str, path: tuple[str, ...]):
    with repo.dataset_get(ws, path) as f:
        return east.decode(f.read())[1]


# ---------------------------------------------------------------- opening


def test_a_url_is_a_server_never_a_folder(tmp_path, monkeypatch):
    from e3_testing.api_server import free_port

    monkeypatch.chdir(tmp_path)
    target = f"http://127.0.0.1:{free_port()}/repos/x"  # nothing listens there
    with pytest.raises(errors.E3Error, match="127.0.0.1"):
        api.open(target).workspace_list()
    with pytest.raises(errors.E3Error, match="127.0.0.1"):
        api.create(target)
    with pytest.raises(errors.UsageError, match="expected /repos/"):
        api.open("http://127.0.0.1:1/elsewhere")
    assert list(tmp_path.iterdir()) == []


def test_open_of_a_directory_without_a_repository_is_repository_not_found(tmp_path):
    with pytest.raises(errors.RepositoryNotFound):
        api.open(tmp_path)


def test_create_where_a_repository_is_refuses(tmp_path):
    api.create(tmp_path)
    with pytest.raises(errors.RepositoryExists):
        api.create(tmp_path)


def test_error_kinds_name_one_class_each():
    kinds = errors.kinds()
    assert errors.ORIGINAL_KINDS <= set(kinds)
    for kind, cls in kinds.items():
        assert cls.kind == kind and errors.error_class(kind) is cls
    assert errors.error_class("from-a-newer-server") is errors.E3Error


# ---------------------------------------------------------------- repository


def test_status_of_a_new_repository_is_empty(repo):
    st = repo.repository_status()
    assert (st.packages, st.workspaces, st.running) == ([], [], [])


def test_status_counts_packages_and_workspaces(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    st = repo.repository_status()
    assert st.packages == ["runpkg@1.0.0"]
    assert [(w.name, w.package) for w in st.workspaces] == [("dev", "runpkg@1.0.0")]


def test_gc_dry_run_removes_nothing_it_reports(repo, runpkg_zip):
    imported(repo, runpkg_zip)
    repo.package_remove("runpkg")
    report = repo.repository_gc(dry_run=True, prune="now")
    assert report.dry_run and report.removed
    assert all(repo.object_exists(h) for h, _ in report.removed)


def test_gc_removes_what_nothing_reaches(repo, runpkg_zip):
    imported(repo, runpkg_zip)
    repo.package_remove("runpkg")
    report = repo.repository_gc(prune="now")
    assert report.removed and not any(repo.object_exists(h) for h, _ in report.removed)


def test_gc_refuses_a_bad_expiry(repo):
    with pytest.raises(errors.UsageError):
        repo.repository_gc(prune="whenever")


def test_locks_name_a_run_in_progress(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    assert repo.repository_locks() == []
    run = repo.dataflow_start("dev")
    try:
        assert [lock.name for lock in repo.repository_locks()] == ["dataflow-dev"]
    finally:
        run.close()


def test_remove_refuses_while_a_run_holds_a_lock_unless_forced(implementation, tmp_path, runpkg_zip):
    repo = deployed(implementation.create(tmp_path / "repo"), runpkg_zip)
    run = repo.dataflow_start("dev")
    try:
        with pytest.raises(errors.Conflict):
            repo.repository_remove()
    finally:
        run.close()
    repo.repository_remove()
    with pytest.raises(errors.RepositoryNotFound):
        api.open(tmp_path / "repo")


# ---------------------------------------------------------------- packages


def test_package_import_then_list_and_get(repo, runpkg_zip):
    result = imported(repo, runpkg_zip)
    assert result.imported and result.object_count > 0 and result.package.spec == "runpkg@1.0.0"
    assert repo.package_list() == [result.package]
    details = repo.package_get("runpkg", "1.0.0")
    assert sorted(details.tasks) == ["broken", "copy", "greet", "noisy"]
    assert ("inputs", "name") in [d.path for d in details.datasets]


def test_package_import_twice_is_a_no_op(repo, runpkg_zip):
    imported(repo, runpkg_zip)
    again = imported(repo, runpkg_zip)
    assert not again.imported and again.object_count == 0


def test_package_import_of_other_contents_under_the_same_version_is_package_exists(repo, runpkg_zip, runpkg2_zip):
    imported(repo, runpkg_zip)
    with pytest.raises(errors.PackageExists):
        imported(repo, runpkg2_zip)


def test_package_import_with_replace_takes_over_the_version(repo, runpkg_zip, runpkg2_zip):
    imported(repo, runpkg_zip)
    with open(runpkg2_zip, "rb") as f:
        result = repo.package_import(f, replace=True)
    assert result.imported and result.replaced
    assert repo.package_get("runpkg").tasks == {}


def test_package_import_from_a_stream_that_cannot_seek(repo, runpkg_zip):
    import os

    read, write = os.pipe()
    data = runpkg_zip.read_bytes()
    writer = threading.Thread(target=lambda: (os.write(write, data), os.close(write)))
    writer.start()
    with open(read, "rb") as f:
        result = repo.package_import(f)
    writer.join()
    assert result.imported


def test_package_import_of_a_zip_that_is_not_a_package_is_package_invalid(repo, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(errors.PackageInvalid):
        with open(bad, "rb") as f:
            repo.package_import(f)


def test_package_export_writes_a_zip_that_imports_elsewhere(implementation, tmp_path, runpkg_zip):
    one = implementation.create(tmp_path / "one")
    two = implementation.create(tmp_path / "two")
    imported(one, runpkg_zip)
    out = io.BytesIO()
    exported = one.package_export("runpkg", None, out)
    assert exported.package.spec == "runpkg@1.0.0" and exported.object_count > 0
    out.seek(0)
    assert two.package_import(out).package == exported.package


def test_package_export_is_deterministic(repo, runpkg_zip):
    imported(repo, runpkg_zip)
    a, b = io.BytesIO(), io.BytesIO()
    repo.package_export("runpkg", "1.0.0", a)
    repo.package_export("runpkg", "1.0.0", b)
    assert a.getvalue() == b.getvalue()


@pytest.mark.parametrize("op", ["get", "remove", "export", "deploy"])
def test_an_unknown_package_is_package_not_found(repo, runpkg_zip, op):
    imported(repo, runpkg_zip)
    with pytest.raises(errors.PackageNotFound):
        if op == "get":
            repo.package_get("runpkg", "9.9.9")
        elif op == "remove":
            repo.package_remove("nosuch")
        elif op == "export":
            repo.package_export("nosuch", None, io.BytesIO())
        else:
            repo.workspace_deploy("dev", "nosuch", create=True)


@pytest.mark.parametrize("name", ["", "a/b", "..", "bad name"])
def test_a_bad_package_name_is_invalid_input(repo, name):
    with pytest.raises(errors.UsageError):
        repo.package_get(name, "1.0.0")


def test_package_remove_leaves_the_others(repo, runpkg_zip):
    imported(repo, runpkg_zip)
    removed = repo.package_remove("runpkg", "1.0.0")
    assert removed.spec == "runpkg@1.0.0" and repo.package_list() == []


# ---------------------------------------------------------------- workspaces


def test_workspace_create_then_list_and_get(repo):
    info = repo.workspace_create("dev")
    assert info.name == "dev" and not info.deployed
    assert [w.name for w in repo.workspace_list()] == ["dev"]
    assert repo.workspace_get("dev").commit == info.commit


def test_workspace_create_twice_is_workspace_exists(repo):
    repo.workspace_create("dev")
    with pytest.raises(errors.WorkspaceExists):
        repo.workspace_create("dev")


@pytest.mark.parametrize("name", ["", "a/b", "..", "bad name", "x.lock"])
def test_a_bad_workspace_name_is_invalid_input(repo, name):
    with pytest.raises(errors.UsageError):
        repo.workspace_create(name)


@pytest.mark.parametrize(
    "op",
    ["get", "status", "log", "diff", "reset", "remove", "export", "datasets", "dataset_get", "dataset_set", "start", "graph", "tasks", "cancel"],
)
def test_an_unknown_workspace_is_workspace_not_found(repo, op):
    calls = {
        "get": lambda: repo.workspace_get("nope"),
        "status": lambda: repo.workspace_status("nope"),
        "log": lambda: list(repo.workspace_log("nope")),
        "diff": lambda: repo.workspace_diff("nope"),
        "reset": lambda: repo.workspace_reset("nope", "HEAD~1"),
        "remove": lambda: repo.workspace_remove("nope"),
        "export": lambda: repo.workspace_export("nope", io.BytesIO()),
        "datasets": lambda: repo.dataset_list("nope"),
        "dataset_get": lambda: repo.dataset_get("nope", ("inputs", "x")),
        "dataset_set": lambda: repo.dataset_set("nope", ("inputs", "x"), text("1")),
        "start": lambda: repo.dataflow_start("nope"),
        "graph": lambda: repo.dataflow_graph("nope"),
        "tasks": lambda: repo.task_list("nope"),
        "cancel": lambda: repo.dataflow_cancel("nope"),
    }
    with pytest.raises(errors.WorkspaceNotFound):
        calls[op]()


@pytest.mark.parametrize("op", ["status", "datasets", "start", "graph", "tasks", "export"])
def test_a_workspace_with_nothing_deployed_is_workspace_not_deployed(repo, op):
    repo.workspace_create("dev")
    calls = {
        "status": lambda: repo.workspace_status("dev"),
        "datasets": lambda: repo.dataset_list("dev"),
        "start": lambda: repo.dataflow_start("dev"),
        "graph": lambda: repo.dataflow_graph("dev"),
        "tasks": lambda: repo.task_list("dev"),
        "export": lambda: repo.workspace_export("dev", io.BytesIO()),
    }
    with pytest.raises(errors.WorkspaceNotDeployed):
        calls[op]()


def test_workspace_deploy_to_a_missing_workspace_is_workspace_not_found_unless_create(repo, runpkg_zip):
    imported(repo, runpkg_zip)
    with pytest.raises(errors.WorkspaceNotFound):
        repo.workspace_deploy("dev", "runpkg", "1.0.0")
    assert [w.name for w in repo.workspace_list()] == []
    result = repo.workspace_deploy("dev", "runpkg", "1.0.0", create=True)
    assert result.created and result.package.spec == "runpkg@1.0.0"
    assert repo.workspace_get("dev").deployment.spec == "runpkg@1.0.0"


def test_workspace_redeploy_keeps_inputs_set_by_hand(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    repo.dataset_set("dev", ("inputs", "name"), text('"World"'))
    result = repo.workspace_deploy("dev", "runpkg")
    assert result.kept == [("inputs", "name")] and result.dropped == [] and not result.created


def test_workspace_status_names_unset_inputs_and_task_states(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    st = repo.workspace_status("dev")
    assert st.unset_inputs == [("inputs", "name")] and st.running_pid is None
    states = {t.name: t.state for t in st.tasks}
    assert states["greet"] == "waiting" and states["noisy"] == "never-run"


def test_workspace_log_lists_changes_newest_first(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    repo.dataset_set("dev", ("inputs", "name"), text('"World"'))
    messages = [e.message for e in repo.workspace_log("dev")]
    assert messages[0] == "set .inputs.name" and messages[-1] == "create workspace dev"


def test_workspace_diff_and_reset_put_an_earlier_state_back(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    repo.dataset_set("dev", ("inputs", "name"), text('"World"'))
    diff = repo.workspace_diff("dev")
    assert [(c.kind, c.path) for c in diff.changes] == [("A", ("inputs", "name"))]
    reset = repo.workspace_reset("dev", "HEAD~1")
    assert [(c.kind, c.path) for c in reset.changes] == [("D", ("inputs", "name"))]
    assert repo.dataset_status("dev", ("inputs", "name")).status == "unset"


def test_a_bad_revision_is_not_found(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    with pytest.raises(errors.NotFound):
        repo.workspace_reset("dev", "HEAD~99")


def test_workspace_export_then_import_carries_the_values(implementation, tmp_path, runpkg_zip):
    one = deployed(implementation.create(tmp_path / "one"), runpkg_zip)
    one.dataset_set("dev", ("inputs", "name"), text('"World"'))
    out = io.BytesIO()
    exported = one.workspace_export("dev", out, version="2.0.0")
    assert exported.package.spec == "runpkg@2.0.0"
    out.seek(0)
    two = implementation.create(tmp_path / "two")
    result = two.workspace_import("prod", out)
    assert result.imported.package == exported.package and result.deployed.created
    assert value_of(two, "prod", ("inputs", "name")) == "World"


def test_workspace_remove_then_it_is_gone(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    repo.workspace_remove("dev")
    assert repo.workspace_list() == []
    with pytest.raises(errors.WorkspaceNotFound):
        repo.workspace_get("dev")


@pytest.mark.parametrize("op", ["deploy", "remove", "import", "start"])
def test_a_workspace_a_run_holds_is_workspace_locked(repo, runpkg_zip, op):
    deployed(repo, runpkg_zip)
    run = repo.dataflow_start("dev")
    try:
        with pytest.raises(errors.WorkspaceLocked):
            if op == "deploy":
                repo.workspace_deploy("dev", "runpkg")
            elif op == "remove":
                repo.workspace_remove("dev")
            elif op == "import":
                with open(runpkg_zip, "rb") as f:
                    repo.workspace_import("dev", f)
            else:
                repo.dataflow_start("dev")
    finally:
        run.close()
    repo.workspace_deploy("dev", "runpkg")  # free again once the run is given up


# ---------------------------------------------------------------- datasets


def test_dataset_list_shows_trees_then_datasets(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    top = repo.dataset_list("dev")
    assert [(e.name, e.kind) for e in top] == [("inputs", "tree"), ("tasks", "tree")]
    inputs = repo.dataset_list("dev", ("inputs",))
    assert {e.name: e.status for e in inputs} == {"greeting": "set", "name": "unset", "times": "set"}
    assert all(e.size for e in inputs if e.status == "set")


def test_dataset_list_recursive_reaches_task_outputs(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    paths = [e.path for e in repo.dataset_list("dev", recursive=True) if e.kind == "dataset"]
    assert ("tasks", "greet", "output") in paths and ("inputs", "times") in paths


def test_dataset_set_then_get_gives_the_value_back(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    h = repo.dataset_set("dev", ("inputs", "times"), text("5"))
    assert value_of(repo, "dev", ("inputs", "times")) == 5
    st = repo.dataset_status("dev", ("inputs", "times"))
    assert st.hash == h and st.status == "set" and st.writable


@pytest.mark.parametrize("fmt,data", [("json", b'"6"'), ("beast2", None)])
def test_dataset_set_takes_every_value_format(repo, runpkg_zip, fmt, data):
    deployed(repo, runpkg_zip)
    if data is None:
        data = east.encode(6, east.IntegerType)
    repo.dataset_set("dev", ("inputs", "times"), v.ValueInput(io.BytesIO(data), fmt))
    assert value_of(repo, "dev", ("inputs", "times")) == 6


def test_dataset_set_of_the_wrong_type_is_type_mismatch(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    with pytest.raises(errors.TypeMismatch):
        repo.dataset_set("dev", ("inputs", "times"), v.ValueInput(io.BytesIO(east.encode("x", east.StringType)), "beast2"))
    with pytest.raises(errors.TypeMismatch):
        repo.dataset_set("dev", ("inputs", "times"), text("5"), type=east.StringType)


def test_dataset_set_of_text_that_does_not_parse_is_a_format_error(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    with pytest.raises((errors.FormatError, errors.TypeMismatch)):
        repo.dataset_set("dev", ("inputs", "times"), text('"not a number"'))


def test_dataset_set_of_a_task_output_is_not_writable(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    with pytest.raises(errors.DatasetNotWritable):
        repo.dataset_set("dev", ("tasks", "greet", "output"), text('"x"'))


@pytest.mark.parametrize("path", [("inputs", "nosuch"), ("nosuch",), ("inputs",)])
def test_an_unknown_dataset_is_dataset_not_found(repo, runpkg_zip, path):
    deployed(repo, runpkg_zip)
    with pytest.raises(errors.DatasetNotFound):
        repo.dataset_get("dev", path)
    with pytest.raises(errors.DatasetNotFound):
        repo.dataset_status("dev", path)
    with pytest.raises(errors.DatasetNotFound):
        repo.dataset_set("dev", path, text("1"))


def test_a_dataset_without_a_value_is_dataset_not_found(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    with pytest.raises(errors.DatasetNotFound):
        repo.dataset_get("dev", ("inputs", "name"))


# ---------------------------------------------------------------- dataflow


def test_dataflow_start_streams_task_events_and_ends_with_the_summary(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    repo.dataset_set("dev", ("inputs", "name"), text('"World"'))
    events = list(repo.dataflow_start("dev").events())
    assert isinstance(events[-1], v.RunFinished)
    summary = events[-1].summary
    states = {t.task: t.state for t in summary.tasks}
    assert states == {"greet": "ran", "noisy": "ran", "broken": "failed", "copy": "ran"}
    started = [e.task for e in events if isinstance(e, v.TaskStarted)]
    finished = [e.task for e in events if isinstance(e, v.TaskFinished)]
    assert sorted(started) == sorted(finished) == ["broken", "copy", "greet", "noisy"]
    assert finished.index("copy") > finished.index("greet")
    assert not summary.ok and summary.count("ran") == 3
    assert value_of(repo, "dev", ("tasks", "copy", "output")) == "Hello, World!"


def test_dataflow_start_again_reuses_every_result(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    repo.dataset_set("dev", ("inputs", "name"), text('"World"'))
    repo.dataflow_start("dev", task="greet").wait()
    summary = repo.dataflow_start("dev", task="greet").wait()
    assert [(t.task, t.state) for t in summary.tasks] == [("greet", "cached")]


def test_dataflow_start_of_an_unknown_task_is_task_not_found(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    with pytest.raises(errors.TaskNotFound):
        repo.dataflow_start("dev", task="nosuch")
    repo.dataflow_start("dev", task="noisy").wait()  # the refusal left the workspace free


def test_dataflow_start_with_an_unset_input_reports_the_task_stuck(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    summary = repo.dataflow_start("dev", task="greet").wait()
    assert [(t.task, t.state) for t in summary.tasks] == [("greet", "stuck")]


def test_dataflow_start_of_a_task_runs_what_it_needs_first_unless_not_upstream(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    repo.dataset_set("dev", ("inputs", "name"), text('"World"'))
    summary = repo.dataflow_start("dev", task="copy").wait()
    assert [(t.task, t.state) for t in summary.tasks] == [("copy", "ran"), ("greet", "ran")]
    summary = repo.dataflow_start("dev", task="copy", upstream=False, force=True).wait()
    assert [(t.task, t.state) for t in summary.tasks] == [("copy", "ran")]
    # --force with a task forces that task, not what it needs: greet's result is reused
    summary = repo.dataflow_start("dev", task="c*", force=True).wait()
    assert [(t.task, t.state) for t in summary.tasks] == [("copy", "ran"), ("greet", "cached")]


def test_dataflow_plan_says_what_would_run_what_is_cached_and_what_waits_without_running(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    plan = {t.task: t for t in repo.dataflow_plan("dev").tasks}
    assert (plan["greet"].action, plan["copy"].action, plan["noisy"].action) == ("stuck", "stuck", "run")
    assert "input .inputs.name is unassigned" in plan["greet"].reason and "greet cannot run" in plan["copy"].reason
    repo.dataset_set("dev", ("inputs", "name"), text('"World"'))
    plan = {t.task: t for t in repo.dataflow_plan("dev", task="copy").tasks}
    assert set(plan) == {"greet", "copy"} and plan["greet"].action == "run" and plan["greet"].task_id
    assert plan["copy"].action == "waits" and plan["copy"].waits_for == ["greet"] and plan["copy"].task_id is None
    repo.dataflow_start("dev", task="greet").wait()
    plan = {t.task: t for t in repo.dataflow_plan("dev", task="copy").tasks}
    assert (plan["greet"].action, plan["copy"].action) == ("up-to-date", "run")
    assert [t.action for t in repo.dataflow_plan("dev", task="greet", force=True).tasks] == ["run"]
    with pytest.raises(errors.TaskNotFound):
        repo.dataflow_plan("dev", task="nosuch")


def test_dataflow_cancel_from_another_thread_ends_the_run(repo, tmp_path):
    slow = sdk.custom_task("slow", [sdk.input("x", east.IntegerType, 1)], east.IntegerType, lambda b, ins, out: east.East.str("sleep 30"))
    zip_path = tmp_path / "slow.zip"
    sdk.export(sdk.package("slow", "1.0.0", slow), zip_path)
    with open(zip_path, "rb") as f:
        repo.package_import(f)
    repo.workspace_deploy("dev", "slow", create=True)
    run = repo.dataflow_start("dev")
    seen = []
    t0 = time.monotonic()
    for event in run.events():
        seen.append(event)
        if isinstance(event, v.TaskStarted):
            assert repo.dataflow_cancel("dev")
    assert time.monotonic() - t0 < 25
    assert [(t.task, t.state) for t in run.summary.tasks] == [("slow", "cancelled")]
    assert run.summary.cancelled and isinstance(seen[-1], v.RunFinished)
    assert not repo.dataflow_cancel("dev")  # nothing runs any more


def test_dataflow_graph_names_dependencies_in_order(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    graph = repo.dataflow_graph("dev")
    names = [t.name for t in graph.tasks]
    assert names.index("greet") < names.index("copy")
    copy = next(t for t in graph.tasks if t.name == "copy")
    assert copy.depends_on == ["greet"] and copy.output == ("tasks", "copy", "output")


# ---------------------------------------------------------------- tasks and logs


def test_task_list_and_get(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    tasks = repo.task_list("dev")
    assert [t.name for t in tasks] == ["broken", "copy", "greet", "noisy"]
    greet = repo.task_get("dev", "greet")
    assert greet.hash == next(t.hash for t in tasks if t.name == "greet")
    assert ("inputs", "name") in greet.inputs and greet.output == ("tasks", "greet", "output")


def test_an_unknown_task_is_task_not_found(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    for call in (
        lambda: repo.task_get("dev", "nosuch"),
        lambda: repo.task_executions("dev", "nosuch"),
        lambda: repo.log_read("dev", "nosuch"),
    ):
        with pytest.raises(errors.TaskNotFound):
            call()


def test_task_executions_record_each_outcome(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    assert repo.task_executions("dev", "noisy") == []
    repo.dataflow_start("dev", task="noisy").wait()
    repo.dataflow_start("dev", task="broken").wait()
    (ok,) = repo.task_executions("dev", "noisy")
    (bad,) = repo.task_executions("dev", "broken")
    assert ok.status == "success" and ok.output_hash and repo.object_exists(ok.output_hash)
    assert bad.status in ("failed", "error")


def test_log_read_gives_what_the_task_printed_with_offsets(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    repo.dataflow_start("dev", task="noisy").wait()
    log = repo.log_read("dev", "noisy")
    assert log.complete and b"counting to 2" in b"".join(c.data for c in log.chunks)
    assert log.offset >= log.chunks[-1].offset
    assert repo.log_read("dev", "noisy", offset=log.offset).chunks == []


def test_log_follow_ends_with_the_execution(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    repo.dataflow_start("dev", task="noisy").wait()
    chunks = list(repo.log_follow("dev", "noisy"))
    assert b"counting to 2" in b"".join(c.data for c in chunks)


def test_log_markers_give_each_executions_id_start_and_outcome(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    repo.dataflow_start("dev", task="noisy").wait()
    repo.dataflow_start("dev", task="noisy", force=True).wait()
    chunks = repo.log_read("dev", "noisy", all_executions=True, markers=True).chunks
    marks = [(c.stream, c.status) for c in chunks if c.stream in ("start", "end")]
    assert marks == [("start", None), ("end", "success"), ("start", None), ("end", "success")]
    starts = [c for c in chunks if c.stream == "start"]
    assert starts[0].execution_id != starts[1].execution_id and starts[0].time <= starts[1].time
    assert all(c.stream in ("stdout", "stderr") for c in repo.log_read("dev", "noisy").chunks)
    followed = [c.stream for c in repo.log_follow("dev", "noisy", markers=True)]
    assert followed[0] == "start" and followed[-1] == "end"


def test_log_of_a_task_that_never_ran_is_execution_not_found(repo, runpkg_zip):
    deployed(repo, runpkg_zip)
    with pytest.raises(errors.ExecutionNotFound):
        repo.log_read("dev", "noisy")


def test_task_run_runs_a_package_task_outside_any_workspace(repo, implementation, runpkg_zip):
    if implementation.name == "remote":
        pytest.skip("task_run is local only (e3 run refuses a URL with one line)")
    imported(repo, runpkg_zip)
    result = repo.task_run("runpkg", None, "greet", [text('"Hi"'), text('"you"')])
    assert result.status == "success" and not result.cached
    with repo.object_read(result.output_hash) as f:
        assert east.decode(f.read())[1] == "Hi, you!"
    again = repo.task_run("runpkg", "1.0.0", "greet", [text('"Hi"'), text('"you"')])
    assert again.cached and again.output_hash == result.output_hash


def test_task_run_with_the_wrong_inputs_is_refused(repo, implementation, runpkg_zip):
    if implementation.name == "remote":
        pytest.skip("task_run is local only (e3 run refuses a URL with one line)")
    imported(repo, runpkg_zip)
    with pytest.raises(errors.UsageError):
        repo.task_run("runpkg", None, "greet", [text('"Hi"')])
    with pytest.raises(errors.TaskNotFound):
        repo.task_run("runpkg", None, "nosuch", [])
    with pytest.raises(errors.PackageNotFound):
        repo.task_run("nosuch", None, "greet", [])


# ---------------------------------------------------------------- objects


def test_object_write_then_read_exists_size_and_head(repo):
    data = east.encode("hello", east.StringType)
    h = repo.object_write(io.BytesIO(data))
    assert repo.object_exists(h) and repo.object_size(h) == len(data)
    assert repo.object_resolve(h[:8]) == h
    with repo.object_read(h) as f:
        assert f.read() == data
    assert repo.object_head(h, 4) == (len(data), data[:4])


def test_object_writer_makes_many_durable_together(repo):
    values = [east.encode(i, east.IntegerType) for i in range(20)]
    with repo.object_writer() as w:
        hashes = [w.write(x) for x in values]
    assert all(repo.object_exists(h) for h in hashes)


def test_an_unknown_object_is_object_not_found(repo):
    missing = "0" * 64
    assert not repo.object_exists(missing)
    for call in (lambda: repo.object_read(missing), lambda: repo.object_size(missing), lambda: repo.object_resolve("0000")):
        with pytest.raises(errors.ObjectNotFound):
            call()


@pytest.mark.parametrize("name", ["xyz", "ab", "../../etc/passwd", "A" * 64])
def test_a_malformed_hash_is_invalid_hash(repo, name):
    with pytest.raises(errors.InvalidHash):
        repo.object_resolve(name)
