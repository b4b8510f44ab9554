"""Faults with real processes: kill -9 mid log append, a full disk, a hanging task."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from e3_testing.runner_tasks import Integer, bash_command, make_task, value

from e3_testing.commands import assert_one_line_error, command_env, run
from e3.storage import logs, queue, records
from e3.storage.identity import task_id
from e3.storage.repository import open_repository

APPEND = """
import sys
from e3.storage.logs import LogWriter
w = LogWriter(sys.argv[1])
i = 0
print("go", flush=True)
while True:
    w.write("stdout", i.to_bytes(4, "big") * 16000)  # 64000 bytes: one record, one write()
    i += 1
"""


@pytest.mark.parametrize("delay", [0.01, 0.05, 0.2])
def test_kill_mid_log_append_leaves_the_log_readable_up_to_its_last_whole_record(tmp_path, delay):
    path = tmp_path / "x.eastl"
    p = subprocess.Popen([sys.executable, "-c", APPEND, str(path)], stdout=subprocess.PIPE, env=command_env())
    assert p.stdout.readline() == b"go\n"
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    recs = logs.read_records(path)
    assert all(r["bytes"] == k.to_bytes(4, "big") * 16000 for k, r in enumerate(recs))  # whole, in order
    with logs.LogWriter(path) as w:  # the next writer cuts a torn tail and appends after it
        w.end("success")
    again = logs.read_records(path)
    assert again[: len(recs)] == recs and again[-1]["stream"] == "end" and len(again) == len(recs) + 1


def shell_entries(r, script: str, n: int) -> list[queue.Entry]:
    th = make_task(r.objects, bash_command(script), 1)
    out = []
    for i in range(n):
        x = r.objects.write(value(i, Integer))
        out.append(queue.Entry(queue.new_execution_id(), "dev", f"t{i}", th, task_id(th, [x]), (x,), ("tasks", f"t{i}", "output")))
    return out


def blob_header(n: int) -> str:
    """The Beast2 bytes before an n-byte Blob's contents, as printf escapes."""
    from e3 import east as e3east

    import east

    data = e3east.encode(b"\0" * n, east.BlobType)
    return "".join(f"\\x{b:02x}" for b in data[: len(data) - n])


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (needs root); grown later with `grow()`."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")

    def grow():
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)

    try:
        yield mnt, grow
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def test_a_full_disk_stops_the_worker_with_one_clear_line_and_the_run_resumes_after_space_is_freed(small_disk):
    pytest.importorskip("e3.repo.workspace")  # e3-run-task writes outputs into workspaces
    mnt, grow = small_disk
    run("e3", "repo", "create", mnt / "repo")
    r = open_repository(mnt / "repo")
    # Each output is a Blob of 400 KB of random bytes: a dozen do not fit in 3 MB.
    entries = shell_entries(r, f'printf "{blob_header(400000)}" > "${{@: -1}}"; head -c 400000 /dev/urandom >> "${{@: -1}}"', 12)
    queue.enqueue_many(r, "local", entries)
    res = run("e3-run-task", mnt / "repo", "--once", expect=128)
    assert_one_line_error(res, "no space left on device")
    assert_whole(mnt / "repo")
    assert any(records.summary(r, e.task_id) is None or records.summary(r, e.task_id).kind != "success" for e in entries)
    grow()
    run("e3-run-task", mnt / "repo", "--once", "-q")
    for e in entries:
        s = records.summary(r, e.task_id)
        assert s is not None and s.kind == "success", e.task
        assert len(r.objects.read(s.output_hash)) == 400000 + len(blob_header(400000)) // 4
    assert list(queue.list_entries(r)) == []
    assert_whole(mnt / "repo")


def test_a_hanging_task_times_out_as_an_error_while_other_workers_go_on(repo):
    pytest.importorskip("e3.repo.workspace")  # e3-run-task writes outputs into workspaces
    r = open_repository(repo)
    hang = shell_entries(r, "sleep 60", 1)
    ok = shell_entries(r, 'cp "$1" "${@: -1}"', 6)
    queue.enqueue_many(r, "local", hang + ok)
    t0 = time.monotonic()
    res = run("e3-run-task", repo, "--once", "--workers", "2", "--timeout", "1", expect=1)
    assert time.monotonic() - t0 < 30
    lines = dict(line.split(" ", 1) for line in res.out.splitlines())
    assert lines[hang[0].execution_id].startswith("error")
    assert all(lines[e.execution_id].startswith("success") for e in ok)
    assert records.latest(r, hang[0].task_id).kind == "error"
    assert "timed out" in records.latest(r, hang[0].task_id).message


def test_e3_start_on_a_full_disk_names_the_cause_keeps_the_repository_whole_and_resumes(small_disk, tmp_path):
    from e3 import sdk
    from e3.east import BlobType, East, IntegerType

    mnt, grow = small_disk
    header = blob_header(400000)

    def big(b, ins, out):
        return East.str(f'printf "{header}" > ', sdk.quote(out), "; head -c 400000 /dev/urandom >> ", sdk.quote(out))

    x = sdk.input("x", IntegerType, 0)
    sdk.export(sdk.package("big", "1.0.0", *[sdk.custom_task(f"big{i:02d}", [x], BlobType, big) for i in range(12)]), tmp_path / "big.zip")
    repo = mnt / "repo"
    run("e3", "repo", "create", repo)
    run("e3", "workspace", "import", repo, "dev", tmp_path / "big.zip")
    first = run("e3", "start", repo, "dev", expect=None)
    # Tasks whose output did not fit fail naming the cause (exit 1), or, when the run's own
    # writes (a record, a commit) hit the wall, the run stops with that one line (exit 128).
    assert first.returncode in (1, 128), first.err
    if first.returncode == 128:
        assert_one_line_error(first, "no space left on device")
    else:
        assert "no space left on device" in first.out
    assert_whole(repo)  # nothing torn (a task killed with its run may leave a scratch directory)
    grow()
    again = run("e3", "start", repo, "dev")
    assert "12 tasks:" in again.out and "failed" not in again.out
    assert_whole(repo)


def assert_whole(repo) -> None:
    """e3-fsck finds nothing but temporary files a stopped writer left (e3 repo gc removes those)."""
    fsck = run("e3-fsck", "--repo", repo, expect=None)
    assert [line for line in fsck.out.splitlines() if not line.startswith("temp ")] == []


def test_a_shell_task_that_fills_the_disk_itself_is_not_failed_but_named_and_run_again(small_disk, tmp_path):
    # The command's own write hits the wall (not e3's copy of its output): exit status 1 alone
    # would hide the cause and record a failure of the task for what is the machine's fault.
    from e3 import sdk
    from e3.east import BlobType, East, IntegerType

    mnt, grow = small_disk

    def fill(b, ins, out):
        return East.str(f'printf "{blob_header(4000000)}" > ', sdk.quote(out), "; head -c 4000000 /dev/zero >> ", sdk.quote(out))

    x = sdk.input("x", IntegerType, 0)
    sdk.export(sdk.package("fill", "1.0.0", sdk.custom_task("fill", [x], BlobType, fill)), tmp_path / "fill.zip")
    repo = mnt / "repo"
    run("e3", "repo", "create", repo)
    run("e3", "workspace", "import", repo, "dev", tmp_path / "fill.zip")
    first = run("e3", "start", repo, "dev", expect=None)
    assert first.returncode in (1, 128), first.err
    said = first.err if first.returncode == 128 else first.out
    assert "no space left on device" in said and "exited with status" in said, said
    assert "failed" not in run("e3", "workspace", "status", repo, "dev").out
    grow()
    again = run("e3", "start", repo, "dev")
    assert "1 tasks: 1 ran" in again.out or "1 task: 1 ran" in again.out, again.out
    assert_whole(repo)
