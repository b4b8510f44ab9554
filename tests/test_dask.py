"""`e3 start --executor dask://…`: the work on a real Dask cluster, the same results, records and logs.

One cluster for the module (a `dask scheduler` and two single-threaded `dask
worker` processes on 127.0.0.1, started once per test session and run on one
xdist worker: see the `xdist_group` mark). Its workers live in a mount
namespace where this session's temporary directory, which holds every
repository the tests make, is an empty tmpfs: they cannot read a repository,
as on a cluster that shares no filesystem with the coordinator.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e3_testing.commands import (
    LIB,
    Result,
    assert_one_line_error,
    command_env,
    deployed,
    run,
    start_states as _states,
    workspace_imported,
)

try:
    import distributed  # noqa: F401
except ImportError:  # the `dask` extra; `make test` installs it, and CI must not skip these
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("dask is not installed (pip install 'e3-py[dask]')", allow_module_level=True)

from e3_testing.crash_harness import keep_record_objects, recorded_outcomes  # noqa: E402
from e3_testing.dask_cluster import Cluster, can_hide  # noqa: E402
from e3_testing.packages import script as _script, spin  # noqa: E402

from e3 import sdk  # noqa: E402
from e3.east import BlobType, East, IntegerType, StringType  # noqa: E402

pytestmark = pytest.mark.xdist_group("dask")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    if not can_hide():
        if os.environ.get("CI") == "true":
            raise RuntimeError("unshare -m is not permitted: the dask tests need it to hide the repositories from the workers")
        pytest.skip("unshare -m is not permitted here")
    with Cluster(workers=2, hide=[tmp_path_factory.getbasetemp()]) as c:
        yield c


@pytest.fixture(scope="session")
def dask_url(cluster) -> str:
    return "dask://" + cluster.address.split("://", 1)[1]


def _deploy(tmp_path: Path, pkg, name: str = "repo", history: bool = False) -> Path:
    """With `history`, every record is an object as well (e3.recordObjects): what recorded_outcomes reads."""
    zip_path = tmp_path / f"{pkg.name}.zip"
    if not zip_path.exists():
        sdk.export(pkg, zip_path)
    repo = workspace_imported(tmp_path / name, zip_path)
    if history:
        keep_record_objects(repo)
    return repo


def _tree(repo: Path) -> list[str]:
    """The workspace's datasets as git names them (equal blobs hold equal hashes), without its state
    (`.workspace`, which holds when it was deployed)."""
    listing = subprocess.run(
        ["git", f"--git-dir={repo / '.e3'}", "ls-tree", "-r", "refs/workspaces/dev"], capture_output=True, check=True
    ).stdout.decode()
    return [line for line in listing.splitlines() if not line.endswith("\t.workspace")]


def _task_ids(repo: Path) -> set[str]:
    return set(os.listdir(repo / ".e3" / "tasks"))


def _log_names(repo: Path) -> set[str]:
    return {n[: -len(".eastl")] for n in os.listdir(repo / ".e3" / "logs") if n.endswith(".eastl")}


# ---------------------------------------------------------------- the example and the memo


def test_the_example_package_runs_on_the_cluster_with_the_local_pools_results(tmp_path, dask_url, cluster, example_zip):
    repos = {where: deployed(tmp_path / where, example_zip, "my-package@1.0.0") for where in ("local", "dask")}
    run("e3", "start", repos["local"], "dev")
    ran = run("e3", "start", repos["dask"], "dev", "--executor", dask_url)
    assert _states(ran.out) == {"greet": "ran", "my-task": "ran", "shout": "ran"}
    assert run("e3", "get", repos["dask"], "dev.tasks.shout.output").out.strip() == '"HELLO, WORLD! HELLO, WORLD!"'
    assert _tree(repos["dask"]) == _tree(repos["local"])
    assert _task_ids(repos["dask"]) == _task_ids(repos["local"]) == _log_names(repos["dask"])
    logs = run("e3", "logs", repos["dask"], "dev.my-task").out
    assert "my-task: repeating Hello, World! 2 times" in logs  # printed on a worker, in the coordinator's log
    again = run("e3", "start", repos["dask"], "dev", "--executor", dask_url)
    assert set(_states(again.out).values()) == {"cached"}


def test_every_task_run_on_the_cluster_is_reported_started_before_it_ends(tmp_path, dask_url):
    """The cluster does not say when a worker starts a task: it counts as started once handed over."""
    import json

    repo = _deploy(tmp_path, _layers(3, 2))
    out = run("e3", "start", repo, "dev", "--executor", dask_url, "--json").out
    events = [json.loads(line) for line in out.splitlines()]
    started = {e["task"]: i for i, e in enumerate(events) if e["event"] == "task_started"}
    ran = {e["task"]: i for i, e in enumerate(events) if e["event"] == "task_finished" and e["state"] == "ran"}
    assert len(ran) == 6 and started.keys() == ran.keys()
    assert all(started[t] < ran[t] for t in ran)


def test_the_workers_cannot_read_the_repository(tmp_path, cluster):
    from distributed import Client

    repo = _deploy(tmp_path, sdk.package("one", "1.0.0", sdk.input("x", IntegerType, 1)))
    with Client(cluster.address, set_as_default=False) as client:
        seen = client.run(os.path.exists, str(repo / ".e3"))
    assert len(seen) == 2 and not any(seen.values())


def _layers(width: int, depth: int):
    """depth layers of width East tasks; a task adds two outputs of the layer before (the first layer adds its index to x)."""
    x = sdk.input("x", IntegerType, 1)
    add = East.function([IntegerType, IntegerType], IntegerType, lambda b, p, q: p + q)
    layer = [sdk.task(f"l0-{i:03d}", [x], East.function([IntegerType], IntegerType, lambda b, v, i=i: v + i)) for i in range(width)]
    for d in range(1, depth):
        layer = [sdk.task(f"l{d}-{i:03d}", [layer[i].output, layer[(i + 1) % width].output], add) for i in range(width)]
    return sdk.package("layers", "1.0.0", *layer)


def test_a_200_task_dag_gives_the_outputs_task_ids_and_logs_of_the_local_pool(tmp_path, dask_url):
    # Ten layers of 20 (it was 100): a hundred times more tasks than the cluster's two workers run
    # at once, each layer waiting on the one before, as with 1,000; every one is compared.
    pkg = _layers(20, 10)
    local, remote = _deploy(tmp_path, pkg, "local"), _deploy(tmp_path, pkg, "dask")
    run("e3", "start", local, "dev", "-q")
    out = run("e3", "start", remote, "dev", "-q", "--executor", dask_url, timeout=300).out
    assert "200 tasks: 200 ran" in out
    assert _tree(remote) == _tree(local)
    assert _task_ids(remote) == _task_ids(local) == _log_names(remote)
    from e3.storage.logs import read_records

    for name in list(_log_names(remote))[:50]:
        streams = [r["stream"] for r in read_records(remote / ".e3" / "logs" / f"{name}.eastl")]
        assert streams == ["start", "end"]


def test_a_worker_with_two_threads_runs_many_east_tasks_of_a_recursive_type_side_by_side(tmp_path, tmp_path_factory):
    """Two threads of one worker evaluate East tasks at once (in the worker's process, sharing its
    East runtime): the local pool's outputs, and the worker alive. The runtime is not safe under
    threads (its type conversions keep module-wide state, worst for recursive types); e3.east
    holds a lock around it. The worker switches threads as often as it can, so a race shows."""
    from e3 import east

    tree_type = east.recursive_type(lambda self: east.VariantType([("leaf", IntegerType), ("node", east.ArrayType(self))]))
    x = sdk.input("x", IntegerType, 1)
    tree = sdk.input("tree", tree_type, east.variant("node", [east.variant("leaf", 0), east.variant("node", [])]))
    grow = East.function([tree_type, IntegerType], tree_type,
                         lambda b, t, n: East.value(east.variant("node", [t, east.variant("leaf", n)]), tree_type))
    tasks = []
    for i in range(150):
        n = sdk.task(f"n{i:03d}", [x], East.function([IntegerType], IntegerType, lambda b, v, i=i: v + i))
        tasks += [n, sdk.task(f"t{i:03d}", [tree, n.output], grow)]
    pkg = sdk.package("trees", "1.0.0", *tasks)
    local, remote = _deploy(tmp_path, pkg, "local"), _deploy(tmp_path, pkg, "dask")
    run("e3", "start", local, "dev", "-q")
    with Cluster(workers=1, nthreads=2, hide=[tmp_path_factory.getbasetemp()]) as two:
        from distributed import Client

        with Client(two.address, set_as_default=False) as client:
            assert [w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values()] == [2]
            client.run(sys.setswitchinterval, 1e-6)
        [worker] = two.workers
        start = subprocess.Popen(["e3", "start", str(remote), "dev", "-q", "--executor", two.address],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
        try:
            deadline = time.monotonic() + 300
            while start.poll() is None:
                if worker.poll() is not None:  # Dask would wait for another worker forever
                    log = (two.dir / worker.name / "worker.log").read_text(errors="replace")[-3000:]
                    pytest.fail(f"the two-thread worker died ({worker.returncode}) while running East tasks:\n{log}")
                assert time.monotonic() < deadline, "e3 start did not finish"
                time.sleep(0.1)
            out, err = start.communicate()
        finally:
            if start.poll() is None:
                start.kill()
                start.wait()
        assert worker.poll() is None
    assert start.returncode == 0, out.decode() + err.decode()
    assert "300 tasks: 300 ran" in out.decode()
    assert _tree(remote) == _tree(local)


# ---------------------------------------------------------------- large values


def test_a_100_mb_input_is_sent_to_the_cluster_once_and_read_by_every_task(tmp_path, dask_url):
    big = sdk.input("big", BlobType, b"")
    size = sdk.task("size", [big], East.function([BlobType], IntegerType, lambda b, x: x.size()))
    byte = sdk.task("byte", [big], East.function([BlobType], IntegerType, lambda b, x: x.get_uint8(East.value(12345, IntegerType))))
    shell = sdk.custom_task(
        "shell", [big], StringType, _script("printf '\"%s\"' $(head -c 4 {in0} | od -An -tx1 | tr -d ' ') | e3 convert --from east --type String -o {out}")
    )
    repo = _deploy(tmp_path, sdk.package("big", "1.0.0", size, byte, shell))
    data = os.urandom(100 << 20)
    from e3 import east

    (tmp_path / "big.beast2").write_bytes(east.encode(data, BlobType))
    run("e3", "set", repo, "dev.inputs.big", tmp_path / "big.beast2")
    # e3 start's run, in this process: the executor it opened says what it sent to the cluster.
    from e3.exec.start import WorkspaceRun
    from e3.storage.repository import open_repository

    started = WorkspaceRun(open_repository(repo), "dev", executor=dask_url)
    pool = started._executor
    for _ in started.steps():
        pass
    assert {name: r.state for name, r in started.summary.reports.items()} == {"size": "ran", "byte": "ran", "shell": "ran"}
    # Once to the cluster, not once per task that reads it (Dask moves it between workers).
    assert len(data) <= pool.scattered_bytes < len(data) + (1 << 20)
    assert run("e3", "get", repo, "dev.tasks.size.output").out.strip() == str(len(data))
    assert run("e3", "get", repo, "dev.tasks.byte.output").out.strip() == str(data[12345])
    assert run("e3", "get", repo, "dev.tasks.shell.output").out.strip() == '"89456173"'  # Beast2's magic


def test_a_value_many_tasks_read_is_scattered_once(tmp_path, cluster):
    from e3_testing.runner_tasks import Integer, east_task, function, value

    from e3.exec.dask_executor import DaskPool
    from e3.exec.pool import TaskRequest
    from e3.storage.repository import open_repository

    repo_dir = tmp_path / "repo"
    run("e3", "repo", "create", repo_dir)
    repo = open_repository(repo_dir)
    blob = value(os.urandom(20 << 20), BlobType)
    fn = function([BlobType, Integer], Integer, lambda b, x, i: x.size().add(i))
    requests = []
    for i in range(6):
        th, ins = east_task(repo.objects, fn, [blob, value(i, Integer)])
        requests.append(TaskRequest(repo=str(repo_dir), task_hash=th, input_hashes=ins))
    with DaskPool(repo, cluster.address) as pool:
        outcomes = [f.result() for f in [pool.submit(r) for r in requests]]
        assert [o.status for o in outcomes] == ["success"] * 6
        assert pool.scattered_bytes < len(blob) + (1 << 20)  # the blob once, and the small objects
        first = pool.scattered_bytes
        more = [pool.submit(TaskRequest(repo=str(repo_dir), task_hash=requests[0].task_hash, input_hashes=requests[0].input_hashes))]
        assert more[0].result().status == "success" and pool.scattered_bytes == first  # still on the cluster


def test_a_request_whose_task_or_input_is_damaged_ends_in_an_error_naming_it_and_the_others_run(tmp_path, cluster):
    from e3_testing.runner_tasks import Integer, east_task, function, value

    from e3.exec.dask_executor import DaskPool
    from e3.exec.pool import TaskRequest
    from e3.storage.repository import open_repository

    repo_dir = tmp_path / "repo"
    run("e3", "repo", "create", repo_dir)
    repo = open_repository(repo_dir)
    fn = function([Integer], Integer, lambda b, x: x.add(1))
    sound, bad_input = (east_task(repo.objects, fn, [value(i, Integer)]) for i in (10, 20))
    # A task object of its own (two inputs) to damage; the others' stays sound.
    bad_task = east_task(repo.objects, function([Integer, Integer], Integer, lambda b, x, y: x.add(y)), [value(3, Integer), value(4, Integer)])

    def damage(h: str) -> None:
        path = repo.objects.path(h)
        data = path.read_bytes()
        path.chmod(0o644)
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))

    damage(bad_input[1][1])  # its Integer (the function comes first)
    damage(bad_task[0])
    with DaskPool(repo, cluster.address) as pool:
        futures = [pool.submit(TaskRequest(repo=str(repo_dir), task_hash=th, input_hashes=ins)) for th, ins in (sound, bad_input, bad_task)]
        ok, input_damaged, task_damaged = (f.result(timeout=60) for f in futures)
    assert ok.status == "success" and repo.objects.read(ok.output_hash) == value(11, Integer)
    assert input_damaged.status == "error" and input_damaged.message.startswith(f"object {bad_input[1][1]} is corrupt"), input_damaged
    assert task_damaged.status == "error" and task_damaged.message.startswith(f"object {bad_task[0]} is corrupt"), task_damaged


# ---------------------------------------------------------------- logs while a task runs


def test_e3_logs_follow_shows_a_task_running_on_a_worker_as_it_prints(tmp_path, dask_url):
    x = sdk.input("x", IntegerType, 1)
    talk = sdk.custom_task("talk", [x], IntegerType, _script("echo first; sleep 3; echo second; cp {in0} {out}"))
    repo = _deploy(tmp_path, sdk.package("talk", "1.0.0", talk))
    start = subprocess.Popen(["e3", "start", str(repo), "dev", "--executor", dask_url], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=command_env())
    try:
        follow = subprocess.Popen(["e3", "logs", str(repo), "dev.talk", "--follow"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=command_env())
        first = follow.stdout.readline()
        assert first == b"first\n" and start.poll() is None  # seen while the task still runs on its worker
        rest, err = follow.communicate(timeout=60)
        assert rest == b"second\n" and b"Traceback" not in err
    finally:
        out, err = start.communicate(timeout=60)
    assert start.returncode == 0, err


# ---------------------------------------------------------------- faults


def _children(pid: int) -> list[int]:
    """The processes `pid` started, from any of its threads."""
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(p) for p in f.read().split()]
    except FileNotFoundError:
        pass
    return found


def test_a_worker_killed_mid_task_has_its_task_run_again_elsewhere_and_completed_once(tmp_path, dask_url, cluster):
    x = sdk.input("x", IntegerType, 1)
    tasks = [sdk.custom_task(f"s{i:02d}", [x], IntegerType, _script(f"echo begin {i}; sleep 1; cp {{in0}} {{out}}")) for i in range(6)]
    repo = _deploy(tmp_path, sdk.package("sleepy", "1.0.0", *tasks), history=True)
    start = subprocess.Popen(["e3", "start", str(repo), "dev", "--executor", dask_url], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=command_env())
    try:
        deadline = time.monotonic() + 60
        while True:  # a worker whose shell task is running: its child
            busy = [w for w in cluster.workers if w.poll() is None and _children(w.pid)]
            if busy:
                break
            assert time.monotonic() < deadline and start.poll() is None, "no worker ran a task"
            time.sleep(0.02)
        cluster.kill(busy[0])
        out, err = start.communicate(timeout=120)
    finally:
        if start.poll() is None:
            start.kill()
        cluster.add_worker()  # two workers again for the tests that follow
    assert start.returncode == 0, out.decode() + err.decode()
    assert _states(out.decode()) == {f"s{i:02d}": "ran" for i in range(6)}
    for i in range(6):
        assert run("e3", "get", repo, f"dev.tasks.s{i:02d}.output").out.strip() == "1"
    _assert_completed_once_and_sound(repo)
    logs = "".join(run("e3", "logs", repo, f"dev.s{i:02d}").err for i in range(6))
    # Dask ran it again on another worker, or e3 sent it again with the objects lost on the way.
    assert "was lost; running again on" in logs or "sending it again" in logs


def _assert_completed_once_and_sound(repo: Path) -> None:
    """No execution has two terminal records, and e3-fsck finds nothing wrong."""
    from e3_testing.crash_harness import Verdict, fsck_into, recorded_outcomes

    from e3.storage.repository import open_repository

    assert not [eid for eid, kinds in recorded_outcomes(open_repository(repo)).items() if len(kinds) > 1]
    v = Verdict()
    fsck_into(repo, v)
    assert not v.corrupt


def test_the_coordinator_killed_mid_run_is_resumed_by_the_next_start(tmp_path, dask_url):
    x = sdk.input("x", IntegerType, 1)
    tasks = []
    for c in range(3):
        prev = x
        for i in range(4):
            source = prev if i == 0 else prev.output
            prev = sdk.custom_task(f"c{c}-{i}", [source], IntegerType, _script("sleep 0.3; cp {in0} {out}"))
        tasks.append(prev)
    repo = _deploy(tmp_path, sdk.package("chains", "1.0.0", *tasks), history=True)
    start = subprocess.Popen(["e3", "start", str(repo), "dev", "--executor", dask_url], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=command_env(), start_new_session=True)
    deadline = time.monotonic() + 60
    while len(os.listdir(repo / ".e3" / "tasks")) < 4:  # some finished, others running
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(start.pid, signal.SIGKILL)
    start.wait()
    done = run("e3", "start", repo, "dev", "--executor", dask_url, timeout=120).out
    assert "12 tasks:" in done and "failed" not in done
    for c in range(3):
        assert run("e3", "get", repo, f"dev.tasks.c{c}-3.output").out.strip() == "1"
    _assert_completed_once_and_sound(repo)


def _descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs (a spawned task's shell and its commands)."""
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_scheduler_lost_mid_run_ends_the_run_in_one_line_and_the_next_start_completes_the_rest(
    tmp_path, tmp_path_factory, dask_url
):
    """SIGKILL the scheduler while tasks run on its workers: `e3 start` ends at once with one line
    naming it (exit 128), keeps what finished before, records no output for what did not, and the
    next start (on another cluster) runs only the rest. The lost cluster's workers leave nothing running."""
    from e3.storage import queue, records
    from e3.storage.repository import open_repository

    x = sdk.input("x", IntegerType, 1)
    quick = [sdk.custom_task(f"q{i}", [x], IntegerType, _script("cp {in0} {out}")) for i in range(2)]
    with Cluster(workers=2, hide=[tmp_path_factory.getbasetemp()]) as lost:
        # Long on the cluster to be lost (its workers' scratch directories are under lost.dir), none elsewhere.
        slow = [
            sdk.custom_task(f"s{i}", [q.output], IntegerType, _script(f"case $PWD in {lost.dir}/*) echo slow; sleep 60;; esac; cp {{in0}} {{out}}"))
            for i, q in enumerate(quick)
        ]
        last = sdk.custom_task("last", [s.output for s in slow], IntegerType, _script("cp {in0} {out}"))
        repo = _deploy(tmp_path, sdk.package("lose", "1.0.0", *quick, *slow, last), history=True)
        start = subprocess.Popen(["e3", "start", str(repo), "dev", "--executor", lost.address], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=command_env())
        try:
            deadline = time.monotonic() + 60
            while True:  # both slow tasks sleeping, one on each worker
                spawned = {w.pid: _descendants(w.pid) for w in lost.workers}
                if all(any(_name(pid) == "sleep" for pid in pids) for pids in spawned.values()):
                    break
                assert time.monotonic() < deadline and start.poll() is None, "the slow tasks never ran on both workers"
                time.sleep(0.02)
            lost.scheduler.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            out, err = start.communicate(timeout=60)
            reported = time.monotonic() - killed
        finally:
            if start.poll() is None:
                start.kill()
                start.communicate()
        # The workers close without their scheduler, and kill what they spawned first (before the cluster is stopped).
        deadline = time.monotonic() + 10
        while alive := [pid for pids in spawned.values() for pid in pids if _alive(pid)] + [w.pid for w in lost.workers if w.poll() is None]:
            assert time.monotonic() < deadline, f"the lost workers or what they spawned still run: {alive}"
            time.sleep(0.05)
    assert start.returncode == 128, out.decode() + err.decode()
    r = Result(start.args, start.returncode, out, err)
    assert "Traceback" not in r.err
    assert_one_line_error(r, f"lost the dask scheduler {lost.address}")
    assert reported < 5, f"the loss took {reported:.1f}s to be reported"
    # What finished before is kept; what did not has no output, recorded or committed: its
    # execution ended in error saying why, and nothing is left claimed on the queue.
    states = _states(out.decode())
    assert states["q0"] == states["q1"] == "ran" and not {"s0", "s1", "last"} & {t for t, s in states.items() if s == "ran"}
    handle = open_repository(repo)
    kinds = {t: records.summary(handle, t).kind for t in _task_ids(repo)}
    assert sorted(kinds.values()) == ["error", "error", "success", "success"], kinds
    for i in range(2):
        assert run("e3", "get", repo, f"dev.tasks.q{i}.output").out.strip() == "1"
        assert run("e3", "get", repo, f"dev.tasks.s{i}.output", expect=None).returncode != 0
        assert f"lost the dask scheduler {lost.address}" in run("e3", "logs", repo, f"dev.s{i}").err
    assert list(queue.list_entries(handle, queue.DEFAULT_RUNNER)) == []
    _assert_completed_once_and_sound(repo)
    # The next start, on another cluster, runs the rest and nothing twice.
    again = run("e3", "start", repo, "dev", "--executor", dask_url, timeout=60)
    assert _states(again.out) == {"q0": "cached", "q1": "cached", "s0": "ran", "s1": "ran", "last": "ran"}, again.out
    assert run("e3", "get", repo, "dev.tasks.last.output").out.strip() == "1"
    _assert_completed_once_and_sound(repo)
    successes = [k for eid, ks in recorded_outcomes(handle).items() for k in ks if k == "success"]
    assert len(successes) == 5


def test_a_scheduler_that_cannot_be_reached_is_one_line_error(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    repo = _deploy(tmp_path, sdk.package("one", "1.0.0", sdk.task("t", [sdk.input("x", IntegerType, 1)], East.function([IntegerType], IntegerType, lambda b, v: v))))
    r = run("e3", "start", repo, "dev", "--executor", f"dask://127.0.0.1:{port}", expect=128)
    assert_one_line_error(r, f"cannot reach dask scheduler tcp://127.0.0.1:{port}")
    r = run("e3", "start", repo, "dev", "--executor", "ftp://somewhere", expect=2)
    assert "invalid executor" in r.err and "Traceback" not in r.err
    assert run("e3", "start", repo, "dev").out.startswith("ran t")  # nothing was left locked or claimed


def test_the_executor_named_in_the_repository_config_is_used_unless_told_otherwise(tmp_path, dask_url):
    x = sdk.input("x", StringType, "")
    # Where its input file is: a scratch directory of a Dask worker, or of the repository.
    where = sdk.custom_task("where", [x], StringType, _script("printf '\"%s\"' {in0} | e3 convert --from east --type String -o {out}"))
    repo = _deploy(tmp_path, sdk.package("where", "1.0.0", where))
    subprocess.run(["git", f"--git-dir={repo / '.e3'}", "config", "e3.executor", dask_url], check=True)
    run("e3", "start", repo, "dev")
    ran_in = run("e3", "get", repo, "dev.tasks.where.output").out
    assert "e3-dask-" in ran_in  # a scratch directory of a worker
    assert str(repo) not in ran_in
    (tmp_path / "x.east").write_text('"again"')
    run("e3", "set", repo, "dev.inputs.x", tmp_path / "x.east")
    run("e3", "start", repo, "dev", "--executor", "local")
    assert str(repo) in run("e3", "get", repo, "dev.tasks.where.output").out


def test_a_worker_without_the_east_runtime_is_named_in_one_line(tmp_path):
    fake = tmp_path / "no-east"
    (fake / "east").mkdir(parents=True)
    (fake / "east" / "__init__.py").write_text("raise ImportError('no East runtime on this worker')\n")
    repo = _deploy(tmp_path, sdk.package("one", "1.0.0", sdk.task("t", [sdk.input("x", IntegerType, 1)], East.function([IntegerType], IntegerType, lambda b, v: v))))
    with Cluster(workers=0) as bare:
        worker = bare.add_worker(pythonpath=[str(fake)])
        from distributed import Client

        with Client(bare.address, set_as_default=False) as client:
            [address] = client.scheduler_info(n_workers=-1)["workers"]
        r = run("e3", "start", repo, "dev", "--executor", bare.address, expect=128)
        assert worker.poll() is None
    assert_one_line_error(r, f"dask worker {address}", "no east runtime")


def test_an_api_server_started_with_an_executor_runs_its_runs_there(tmp_path, dask_url):
    from e3_testing.api_server import ApiServer

    from e3 import api

    x = sdk.input("x", StringType, "")
    where = sdk.custom_task("where", [x], StringType, _script("printf '\"%s\"' {in0} | e3 convert --from east --type String -o {out}"))
    repo = _deploy(tmp_path, sdk.package("where", "1.0.0", where))
    bad = subprocess.run([str(LIB.parent / "bin" / "e3-api-server"), "--repos", str(tmp_path), "--executor", "ftp://x"],
                         capture_output=True, env=command_env())
    assert bad.returncode == 2 and b"invalid executor" in bad.stderr
    with ApiServer(["--repos", tmp_path, "--executor", dask_url]) as server:
        remote = api.open(server.repo_url("repo"))
        summary = remote.dataflow_start("dev").wait()
        assert summary.count("ran") == 1 and summary.ok
        from e3.errors import UsageError

        with pytest.raises(UsageError, match="server says"):
            remote.dataflow_start("dev", executor="local")
    ran_in = run("e3", "get", repo, "dev.tasks.where.output").out
    assert "e3-dask-" in ran_in and str(repo) not in ran_in


def test_ctrl_c_cancels_what_the_cluster_runs_and_kills_what_it_spawned(tmp_path, dask_url, cluster):
    x = sdk.input("x", IntegerType, 1)
    slow = sdk.custom_task("slow", [x], IntegerType, _script("echo going; sleep 60; cp {in0} {out}"))
    repo = _deploy(tmp_path, sdk.package("slow", "1.0.0", slow))
    start = subprocess.Popen(["e3", "start", str(repo), "dev", "--executor", dask_url], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=command_env())
    deadline = time.monotonic() + 60
    while not (busy := [c for w in cluster.workers if w.poll() is None for c in _children(w.pid)]):
        assert time.monotonic() < deadline and start.poll() is None, "the task never started"
        time.sleep(0.02)
    start.send_signal(signal.SIGINT)
    out, err = start.communicate(timeout=60)
    assert start.returncode == 130 and b"cancelled" in err and b"Traceback" not in err
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in busy):  # the shell and its sleep, killed on the worker
        assert time.monotonic() < deadline, "the spawned task still runs"
        time.sleep(0.05)
    log = run("e3", "logs", repo, "dev.slow")
    assert "going" in log.out and "cancelled" in log.err


def test_timeout_fails_a_spawned_task_and_one_run_in_a_workers_process(tmp_path, dask_url):
    n = sdk.input("n", IntegerType, 5_000_000)

    spun = sdk.task("spin", [n], East.function([IntegerType], IntegerType, lambda b, v: spin(b, v, East.value(0, IntegerType))))
    slept = sdk.custom_task("sleep", [n], IntegerType, _script("sleep 60; cp {in0} {out}"))
    repo = _deploy(tmp_path, sdk.package("slow", "1.0.0", spun, slept))
    t0 = time.monotonic()
    r = run("e3", "start", repo, "dev", "--executor", dask_url, "--timeout", "0.5", expect=1)
    assert time.monotonic() - t0 < 30
    assert _states(r.out) == {"spin": "failed", "sleep": "failed"}
    assert "failed: sleep: timed out after 0.5s" in r.out
    # East holds the GIL: the worker says so once the function returns, or the coordinator
    # fails it when it is due (the worker runs it on until it returns).
    assert "failed: spin: timed out after 0.5s" in r.out


@pytest.mark.parametrize("where", ["local", "dask"])
def test_an_execution_that_ends_as_it_is_cancelled_keeps_the_one_record_of_its_end(tmp_path, cluster, where):
    """Ctrl-C between a task's end and the run taking it in: its record is that end, not a second one."""
    from e3_testing.crash_harness import recorded_outcomes
    from e3_testing.runner_tasks import Integer, east_task, function, value

    from e3.exec.scheduler import Job
    from e3.exec.queue_executor import QueueExecutor
    from e3.exec.executor_choice import open_executor
    from e3.storage.identity import task_id
    from e3.storage.repository import open_repository

    run("e3", "repo", "create", tmp_path / "repo")
    keep_record_objects(tmp_path / "repo")
    repo = open_repository(tmp_path / "repo")
    th, ins = east_task(repo.objects, function([Integer], Integer, lambda b, a: a), [value(7, Integer)])
    job = Job("t", th, tuple(ins), task_id(th, ins), ("tasks", "t", "output"))
    pool, concurrency = open_executor(repo, where if where == "local" else cluster.address, 1)
    executor = QueueExecutor(repo, "dev", concurrency=concurrency, executor=pool)
    try:
        executor.submit(job)
        executor.settle()
        [future] = executor._running
        executor._pool_started().wait([future], 60)
        assert future.done()  # it ended; the run has not taken it in
        assert executor.cancel() == [job]
    finally:
        executor.close()
    assert list(recorded_outcomes(repo).values()) == [["success"]]


@pytest.mark.parametrize("task", ["s", "c"])
def test_a_task_whose_input_is_damaged_fails_on_the_cluster_naming_it_and_records_no_success(tmp_path, dask_url, task):
    """Issue 20's reproducer with the work on the cluster: s (in a worker's process) and c
    (spawned there) read f's output, whose last byte flipped after the first run."""
    from test_verified_reads import _package, flip_last_byte, output_of

    repo = _deploy(tmp_path, _package())
    run("e3", "start", repo, "dev", "--executor", dask_url, "-q")
    h = output_of(repo, "f")
    before = output_of(repo, task)
    flip_last_byte(repo, h)
    r = run("e3", "start", repo, "dev", "--filter", task, "--force", "--executor", dask_url, expect=1)
    assert f"failed: {task}: object {h} is corrupt" in r.out, r.out
    assert output_of(repo, task) == before
    assert f"object {h} is corrupt" in run("e3", "logs", repo, f"dev.{task}").err
