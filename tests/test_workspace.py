"""Workspaces: create, deploy, redeploy, remove, history (log, diff, reset), export, status."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile

import pytest

from e3_testing.commands import assert_one_line_error, command_env, run, write
from e3_testing.pkgfixture import FLOAT, INT, STR, make_package

from e3.storage import refs
from e3.model.package import decode_package
from e3.repo import workspace
from e3.storage.repository import open_repository


def test_create_makes_an_undeployed_workspace_listed_as_such(repo, e3):
    out = e3("workspace", "create", repo, "dev").out
    assert out.startswith("Created workspace: dev\n")
    assert e3("workspace", "list", repo).out == "Workspaces:\n  dev (not deployed)\n"
    assert e3("list", repo).out == "dev  (not deployed)\n"


def test_no_workspaces_says_so(repo, e3):
    assert e3("workspace", "list", repo).out == "No workspaces\n"


def test_create_refuses_an_existing_workspace(repo, e3):
    e3("workspace", "create", repo, "dev")
    assert_one_line_error(e3("workspace", "create", repo, "dev", expect=128), "already exists")


@pytest.mark.parametrize("bad", ["a/b", ".hidden", "x..y", "a b", "end.lock"])
def test_create_refuses_invalid_workspace_names(repo, e3, bad):
    assert_one_line_error(e3("workspace", "create", repo, bad, expect=2), "invalid workspace name")


def test_deploy_writes_initial_values_as_one_commit(demo_dev, e3):
    r = open_repository(demo_dev)
    view = workspace.read(r, "dev")
    assert view.state.package_name == "demo" and view.state.package_version == "1.0.0"
    # b and task outputs unassigned; the East tasks' function IR is assigned
    assert sorted(view.datasets) == [("inputs", "a"), ("inputs", "c"), ("tasks", "double", "function_ir"), ("tasks", "greet", "function_ir")]
    tree = refs.read_state(r, view.commit)
    assert (".workspace",) in tree and ("inputs", "b") not in tree
    assert e3("get", demo_dev, "dev.inputs.a").out == "1\n"


def test_deploy_without_version_takes_the_only_version(repo, e3):
    make_package(repo, version="1.9.0", inputs={"a": (INT, 7)})
    out = e3("workspace", "deploy", repo, "dev", "demo", "--create").out
    assert out.startswith("Deployed demo@1.9.0 to workspace: dev\n")
    assert e3("get", repo, "dev.inputs.a").out == "7\n"
    make_package(repo, version="1.10.0")
    r = e3("workspace", "deploy", repo, "dev", "demo", expect=None)
    assert r.returncode != 0
    assert_one_line_error(r, "1.9.0, 1.10.0")


def test_deploy_to_an_unknown_workspace_is_refused_unless_create(repo, e3):
    make_package(repo)
    r = e3("workspace", "deploy", repo, "nosuchws", "demo", expect=128)
    assert_one_line_error(r, "workspace nosuchws does not exist", "--create")
    assert e3("workspace", "list", repo).out == "No workspaces\n"
    assert e3("workspace", "deploy", repo, "dev", "demo", "--create").out.startswith("Deployed demo@1.0.0 to workspace: dev\n")


def test_deploy_of_unknown_package_is_one_line_and_writes_nothing(repo, e3):
    e3("workspace", "create", repo, "dev")
    before = refs.read(open_repository(repo), "refs/workspaces/dev")
    assert_one_line_error(e3("workspace", "deploy", repo, "dev", "nope@1", expect=128), "package nope@1 not found")
    make_package(repo)
    assert_one_line_error(e3("workspace", "deploy", repo, "dev", "demo@2.0", expect=128), "demo@2.0 not found", "1.0.0")
    assert refs.read(open_repository(repo), "refs/workspaces/dev") == before


def test_redeploy_keeps_inputs_that_still_fit_and_names_the_dropped(demo_dev, e3, tmp_path):
    e3("set", demo_dev, "dev.inputs.a", write(tmp_path, "a.east", "41"))
    e3("set", demo_dev, "dev.inputs.b", write(tmp_path, "b.east", '"hi"'))
    e3("set", demo_dev, "dev.inputs.c", write(tmp_path, "c.east", "2.5"))
    # 2.0.0: a keeps its type, b becomes an Integer, c is gone, d is new
    make_package(demo_dev, version="2.0.0", inputs={"a": (INT, 1), "b": (INT, 3), "d": (FLOAT, 1.0)})
    out = e3("workspace", "deploy", demo_dev, "dev", "demo@2.0.0").out
    assert "kept .inputs.a" in out
    assert "dropped .inputs.b" in out and "dropped .inputs.c" in out
    assert e3("get", demo_dev, "dev.inputs.a").out == "41\n"
    assert e3("get", demo_dev, "dev.inputs.b").out == "3\n"
    assert e3("get", demo_dev, "dev.inputs.d").out == "1.0\n"
    log = e3("workspace", "log", demo_dev, "dev").out
    assert "deploy demo@2.0.0" in log and "dropped: .inputs.b, .inputs.c" in log


def test_redeploy_applies_new_defaults_to_inputs_the_user_never_set(demo_dev, e3):
    make_package(demo_dev, version="2.0.0", inputs={"a": (INT, 5), "b": (STR, None), "c": (FLOAT, 0.5)})
    out = e3("workspace", "deploy", demo_dev, "dev", "demo@2.0.0").out
    assert "kept" not in out and "dropped" not in out
    assert e3("get", demo_dev, "dev.inputs.a").out == "5\n"


def test_remove_deletes_the_workspace(demo_dev, e3):
    out = e3("workspace", "remove", demo_dev, "dev").out
    assert out.startswith("Removed workspace: dev\n")
    assert e3("workspace", "list", demo_dev).out == "No workspaces\n"
    assert_one_line_error(e3("workspace", "remove", demo_dev, "dev", expect=128), "workspace dev does not exist")


def test_unknown_workspace_is_one_line_everywhere(repo, e3, tmp_path):
    f = write(tmp_path, "v.east", "1")
    for args in (
        ("workspace", "status", repo, "nope"),
        ("workspace", "log", repo, "nope"),
        ("workspace", "diff", repo, "nope"),
        ("workspace", "export", repo, "nope", tmp_path / "x.zip"),
        ("get", repo, "nope.inputs.a"),
        ("set", repo, "nope.inputs.a", f),
        ("list", repo, "nope"),
    ):
        assert_one_line_error(e3(*args, expect=128), "workspace nope does not exist")
    assert not (tmp_path / "x.zip").exists()


def test_undeployed_workspace_has_no_datasets(repo, e3):
    e3("workspace", "create", repo, "dev")
    assert_one_line_error(e3("get", repo, "dev.inputs.a", expect=128), "not deployed")


HOLD = """
import sys
from e3.storage.locks import Lock
from e3.storage.repository import open_repository
lock = Lock(open_repository(sys.argv[1]), "dataflow-dev", "dataflow").acquire(wait=False)
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def running(demo_dev):
    """Hold locks/dataflow-dev.lock from another process, as `e3 start` does."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(demo_dev)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=command_env())
    assert proc.stdout.readline() == b"held\n"
    yield proc
    proc.stdin.close()
    proc.wait(timeout=10)


def test_deploy_and_remove_refuse_while_the_workspace_runs(running, demo_dev, e3, tmp_path):
    head = refs.read(open_repository(demo_dev), "refs/workspaces/dev")
    r = e3("workspace", "deploy", demo_dev, "dev", "demo@1.0.0", expect=128)
    assert_one_line_error(r, f"workspace dev is running (pid {running.pid})")
    assert_one_line_error(e3("workspace", "remove", demo_dev, "dev", expect=128), "is running")
    # set is allowed alongside a run
    e3("set", demo_dev, "dev.inputs.a", write(tmp_path, "a.east", "2"))
    assert "Running: e3 start, pid" in e3("workspace", "status", demo_dev, "dev").out
    assert refs.read(open_repository(demo_dev), "refs/workspaces/dev") != head


def test_log_lists_history_newest_first(demo_dev, e3, tmp_path):
    e3("set", demo_dev, "dev.inputs.a", write(tmp_path, "a.east", "2"))
    lines = e3("workspace", "log", demo_dev, "dev").out.splitlines()
    assert [line.split("  ", 2)[2] for line in lines] == ["set .inputs.a", "deploy demo@1.0.0", "create workspace dev"]
    assert len(e3("workspace", "log", demo_dev, "dev", "-n", "1").out.splitlines()) == 1
    assert e3("workspace", "log", demo_dev, "dev", "dev~1").out.splitlines()[0].endswith("deploy demo@1.0.0")


def test_diff_names_changed_datasets_between_revisions(demo_dev, e3, tmp_path):
    e3("set", demo_dev, "dev.inputs.a", write(tmp_path, "a.east", "2"))
    e3("set", demo_dev, "dev.inputs.b", write(tmp_path, "b.east", '"x"'))
    assert e3("workspace", "diff", demo_dev, "dev", "--name-status").out == "A\t.inputs.b\n"
    assert e3("workspace", "diff", demo_dev, "dev", "dev~2", "--name-status").out == "M\t.inputs.a\nA\t.inputs.b\n"
    first = e3("workspace", "log", demo_dev, "dev").out.splitlines()[-1].split()[0]
    out = e3("workspace", "diff", demo_dev, "dev", first, "dev~2", "--name-status").out
    assert out.startswith("P\t(not deployed) -> demo@1.0.0\n") and "A\t.inputs.a" in out
    assert e3("workspace", "diff", demo_dev, "dev", "dev@{1}", "dev@{0}", "--name-status").out == "A\t.inputs.b\n"


def test_diff_shows_short_values_inline_and_long_ones_by_hash(demo_dev, e3, tmp_path):
    e3("set", demo_dev, "dev.inputs.a", write(tmp_path, "a.east", "2"))
    e3("set", demo_dev, "dev.inputs.b", write(tmp_path, "b.east", '"' + "x" * 100 + '"'))
    out = e3("workspace", "diff", demo_dev, "dev", "dev~2").out.splitlines()
    assert out[0] == "M\t.inputs.a\t1 -> 2"
    kind, path, change = out[1].split("\t")
    assert (kind, path) == ("A", ".inputs.b") and change.startswith("(unassigned) -> ")
    h = run("e3-rev-parse", demo_dev, "dev.inputs.b").out.strip()
    assert change.endswith(f"{h[:12]}… (119 B)"), change


@pytest.mark.parametrize("rev", ["dev~9", "dev@{9}", "zzz", "dev^2", "ffff"])
def test_diff_refuses_bad_revisions_in_one_line(demo_dev, e3, rev):
    r = e3("workspace", "diff", demo_dev, "dev", rev, expect=None)
    assert r.returncode in (2, 128)
    assert_one_line_error(r, "revision")


def test_reset_restores_an_earlier_tree_as_a_new_commit(demo_dev, e3, tmp_path):
    e3("set", demo_dev, "dev.inputs.a", write(tmp_path, "a.east", "2"))
    e3("set", demo_dev, "dev.inputs.b", write(tmp_path, "b.east", '"x"'))
    out = e3("workspace", "reset", demo_dev, "dev", "dev~2").out
    assert out.startswith("Reset workspace dev to dev~2 (2 datasets changed)")
    assert e3("get", demo_dev, "dev.inputs.a").out == "1\n"
    assert_one_line_error(e3("get", demo_dev, "dev.inputs.b", expect=128), "unassigned")
    log = e3("workspace", "log", demo_dev, "dev").out.splitlines()
    assert len(log) == 5 and "reset to" in log[0]
    # the reset is undone by resetting to the state before it
    e3("workspace", "reset", demo_dev, "dev", "dev@{1}")
    assert e3("get", demo_dev, "dev.inputs.a").out == "2\n"


def test_workspace_import_refuses_while_running_and_imports_nothing(running, demo_dev, e3, tmp_path):
    e3("workspace", "export", demo_dev, "dev", tmp_path / "x.zip", "--version", "9.9.9")
    assert_one_line_error(e3("workspace", "import", demo_dev, "dev", tmp_path / "x.zip", expect=128), "is running")
    assert "9.9.9" not in e3("package", "list", demo_dev).out


def test_reset_that_changes_the_deployment_refuses_while_running(running, demo_dev, e3):
    assert_one_line_error(e3("workspace", "reset", demo_dev, "dev", "dev~1", expect=128), "is running")


def test_reset_refuses_a_commit_outside_the_workspace(demo_dev, e3):
    r = open_repository(demo_dev)
    pkg_commit = refs.read(r, "refs/packages/demo/1.0.0")
    assert_one_line_error(e3("workspace", "reset", demo_dev, "dev", pkg_commit, expect=128), "not in the history")


def test_export_writes_a_package_zip_with_current_values(demo_dev, e3, tmp_path):
    e3("set", demo_dev, "dev.inputs.a", write(tmp_path, "a.east", "42"))
    zpath = tmp_path / "ws.zip"
    out = e3("workspace", "export", demo_dev, "dev", zpath, "--name", "snap", "--version", "2.0").out
    assert out.startswith("Exported workspace dev as snap@2.0\n")
    with zipfile.ZipFile(zpath) as z:
        names = z.namelist()
        pkg_hash = z.read("packages/snap/2.0").decode().strip()
        assert f"objects/{pkg_hash[:2]}/{pkg_hash[2:]}.beast2" in names
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())
        pkg = decode_package(z.read(f"objects/{pkg_hash[:2]}/{pkg_hash[2:]}.beast2"))
    r = open_repository(demo_dev)
    assert not r.objects.exists(pkg_hash)  # made for the zip only: exporting writes nothing into the repository
    a = pkg.refs[("inputs", "a")]
    assert a.kind == "value" and f"objects/{a.hash[:2]}/{a.hash[2:]}.beast2" in names
    assert pkg.refs[("inputs", "b")].kind == "unassigned"
    assert not (tmp_path / "ws.zip.partial").exists()
    # default name and version: the deployed package's, with the new package hash
    out = e3("workspace", "export", demo_dev, "dev", tmp_path / "d.zip").out
    assert f"as demo@1.0.0-{pkg_hash[:8]}\n" in out
    assert (tmp_path / "d.zip").read_bytes() != b"" and zpath.read_bytes() != (tmp_path / "d.zip").read_bytes()


def test_status_shows_task_states_and_unset_inputs(demo_dev, e3):
    out = e3("workspace", "status", demo_dev, "dev").out
    assert "Package: demo@1.0.0" in out
    assert "  double: never run\n" in out
    assert "  greet: waiting (unset: .inputs.b; on task double)\n    depends on: double\n" in out
    assert "Unset inputs:\n  .inputs.b\n" in out


def test_status_reads_execution_records_for_current_inputs(demo_dev, e3, tmp_path):
    from e3.storage import records
    from e3.storage.identity import task_id

    from e3.model.task import load_task

    r = open_repository(demo_dev)
    view = workspace.read(r, "dev")
    double = view.package.tasks["double"]
    task = load_task(r.objects, double)
    ins = [view.datasets[p] for p in task.inputs]
    out_hash = r.objects.write(b"not really an integer")
    rec = records.Record("success", "e1", tuple(ins), records.now(), records.now(), output_hash=out_hash)
    records.write(r, task_id(double, ins), rec)
    assert "  double: stale (result cached)\n" in e3("workspace", "status", demo_dev, "dev").out
    workspace.set_dataset(r, "dev", ("tasks", "double", "output"), out_hash, check_type=False, force=True)
    assert "  double: up to date\n" in e3("workspace", "status", demo_dev, "dev").out
    e3("set", demo_dev, "dev.inputs.a", write(tmp_path, "a.east", "5"))
    assert "  double: stale (inputs changed)\n" in e3("workspace", "status", demo_dev, "dev").out
    now = workspace.read(r, "dev").datasets
    ins2 = [now[p] for p in task.inputs]
    failed = records.Record("failed", "e2", tuple(ins2), records.now(), records.now(), exit_code=3)
    records.write(r, task_id(double, ins2), failed)
    assert "  double: failed (exit code 3)\n" in e3("workspace", "status", demo_dev, "dev").out
    me = os.getpid()
    from e3.process import Holder

    h = Holder.me()
    live = records.Record("running", "e3", tuple(ins2), records.now(), pid=me, pid_start_time=h.start_time, boot_id=h.boot_id)
    records.write(r, task_id(double, ins2), live)
    assert f"  double: running (pid {me})\n" in e3("workspace", "status", demo_dev, "dev").out


def test_read_is_cheap_when_nothing_changed(demo_dev):
    r = open_repository(demo_dev)
    first = workspace.read(r, "dev")
    t0 = time.perf_counter()
    for _ in range(200):
        again = workspace.read(r, "dev")
    assert again == first  # timing is benchmarked in bench/workspace.py, not asserted here
    assert time.perf_counter() - t0 >= 0


def test_transact_aborts_without_a_commit_when_fn_returns_none(demo_dev):
    r = open_repository(demo_dev)
    before = workspace.read(r, "dev").commit
    assert workspace.transact(r, "dev", lambda v: None, "nothing").commit == before
    assert workspace.transact(r, "dev", lambda v: {("inputs", "a"): v.datasets[("inputs", "a")]}, "same").commit == before


def test_transact_rebuilds_only_changed_subtrees(demo_dev):
    import pygit2

    r = open_repository(demo_dev)
    before = workspace.read(r, "dev")
    h = r.objects.write(b"x")
    after = workspace.transact(r, "dev", lambda v: {("tasks", "double", "output"): h}, "output of double")
    old_tree = r.git[pygit2.Oid(hex=before.commit)].tree
    new_tree = r.git[pygit2.Oid(hex=after.commit)].tree
    assert old_tree["inputs"].id == new_tree["inputs"].id
    assert after.datasets == {**before.datasets, ("tasks", "double", "output"): h}
    assert refs.read_state(r, after.commit) == {**{k: v for k, v in after.datasets.items()}, (".workspace",): refs.read_state(r, before.commit)[(".workspace",)]}


def test_example_package_imports_and_deploys_with_its_defaults(repo, e3, example_zip):
    e3("package", "import", repo, example_zip)
    e3("workspace", "create", repo, "dev")
    assert e3("workspace", "deploy", repo, "dev", "my-package@1.0.0").out.startswith("Deployed my-package@1.0.0")
    assert e3("get", repo, "dev.inputs.greeting").out == '"Hello"\n'
    assert e3("list", repo, "dev.tasks").out == "greet\nmy-task\nshout\n"
    out = e3("workspace", "status", repo, "dev").out
    assert "  greet: never run\n" in out and "  my-task: waiting (on task greet)\n" in out


def test_workspace_import_deploys_a_zip_and_export_round_trips_values(repo, e3, example_zip, tmp_path):
    out = e3("workspace", "import", repo, "dev", example_zip).out
    assert out.startswith("Imported my-package@1.0.0\n") and "Deployed to workspace: dev\n" in out
    e3("set", repo, "dev.inputs.name", write(tmp_path, "n.east", '"e3"'))
    zpath = tmp_path / "dev.zip"
    e3("workspace", "export", repo, "dev", zpath, "--version", "1.0.1")
    other = tmp_path / "other"
    e3("repo", "create", other)
    out = e3("workspace", "import", other, "prod", zpath).out
    assert out.startswith("Imported my-package@1.0.1\n")
    assert e3("get", other, "prod.inputs.name").out == '"e3"\n'
    assert e3("get", other, "prod.inputs.times").out == "2\n"


def test_workspace_import_into_a_deployed_workspace_keeps_the_values_set_as_deploy_does(repo, e3, example_zip, tmp_path):
    e3("workspace", "import", repo, "dev", example_zip)
    e3("set", repo, "dev.inputs.name", write(tmp_path, "n.east", '"e3"'))
    before = e3("workspace", "log", repo, "dev").out.splitlines()
    out = e3("workspace", "import", repo, "dev", example_zip).out
    assert "is already imported" not in out and "Objects: 0" in out and "kept .inputs.name" in out
    assert e3("get", repo, "dev.inputs.name").out == '"e3"\n'
    assert e3("workspace", "log", repo, "dev").out.splitlines()[1:] == before


def test_workspace_import_of_a_package_with_a_null_ref_stores_the_null(repo, e3, tmp_path):
    from e3 import sdk
    from e3.model.package import DatasetRef, encode_package
    from e3.storage.objects import hash_bytes

    built = sdk.export(sdk.package("nulls", "1.0.0", sdk.input("x", INT, 3), sdk.input("s", STR)), tmp_path / "a.zip")
    pkg = built.package
    pkg.refs[("inputs", "x")] = DatasetRef("null")
    data = encode_package(pkg)
    h = hash_bytes(data)
    with zipfile.ZipFile(tmp_path / "nulls.zip", "w") as z:
        z.writestr("packages/nulls/1.0.0", h + "\n")
        z.writestr(f"objects/{h[:2]}/{h[2:]}.beast2", data)
    e3("workspace", "import", repo, "dev", tmp_path / "nulls.zip")
    assert e3("get", repo, "dev.inputs.x").out == "null\n"
    assert run("e3-fsck", "--repo", repo).returncode == 0


def test_a_real_run_blocks_deploy_allows_set_and_ends_up_to_date(repo, e3, tmp_path):
    from e3.repo import package
    from e3 import sdk
    from e3.east import East

    flag = tmp_path / "go"
    a = sdk.input("a", INT, 1)

    def script(b, inputs, output):
        # waits for the test's go-ahead, so the run is surely in progress meanwhile
        return East.str(f"while [ ! -e '{flag}' ]; do sleep 0.02; done\ncp ", sdk.quote(inputs.get(0)), " ", sdk.quote(output), "\n")

    zpath = tmp_path / "wait.zip"
    sdk.export(sdk.package("wait", "1.0.0", sdk.custom_task("hold", [a], INT, script)), zpath)
    package.import_zip(open_repository(repo), zpath)
    e3("workspace", "deploy", repo, "dev", "wait@1.0.0", "--create")
    start = subprocess.Popen(["e3", "start", str(repo), "dev"], env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while "hold: running" not in e3("workspace", "status", repo, "dev").out:
            assert start.poll() is None and time.monotonic() < deadline
        assert_one_line_error(e3("workspace", "deploy", repo, "dev", "wait@1.0.0", expect=128), f"is running (pid {start.pid})")
        e3("set", repo, "dev.inputs.a", write(tmp_path, "a.east", "5"))
        flag.touch()
        out, err = start.communicate(timeout=60)
        assert start.returncode == 0, err.decode()
    finally:
        flag.touch()
        if start.poll() is None:
            start.kill()
    assert e3("get", repo, "dev.tasks.hold.output").out == "5\n"  # the run saw the new input and ran again
    assert "  hold: up to date\n" in e3("workspace", "status", repo, "dev").out


def test_concurrent_deploys_are_serialised_not_refused(repo, e3):
    make_package(repo)
    e3("workspace", "create", repo, "dev")
    argv = ["e3", "workspace", "deploy", str(repo), "dev", "demo@1.0.0"]
    procs = [subprocess.Popen(argv, env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    log = e3("workspace", "log", repo, "dev").out
    assert log.count("deploy demo@1.0.0") == 3


def test_e3_set_makes_its_commit_durable_before_the_workspace_ref_names_it(demo_dev, tmp_path):
    """A small commit's objects are loose ones, which libgit2 writes without fsync: a syncfs(2)
    must come between them and the ref's rename, or a power loss could leave the ref naming a
    commit that is gone. Watched with strace, as the system calls happen."""
    import shutil

    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    trace = tmp_path / "trace"
    run("strace", "-f", "-qq", "-e", "trace=syncfs,rename", "-o", trace, "e3", "set", demo_dev, "dev.inputs.a", write(tmp_path, "a.east", "7"))
    calls = [line for line in trace.read_text().splitlines() if "syncfs(" in line or "rename(" in line]
    [moved] = [i for i, c in enumerate(calls) if "rename(" in c and "refs/workspaces/dev.lock" in c]
    assert any("syncfs(" in c for c in calls[:moved]), calls


# ---------------------------------------------------------------- status filters, graph, --json


@pytest.fixture
def chained(repo, e3, tmp_path):
    """demo deployed with b set, then run: double and greet up to date; a changed after, so both stale."""
    make_package(repo)
    e3("workspace", "create", repo, "dev")
    e3("workspace", "deploy", repo, "dev", "demo@1.0.0")
    e3("set", repo, "dev.inputs.b", write(tmp_path, "b.east", '"hi"'))
    return repo


def test_status_shows_only_the_tasks_named_or_in_the_states_asked_for(chained, e3):
    out = e3("workspace", "status", chained, "dev", "gr*").out
    assert "Tasks (1 of 2):\n  greet: " in out and "double:" not in out
    out = e3("workspace", "status", chained, "dev", "--state", "never-run,waiting").out
    assert "  double: never run\n" in out and "  greet: waiting" in out
    assert "Tasks (0 of 2)" not in e3("workspace", "status", chained, "dev", "--state", "failed").out
    assert_one_line_error(e3("workspace", "status", chained, "dev", "nosuch", expect=128), "no task matches 'nosuch'")
    r = e3("workspace", "status", chained, "dev", "--state", "bogus", expect=2)
    assert "unknown state 'bogus'" in r.err


def test_status_and_list_as_json(chained, e3):
    import json

    st = json.loads(e3("workspace", "status", chained, "dev", "--json", "--state", "never-run").out)
    assert st["workspace"] == "dev" and st["deployment"]["package_name"] == "demo"
    assert [t["name"] for t in st["tasks"]] == ["double"] and st["tasks"][0]["state"] == "never-run"
    assert st["datasets_total"] == 7 and st["unset_inputs"] == []
    listed = json.loads(e3("workspace", "list", chained, "--json").out)
    assert [(w["name"], w["deployment"]["package_version"]) for w in listed] == [("dev", "1.0.0")]
    assert listed[0]["deployment"]["deployed_at"].endswith("Z")


def test_graph_as_text_dot_mermaid_and_json(chained, e3):
    import json

    assert e3("workspace", "graph", chained, "dev").out == "double  <- .inputs.a\ngreet   <- .inputs.b double\n"
    dot = e3("workspace", "graph", chained, "dev", "--format", "dot").out
    assert '"double" -> "greet";' in dot and '".inputs.a" [shape=ellipse];' in dot
    assert "t0 --> t1" in e3("workspace", "graph", chained, "dev", "--format", "mermaid").out
    g = json.loads(e3("workspace", "graph", chained, "dev", "--json").out)
    assert [(t["name"], t["depends_on"]) for t in g["tasks"]] == [("double", []), ("greet", ["double"])]
    assert g["tasks"][1]["inputs"][-2:] == [".inputs.b", ".tasks.double.output"]
