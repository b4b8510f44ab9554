"""e3 against a real e3-api-server on 127.0.0.1: the quick start by URL, faults, concurrency, 401s, traversal.

One server per fixture scope where the tests allow it: most share a module-scoped
server over a directory of repositories; the tests that kill a server start
their own.
"""
from __future__ import annotations

import glob
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from e3_testing.api_server import ApiServer, free_port
from e3_testing.commands import BIN, assert_one_line_error, command_env, deployed, read_until, run

from e3 import east, sdk
from e3.api import wire as W
from e3.errors import E3Error


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("served")
    with ApiServer(["--repos", d]) as s:
        s.dir = d
        yield s


_count = iter(range(1_000_000))


def new_url(server: ApiServer) -> str:
    return server.repo_url(f"t{next(_count)}")


# ------------------------------------------------------------------ the README's quick start, by URL


def test_quick_start_runs_entirely_against_a_url(served, tmp_path, example_zip):
    url = new_url(served)
    e3 = lambda *a, **kw: run("e3", *a, cwd=tmp_path, **kw)  # noqa: E731
    e3("repo", "create", url)
    e3("package", "import", url, example_zip)
    e3("workspace", "create", url, "dev")
    e3("workspace", "deploy", url, "dev", "my-package@1.0.0")
    started = e3("start", url, "dev")
    assert [line.split()[0] for line in started.out.splitlines()[:3]] == ["ran"] * 3
    logs = e3("logs", url, "dev.my-task", "--follow", timeout=30)
    assert "my-task: repeating Hello, World! 2 times" in logs.out
    assert e3("get", url, "dev.tasks.my-task.output").out.strip() == '"Hello, World! Hello, World!"'
    (tmp_path / "times.east").write_text("3")
    e3("set", url, "dev.inputs.times", "times.east")
    again = e3("start", url, "dev")
    ran = sorted(line.split()[1] for line in again.out.splitlines() if line.startswith("ran "))
    assert ran == ["my-task", "shout"] and "cached greet" in again.out
    assert e3("get", url, "dev.tasks.shout.output").out.strip() == '"HELLO, WORLD! HELLO, WORLD! HELLO, WORLD!"'
    assert "set .inputs.times" in e3("workspace", "log", url, "dev").out
    assert e3("repo", "status", url).out.startswith(f"repository:  {url}\n")  # not the server's directory
    assert list(tmp_path.iterdir()) == [tmp_path / "times.east"]  # nothing local was made


def test_remote_results_are_the_local_ones(served, tmp_path, example_zip):
    """The same commands on a local repository and on a served one print the same."""
    url = new_url(served)
    run("e3", "repo", "create", url)
    run("e3", "package", "import", url, example_zip)
    run("e3", "workspace", "create", url, "dev")
    run("e3", "workspace", "deploy", url, "dev", "my-package@1.0.0")
    local = deployed(tmp_path, example_zip, "my-package@1.0.0")  # the same four commands, here (or their template's copy)
    for target in (str(local), url):
        run("e3", "start", target, "dev", "-q")
    for args in (["list", "{}", "dev", "-r"], ["get", "{}", "dev.tasks.shout.output", "-f", "json"],
                 ["package", "list", "{}"], ["workspace", "list", "{}"]):
        here = run("e3", *[a.format(str(local)) for a in args]).out
        there = run("e3", *[a.format(url) for a in args]).out
        assert here == there, args


def test_objects_plumbing_through_the_objects_routes(served, tmp_path):
    url = new_url(served)
    run("e3", "repo", "create", url)
    (tmp_path / "v.east").write_text("[1, 2, 3]")
    h = run("e3-hash-object", "-w", "-t", "Array<Integer>", "--repo", url, tmp_path / "v.east").out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert run("e3-hash-object", "-t", "Array<Integer>", tmp_path / "v.east").out.strip() == h
    assert run("e3-cat-object", "--repo", url, "-p", h).out.strip() == "[1, 2, 3]"
    assert run("e3-cat-object", "--repo", url, "-e", h, expect=0)
    run("e3-cat-object", "--repo", url, "-e", "0" * 64, expect=1)


def test_run_says_it_is_local_only(served, tmp_path):
    url = new_url(served)
    run("e3", "repo", "create", url)
    r = run("e3", "run", url, "pkg/task", "-o", tmp_path / "out.beast2", expect=None)
    assert r.returncode != 0
    assert_one_line_error(r, "local only")


WATCHED = """
from e3 import sdk
from e3.east import East, IntegerType

x = sdk.input("x", IntegerType, 5)
double = sdk.task("double", [x], East.function([IntegerType], IntegerType, lambda b, v: v * {k}))
package = sdk.package("live", "0.1.0", double)
"""


def test_watch_builds_here_and_deploys_and_starts_on_the_server(served, tmp_path):
    url = new_url(served)
    run("e3", "repo", "create", url)
    src = tmp_path / "live.py"
    src.write_text(WATCHED.format(k=2))
    out = run("e3", "watch", url, "dev", src, "--start", "--once").out
    assert "created workspace dev" in out and "deployed live@0.1.0" in out and "dataflow complete" in out
    assert run("e3", "get", url, "dev.tasks.double.output").out.strip() == "10"
    # Watching: a save is built here, imported over the same version on the server, run there; Ctrl-C ends it.
    proc = subprocess.Popen([str(BIN / "e3"), "watch", url, "dev", str(src), "--start", "--interval", "0.05"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
    try:
        read_until(proc, "dataflow complete")
        src.write_text(WATCHED.format(k=3))
        assert "replaced the previous build" in read_until(proc, "dataflow complete")
        assert run("e3", "get", url, "dev.tasks.double.output").out.strip() == "15"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopped watching" in out.decode() and b"Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ one-line errors naming the server


def test_nothing_listening_is_one_line_naming_the_server(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/repos/x"
    for args in (["list", url], ["repo", "create", url], ["get", url, "dev.inputs.x"]):
        r = run("e3", *args, expect=128)
        assert_one_line_error(r, "127.0.0.1", "cannot connect")
    assert list(tmp_path.iterdir()) == []


def test_unknown_repository_and_workspace_are_one_line(served):
    r = run("e3", "workspace", "list", served.repo_url("nosuchrepo"), expect=128)
    assert_one_line_error(r, "nosuchrepo", "not found")
    url = new_url(served)
    run("e3", "repo", "create", url)
    r = run("e3", "get", url, "nosuchws.inputs.x", expect=128)
    assert_one_line_error(r, "nosuchws")


def test_a_bad_url_is_a_usage_error():
    r = run("e3", "list", "http://127.0.0.1:1/elsewhere", expect=None)
    assert r.returncode in (2, 128)
    assert_one_line_error(r, "/repos/")


def test_a_server_that_is_not_e3_is_one_line(tmp_path):
    """Something answers, but not with what was asked for."""
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        r = run("e3", "workspace", "list", f"http://127.0.0.1:{port}/repos/x", expect=128)
        assert_one_line_error(r, f"127.0.0.1:{port}")
    finally:
        srv.kill()
        srv.wait()


# ------------------------------------------------------------------ a server killed mid-request


def _objects(repo_dir: Path) -> set[str]:
    out = set()
    for p in (repo_dir / ".e3" / "objects").glob("??/*"):
        out.add(p.name)
    return out


def test_server_killed_during_a_package_upload_leaves_nothing(tmp_path):
    d = tmp_path / "served"
    d.mkdir()
    big = tmp_path / "big.zip"
    # Not a valid package, but big: the upload is what is cut.
    with open(big, "wb") as f:
        f.write(os.urandom(1 << 20) * 200)
    server = ApiServer(["--repos", d])
    try:
        url = server.repo_url("r")
        run("e3", "repo", "create", url)
        before = _objects(d / "r")
        p = subprocess.Popen([str(BIN / "e3"), "package", "import", url, str(big)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=command_env())
        killed = server.pid
        deadline = time.monotonic() + 30
        while not any(os.path.getsize(f) for d in _staging_of(killed) for f in glob.glob(os.path.join(d, "part-*"))):
            assert time.monotonic() < deadline and p.poll() is None, "the upload never started"
            time.sleep(0.01)
        server.kill()  # halfway through the upload
        out, err = p.communicate(timeout=60)
    finally:
        server.stop()
    assert _staging_of(killed)  # what it had received is staged, outside the repository
    ApiServer(["--repos", d]).stop()  # the next server removes a dead server's staging
    assert not _staging_of(killed)
    assert p.returncode == 128, err
    line = err.decode().strip()
    assert "\n" not in line and "Traceback" not in line
    assert "127.0.0.1" in line
    assert _objects(d / "r") == before
    assert not list((d / "r" / ".e3").glob("refs/packages/**/*.*"))


def test_server_killed_during_logs_follow_is_one_line(tmp_path):
    d = tmp_path / "served"
    d.mkdir()
    slow = sdk.custom_task("slow", [sdk.input("x", east.IntegerType, 1)], east.IntegerType,
                           lambda b, ins, out: east.East.str("echo started; sleep 30"))
    zip_path = tmp_path / "slow.zip"
    sdk.export(sdk.package("slow", "1.0.0", slow), zip_path)
    # Deployed here, by the commands on the directory the server serves (four commands through the
    # server cost seconds on a loaded machine, and what they send is test_cli_remote's and the contract's).
    deployed(d, zip_path, "slow@1.0.0").rename(d / "r")
    server = ApiServer(["--repos", d])
    try:
        url = server.repo_url("r")
        starter = subprocess.Popen([str(BIN / "e3"), "start", url, "dev"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=command_env())
        follower = subprocess.Popen([str(BIN / "e3"), "logs", url, "dev.slow", "--follow"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=command_env())
        assert follower.stdout.readline() == b"started\n"  # it follows while the task runs
        server.kill()
        out, err = follower.communicate(timeout=60)
        starter.communicate(timeout=60)
    finally:
        server.stop()
    assert follower.returncode == 128
    assert_one_line_error(run_result(err), "127.0.0.1", "closed the connection")


def run_result(err: bytes):
    class R:
        pass

    r = R()
    r.err = err.decode()
    return r


# ------------------------------------------------------------------ start: progress, Ctrl-C cancels on the server


def test_ctrl_c_on_a_remote_start_cancels_the_run_on_the_server(served, tmp_path):
    url = new_url(served)
    slow = sdk.custom_task("slow", [sdk.input("x", east.IntegerType, 1)], east.IntegerType,
                           lambda b, ins, out: east.East.str("sleep 60"))
    zip_path = tmp_path / "slow.zip"
    sdk.export(sdk.package("slow", "1.0.0", slow), zip_path)
    run("e3", "repo", "create", url)
    run("e3", "package", "import", url, zip_path)
    run("e3", "workspace", "create", url, "dev")
    run("e3", "workspace", "deploy", url, "dev", "slow")
    # Started with SIGINT ignored, as a shell's `&` leaves it (and as CI may start the suite):
    # Ctrl-C still cancels the run, as it does a local one.
    p = subprocess.Popen([str(BIN / "e3"), "start", url, "dev"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=command_env(), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    import e3.api as api

    repo = api.open(url)
    execution = f"{served.url}/api/repos/{url.rsplit('/', 1)[1]}/workspaces/dev/dataflow/execution"
    deadline = time.monotonic() + 60
    while True:  # until the run on the server has started its task (the original's polled events say so)
        state = W.decode(httpx.get(execution).content, W.response_type(W.DataflowExecutionStateType))
        if state.type == "success" and any(e.type == "start" for e in state.value["events"]):
            break
        assert time.monotonic() < deadline and p.poll() is None, "the task never started"
        time.sleep(0.05)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130 and time.monotonic() - t0 < 20
    # The run on the server ended (its lock is gone), the task was cancelled, not left running.
    deadline = time.monotonic() + 20
    while repo.repository_locks():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert [x.status for x in repo.task_executions("dev", "slow")] != ["running"]


def test_clients_that_leave_their_streams_do_not_wear_the_server_out(served, tmp_path):
    """More followers than the server has worker threads come and go; the server still answers."""
    import e3.api as api

    url = new_url(served)
    slow = sdk.custom_task("quiet", [sdk.input("x", east.IntegerType, 1)], east.IntegerType,
                           lambda b, ins, out: east.East.str("sleep 60"))
    sdk.export(sdk.package("quiet", "1.0.0", slow), tmp_path / "quiet.zip")
    repo = api.create(url)
    with open(tmp_path / "quiet.zip", "rb") as f:
        repo.package_import(f)
    repo.workspace_deploy("dev", "quiet", create=True)
    run_ = repo.dataflow_start("dev")
    try:
        name = url.rsplit("/", 1)[1]
        base = f"{served.url}/api/repos/{name}/workspaces/dev/dataflow"
        with httpx.Client(timeout=30) as c:
            for _ in range(45):  # the server's pool has 40 worker threads
                for path in ("/events", "/logs/quiet/follow"):
                    with c.stream("GET", base + path) as r:
                        assert r.status_code == 200
            t0 = time.monotonic()
            assert c.get(f"{served.url}/api/repos").status_code == 200
            assert time.monotonic() - t0 < 10
    finally:
        run_.close()


# ------------------------------------------------------------------ 50 clients at once


def test_fifty_concurrent_clients_set_and_get_datasets_of_one_workspace(served, tmp_path):
    import e3.api as api
    from e3.api import values as v

    n = 50
    inputs = [sdk.input(f"i{k}", east.IntegerType, 0) for k in range(n)]
    total = sdk.task("total", inputs, east.East.function([east.IntegerType] * n, east.IntegerType,
                                                         lambda b, *xs: xs[0]))
    zip_path = tmp_path / "wide.zip"
    sdk.export(sdk.package("wide", "1.0.0", total), zip_path)
    url = new_url(served)
    repo = api.create(url)
    with open(zip_path, "rb") as f:
        repo.package_import(f)
    repo.workspace_deploy("dev", "wide", create=True)
    errors: list = []
    barrier = threading.Barrier(n)

    def client(k: int) -> None:
        try:
            r = api.open(url)
            barrier.wait()
            for rep in range(3):
                value = str(1000 * k + rep + 1).encode()  # never the default 0: a set that changes nothing makes no commit
                r.dataset_set("dev", ("inputs", f"i{k}"), v.ValueInput(__import__("io").BytesIO(value), "east"))
                with r.dataset_get("dev", ("inputs", f"i{k}")) as f:
                    _, got = east.decode(f.read())
                assert got == 1000 * k + rep + 1, (k, rep, got)
            r.close()
        except BaseException as e:  # reported below, with the client's number
            errors.append((k, e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    for k in range(n):
        with repo.dataset_get("dev", ("inputs", f"i{k}")) as f:
            assert east.decode(f.read())[1] == 1000 * k + 3
    # History: one commit per set, in one line (each commit has one parent).
    log = list(repo.workspace_log("dev"))
    assert sum(1 for e in log if e.message.startswith("set ")) == 3 * n, [e.message for e in log if not e.message.startswith("set ")]
    repo_dir = served.dir / url.rsplit("/", 1)[1]
    parents = subprocess.run(["git", "--git-dir", str(repo_dir / ".e3"), "rev-list", "--parents", "refs/workspaces/dev"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert all(len(line.split()) <= 2 for line in parents) and len(parents) == len(log)


# ------------------------------------------------------------------ uploads cut off or mismatching


def _raw(server: ApiServer, method: str, path: str, body: bytes = b"", headers: dict | None = None,
         send_only: int | None = None) -> tuple[int, bytes]:
    host, port = server.url.rsplit("//", 1)[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.putrequest(method, path)
    for k, val in (headers or {}).items():
        c.putheader(k, val)
    c.putheader("Content-Length", str(len(body)))
    c.endheaders()
    if send_only is not None:
        c.send(body[:send_only])
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        return 0, b""
    c.send(body)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def _staging_of(pid: int) -> list[str]:
    """The staging directories a server process made (e3-api-server-PID-*)."""
    import tempfile

    return glob.glob(os.path.join(tempfile.gettempdir(), f"e3-api-server-{pid}-*"))


def _commit_refusal(server: ApiServer, path: str) -> str:
    """POST a dataset upload's commit that must be refused; the error's kind (e3's, from its header)."""
    r = httpx.post(server.url + path)
    assert r.status_code == 200
    assert W.decode(r.content, W.response_type(W.TransferDoneResponseType)).type == "error"
    return r.headers["X-E3-Error-Kind"]


def _blob_repository(server: ApiServer, tmp_path: Path):  # noqa: ANN202
    """A new served repository with a package of one Blob input, `b`, deployed in `dev`: (URL, its client)."""
    import e3.api as api

    url = new_url(server)
    repo = api.create(url)
    sdk.export(sdk.package("one", "1.0.0", sdk.input("b", east.BlobType, b"")), tmp_path / "one.zip")
    with open(tmp_path / "one.zip", "rb") as f:
        repo.package_import(f)
    repo.workspace_deploy("dev", "one", create=True)
    return url, repo


def test_setting_beast2_by_url_sets_and_refuses_as_a_local_set_does(served, tmp_path):
    """`e3 set` of Beast2 values through the server: an Array<Float> (checked without the East
    runtime), a Dict (by the runtime) and refusals, the same as on a local repository."""
    floats, d = east.ArrayType(east.FloatType), east.DictType(east.StringType, east.IntegerType)
    sdk.export(sdk.package("arr", "1.0.0", sdk.input("xs", floats), sdk.input("d", d)), tmp_path / "arr.zip")
    files = {
        "xs.beast2": east.encode([0.25 * i for i in range(10_000)], floats),
        "d.beast2": east.encode({"a": 1}, d),
        "s.beast2": east.encode("x", east.StringType),
        "cut.beast2": east.encode([1.0, 2.0], floats)[:-3],
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    outcomes = []
    for target in (str(tmp_path / "local"), new_url(served)):
        for argv in (["repo", "create", target], ["package", "import", target, tmp_path / "arr.zip"],
                     ["workspace", "deploy", target, "dev", "arr@1.0.0", "--create"]):
            run("e3", *argv)
        sets = [run("e3", "set", target, f"dev.inputs.{path}", tmp_path / f, expect=None)
                for path, f in (("xs", "xs.beast2"), ("d", "d.beast2"), ("xs", "s.beast2"), ("xs", "cut.beast2"), ("d", "xs.beast2"))]
        values = [run("e3", "get", target, f"dev.inputs.{path}", "-f", "beast2").stdout for path in ("xs", "d")]
        outcomes.append([(r.returncode, r.err) for r in sets] + values)
    assert outcomes[0] == outcomes[1]
    assert [code for code, _ in outcomes[0][:5]] == [0, 0, 128, 128, 128]
    assert outcomes[0][5:] == [files["xs.beast2"], files["d.beast2"]]
    assert outcomes[0][2][1] == "e3 set: fatal: cannot set dev.inputs.xs: value has type String, expected Array<Float>\n"


def test_a_dataset_upload_cut_off_or_mismatching_leaves_no_object(served, tmp_path):
    url, repo = _blob_repository(served, tmp_path)
    name = url.rsplit("/", 1)[1]
    value = east.encode(os.urandom(300_000), east.BlobType)
    import hashlib

    h = hashlib.sha256(value).hexdigest()
    base = f"/api/repos/{name}/workspaces/dev/datasets/inputs/b/upload"
    init = W.encode(W.struct(hash=h, size=len(value)), W.TransferUploadRequestType)
    status, body = _raw(served, "POST", base, init, {"Content-Type": W.BEAST2})
    started = W.decode(body, W.response_type(W.TransferUploadResponseType))
    up = started.value.value
    path = "/" + up["uploadUrl"].split("/", 3)[3]
    before = set(_objects(served.dir / name))
    staged = lambda: {f for d in _staging_of(served.pid) for f in os.listdir(d)}  # noqa: E731
    staged_before = staged()
    _raw(served, "PUT", path, value, send_only=len(value) // 2)  # cut off halfway
    # The commit is refused while the server still reads the cut-off body ("not yet
    # received"), and once it has seen the cut ("not found": the upload is spent).
    deadline = time.monotonic() + 60
    while (kind := _commit_refusal(served, f"{base}/{up['id']}")) == "conflict":
        assert time.monotonic() < deadline, "the server never noticed the cut-off upload"
        time.sleep(0.02)
    assert kind == "not_found"
    assert not repo.object_exists(h) and set(_objects(served.dir / name)) == before
    assert staged() <= staged_before  # the staged half is gone
    assert _raw(served, "PUT", path, value)[0] == 404  # and the upload URL spent
    # Wrong bytes for the announced hash (the last byte flipped, so never the right ones): refused, nothing kept.
    status, body = _raw(served, "POST", base, init, {"Content-Type": W.BEAST2})
    up = W.decode(body, W.response_type(W.TransferUploadResponseType)).value.value
    path = "/" + up["uploadUrl"].split("/", 3)[3]
    status, text = _raw(served, "PUT", path, value[:-1] + bytes([value[-1] ^ 1]))
    assert status == 400 and b"hash mismatch" in text
    assert not repo.object_exists(h) and set(_objects(served.dir / name)) == before
    assert staged() <= staged_before
    # The whole, right bytes: stored, and the dataset set.
    status, body = _raw(served, "POST", base, init, {"Content-Type": W.BEAST2})
    up = W.decode(body, W.response_type(W.TransferUploadResponseType)).value.value
    path = "/" + up["uploadUrl"].split("/", 3)[3]
    assert _raw(served, "PUT", path, value)[0] == 200
    # Committed by two requests at once: one stores it, the other is refused; one set in the history.
    commits: list[httpx.Response] = []
    both = [threading.Thread(target=lambda: commits.append(httpx.post(f"{served.url}{base}/{up['id']}"))) for _ in range(2)]
    for t in both:
        t.start()
    for t in both:
        t.join()
    outcomes = sorted(W.decode(r.content, W.response_type(W.TransferDoneResponseType)).type for r in commits)
    assert outcomes == ["error", "success"]
    assert sorted(r.headers.get("X-E3-Error-Kind", "") for r in commits) in (["", "conflict"], ["", "not_found"])
    assert repo.dataset_status("dev", ("inputs", "b")).hash == h
    assert [e.message for e in repo.workspace_log("dev")][0].startswith("set .inputs.b")
    assert len([e for e in repo.workspace_log("dev") if e.message.startswith("set .inputs.b")]) == 1


def test_a_large_value_streams_down_checked_and_a_reader_left_open_lets_go(served, tmp_path):
    """A value of several chunks is received by the reader's own thread: the bytes exactly; a reader
    dropped unclosed stops that thread; a value damaged on the server is one line, never taken for it."""
    import gc
    import io

    from e3.api import values as v

    url, repo = _blob_repository(served, tmp_path)
    name = url.rsplit("/", 1)[1]
    value = east.encode(os.urandom(5 << 20), east.BlobType)
    h = repo.dataset_set("dev", ("inputs", "b"), v.ValueInput(io.BytesIO(value), "beast2", "value"))
    assert run("e3", "get", url, "dev.inputs.b", "-f", "beast2").stdout == value
    with repo.dataset_get("dev", ("inputs", "b")) as f:
        assert f.read(3) == value[:3] and f.read() == value[3:]
    f = repo.dataset_get("dev", ("inputs", "b"))
    f.read(10)
    del f
    gc.collect()
    deadline = time.monotonic() + 30
    while any(t.name == "e3-download" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a dropped reader's thread goes on receiving"
        time.sleep(0.05)
    obj = served.dir / name / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2"
    data = obj.read_bytes()
    obj.chmod(0o644)
    obj.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    r = run("e3", "get", url, "dev.inputs.b", "-f", "beast2", expect=None)
    assert r.returncode != 0 and r.stdout != value
    assert_one_line_error(r, served.url)
    with pytest.raises(E3Error):
        with repo.dataset_get("dev", ("inputs", "b")) as f:
            f.read()


def test_upload_and_download_urls_refuse_a_token(served):
    assert _raw(served, "PUT", "/api/uploads/nosuch", b"x", {"Authorization": "Bearer x"})[0] == 400
    assert _raw(served, "GET", "/api/downloads/nosuch")[0] == 404


# ------------------------------------------------------------------ the original's shapes and statuses


def test_original_shapes_and_statuses(served, example_zip):
    name = f"orig{next(_count)}"
    c = httpx.Client(base_url=served.url)
    r = c.put(f"/api/repos/{name}")
    assert r.status_code == 201 and r.headers["content-type"] == W.BEAST2
    assert W.decode(r.content, W.response_type(W.S)).value == name
    assert name in W.decode(c.get("/api/repos").content, W.response_type(W.Arr(W.S))).value
    st = W.decode(c.get(f"/api/repos/{name}/status").content, W.response_type(W.RepositoryStatusType))
    assert st.type == "success" and st.value["packageCount"] == 0
    r = c.post(f"/api/repos/{name}/workspaces", content=W.encode(W.struct(name="dev"), W.WorkspaceCreateRequestType),
               headers={"Content-Type": W.BEAST2})
    assert W.decode(r.content, W.response_type(W.WorkspaceInfoType)).value["deployed"] is False
    r = c.get(f"/api/repos/{name}/workspaces/nope")
    err = W.decode(r.content, W.response_type(W.WorkspaceInfoType))
    assert err.type == "error" and err.value.type == "workspace_not_found" and err.value.value["workspace"] == "nope"
    r = c.post(f"/api/repos/{name}/workspaces", content=b"{}", headers={"Content-Type": "application/json"})
    assert W.decode(r.content, W.response_type(W.WorkspaceInfoType)).type == "error"
    r = c.get(f"/api/repos/{name}/objects/zz")
    assert r.status_code == 400 and r.json()["error"]["type"] == "bad_request"
    r = c.get(f"/api/repos/{name}/objects/{'0' * 64}")
    assert r.status_code == 404 and r.json()["error"]["type"] == "object_not_found"
    r = c.post(f"/api/repos/{name}/gc", content=W.encode(W.struct(dryRun=True, minAge=W.option(None)), W.GcRequestType),
               headers={"Content-Type": W.BEAST2})
    assert r.status_code == 202


def test_a_client_of_the_original_polls_a_run_and_its_logs(served, tmp_path, example_zip):
    """The original's polling: dataflow start (202), dataflow/execution from an offset until the run
    ends, a task's log in chunks: each in the original's shape (no e3 Accept header)."""
    url = new_url(served)
    name = url.rsplit("/", 1)[1]
    run("e3", "repo", "create", url)
    run("e3", "package", "import", url, example_zip)
    run("e3", "workspace", "deploy", url, "dev", "my-package@1.0.0", "--create")
    c = httpx.Client(base_url=f"{served.url}/api/repos/{name}/workspaces/dev")
    body = W.encode(W.struct(concurrency=W.option(None), force=False, filter=W.option(None)), W.DataflowRequestType)
    assert c.post("/dataflow", content=body, headers={"Content-Type": W.BEAST2}).status_code == 202
    state_t = W.response_type(W.DataflowExecutionStateType)
    seen: list = []
    deadline = time.monotonic() + 60
    while True:  # as the original's client: from the last offset, until the run is not running
        state = W.decode(c.get("/dataflow/execution", params={"offset": len(seen)}).content, state_t)
        assert state.type == "success"
        seen += state.value["events"]
        assert state.value["totalEvents"] >= len(seen)
        if state.value["status"].type != "running":
            break
        assert time.monotonic() < deadline, "the run never ended"
        time.sleep(0.05)
    assert state.value["status"].type == "completed" and len(seen) == state.value["totalEvents"]
    assert state.value["summary"].value["executed"] == 3 and state.value["completedAt"].type == "some"
    kinds = {(e.type, e.value["task"]) for e in seen}
    assert kinds == {(k, t) for k in ("start", "complete") for t in ("greet", "my-task", "shout")}
    again = W.decode(c.get("/dataflow/execution", params={"offset": 1, "limit": 2}).content, state_t).value
    assert again["events"] == seen[1:3] and again["totalEvents"] == len(seen)
    chunk_t = W.response_type(W.LogChunkType)
    logs = [W.decode(c.get("/dataflow/logs/my-task", params={"stream": s, "offset": 0}).content, chunk_t) for s in ("stdout", "stderr")]
    assert all(x.type == "success" and x.value["complete"] for x in logs)
    text = "my-task: repeating Hello, World! 2 times\n"
    assert [x.value["data"] for x in logs] == [text, ""]
    assert [(x.value["offset"], x.value["size"], x.value["totalSize"]) for x in logs] == [(0, len(text), len(text)), (0, 0, 0)]
    # Read on from an offset a chunk at a time, as the original's client follows: byte offsets of the stream.
    got, at = "", 0
    while True:
        part = W.decode(c.get("/dataflow/logs/my-task", params={"offset": at, "limit": 6}).content, chunk_t).value
        assert part["offset"] == at and part["size"] == len(part["data"].encode()) <= 6 and part["totalSize"] == len(text)
        got, at = got + part["data"], at + part["size"]
        if part["complete"]:
            break
    assert got == text
    nope = W.decode(c.get("/dataflow/logs/nope", params={"offset": 0}).content, chunk_t)
    assert nope.type == "error" and nope.value.type == "task_not_found"


def test_single_repository_mode_refuses_create_and_remove(tmp_path):
    run("e3", "repo", "create", tmp_path / "one")
    with ApiServer(["--repo", tmp_path / "one"]) as s:
        assert httpx.put(s.url + "/api/repos/other").status_code == 405
        assert httpx.delete(s.url + "/api/repos/default").status_code == 405
        assert httpx.get(s.url + "/api/repos/other/status").status_code == 404
        assert run("e3", "workspace", "list", s.repo_url()).out == "No workspaces\n"
        r = run("e3", "repo", "remove", s.repo_url(), expect=None)
        assert r.returncode != 0 and (tmp_path / "one" / ".e3").is_dir()


def _gc_job(c: httpx.Client, name: str) -> str:
    """Start a gc job on repository `name` in the original's shape, wait for it to end; its ID."""
    r = c.post(f"/api/repos/{name}/gc", content=W.encode(W.struct(dryRun=True, minAge=W.option(None)), W.GcRequestType),
               headers={"Content-Type": W.BEAST2})
    assert r.status_code == 202
    jid = W.decode(r.content, W.response_type(W.GcStartResultType)).value["executionId"]
    deadline = time.monotonic() + 60
    while _gc_poll(c, name, jid) == "running":
        assert time.monotonic() < deadline, "gc job did not end"
        time.sleep(0.02)
    return jid


def _gc_poll(c: httpx.Client, name: str, jid: str) -> str:
    """The job's state as a poller sees it: running, succeeded, failed, or gone (404)."""
    r = c.get(f"/api/repos/{name}/gc/{jid}")
    if r.status_code == 404:
        assert r.json()["error"]["message"] == f"no job {jid}"
        return "gone"
    assert r.status_code == 200
    return W.decode(r.content, W.response_type(W.GcStatusResultType)).value["status"].type


def test_finished_jobs_are_forgotten_after_keep_jobs(served, tmp_path):
    # The default (an hour): a finished job still answers to its poller, again and again.
    name = f"keep{next(_count)}"
    c = httpx.Client(base_url=served.url)
    assert c.put(f"/api/repos/{name}").status_code == 201
    jid = _gc_job(c, name)
    assert [_gc_poll(c, name, jid) for _ in range(3)] == ["succeeded"] * 3
    # --keep-jobs 1s: the outcome stays for its poller, then the server forgets it.
    (tmp_path / "repos").mkdir()
    with ApiServer(["--repos", tmp_path / "repos", "--keep-jobs", "1s"]) as s:
        c = httpx.Client(base_url=s.url)
        assert c.put("/api/repos/r").status_code == 201
        jid = _gc_job(c, "r")
        seen = time.monotonic()  # the job ended before this, and was still there
        deadline = seen + 60
        while (state := _gc_poll(c, "r", jid)) == "succeeded":
            assert time.monotonic() < deadline, "a finished job was never forgotten"
            time.sleep(0.05)
        assert state == "gone"
        assert _gc_poll(c, "r", "0" * 32) == "gone"  # as for an ID never issued
    r = run(BIN / "e3-api-server", "--repos", tmp_path, "--keep-jobs", "forever", "--port", "0", expect=2)
    assert_one_line_error(r, "invalid duration")


# ------------------------------------------------------------------ traversal


@pytest.mark.parametrize("raw", [
    "/api/repos/..",
    "/api/repos/..%2Fescaped",
    "/api/repos/%2e%2e%2Fescaped",
    "/api/repos/.hidden",
    "/api/repos/a%00b",
    "/api/repos/a%5Cb",
])
def test_traversal_in_a_repository_name_writes_nothing_outside(served, raw):
    parent = served.dir.parent
    before = sorted(os.listdir(parent))
    status, _ = _raw(served, "PUT", raw)
    assert status in (400, 404)
    assert sorted(os.listdir(parent)) == before
    assert not (parent / "escaped").exists()


@pytest.mark.parametrize("path", ["inputs/..%2F..%2Fx", "inputs/%2e%2e/x", "..", "inputs/a%00", "inputs%5Cx"])
def test_traversal_in_a_dataset_path_is_refused(served, path):
    name = f"tr{next(_count)}"
    assert httpx.put(f"{served.url}/api/repos/{name}").status_code == 201
    status, _ = _raw(served, "PUT", f"/api/repos/{name}/workspaces/dev/datasets/{path}", b"x")
    assert status == 400


# ------------------------------------------------------------------ every repository route wants a token


def _route_urls(name: str) -> list[tuple[str, str]]:
    from e3.server.app import ServerConfig
    from e3.server.routes import routes

    out = []
    params = {"repo": name, "ws": "dev", "name": "p", "version": "1.0.0", "id": "0" * 32, "task": "t",
              "hash": "0" * 64, "path": "inputs/x"}
    for route in routes(ServerConfig(repos_dir=Path("/nonexistent"))):
        if not route.path.startswith("/api/repos"):
            continue
        path = route.path
        for k, val in params.items():
            path = path.replace("{" + k + "}", val).replace("{" + k + ":path}", val)
        for m in sorted(route.methods - {"HEAD"}):
            out.append((m, path))
    return out


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    d = tmp_path_factory.mktemp("keyed")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (d / "pub.pem").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    (d / "repos").mkdir()
    with ApiServer(["--repos", d / "repos", "--auth-key", d / "pub.pem", "--auth-issuer", "iss", "--auth-audience", "aud"]) as s:
        s.key = key
        yield s


def test_every_repository_route_without_a_valid_token_is_401(keyed):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    tokens = {
        "none": None,
        "expired": jwt.encode({"iss": "iss", "aud": "aud", "exp": now - 60}, keyed.key, algorithm="RS256"),
        "wrongly signed": jwt.encode({"iss": "iss", "aud": "aud", "exp": now + 600}, other, algorithm="RS256"),
    }
    urls = _route_urls("r")
    assert len(urls) > 40
    with httpx.Client(base_url=keyed.url) as c:
        for why, tok in tokens.items():
            headers = {"Authorization": f"Bearer {tok}"} if tok else {}
            for method, path in urls:
                r = c.request(method, path, headers=headers)
                assert r.status_code == 401, (why, method, path, r.status_code)
        good = jwt.encode({"iss": "iss", "aud": "aud", "exp": now + 600}, keyed.key, algorithm="RS256")
        assert c.get("/api/repos", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    assert not os.listdir(keyed.args[1])  # nothing was created by any of them


def test_a_command_against_a_server_wanting_a_token_says_to_log_in(keyed, tmp_path):
    url = keyed.repo_url("r")
    r = run("e3", "workspace", "list", url, env={"E3_CREDENTIALS_PATH": str(tmp_path / "none")}, expect=128)
    assert_one_line_error(r, f"not logged in to {keyed.url}", f"e3 login {keyed.url}")
    good = jwt.encode({"iss": "iss", "aud": "aud", "exp": int(time.time()) + 600}, keyed.key, algorithm="RS256")
    run("e3", "repo", "create", url, env={"E3_TOKEN": good})
    assert run("e3", "workspace", "list", url, env={"E3_TOKEN": good}).out == "No workspaces\n"
    r = run("e3", "repo", "list", keyed.url, env={"E3_CREDENTIALS_PATH": str(tmp_path / "none")}, expect=128)
    assert_one_line_error(r, f"not logged in to {keyed.url}")
    assert "r" in run("e3", "repo", "list", keyed.url, env={"E3_TOKEN": good}).out.splitlines()


def test_login_with_the_device_flow_then_a_command_works(tmp_path):
    creds = tmp_path / "creds.json"
    (tmp_path / "repos").mkdir()
    with ApiServer(["--repos", tmp_path / "repos", "--oidc"]) as s:
        env = command_env({"E3_CREDENTIALS_PATH": str(creds)})
        env.pop("E3_TOKEN", None)
        p = subprocess.Popen([str(BIN / "e3"), "login", s.url, "--no-browser"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        code = re.search(r"enter the code (\S+)", p.stdout.readline().decode()).group(1)
        assert httpx.post(f"{s.url}/device/approve", data={"user_code": code}).status_code == 200
        p.communicate(timeout=60)
        assert p.returncode == 0
        run("e3", "repo", "create", s.repo_url("mine"), env={"E3_CREDENTIALS_PATH": str(creds)})
        assert run("e3", "workspace", "list", s.repo_url("mine"), env={"E3_CREDENTIALS_PATH": str(creds)}).out == "No workspaces\n"
