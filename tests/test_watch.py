"""`e3 watch`: a package source deployed again on every change, optionally run."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from e3_testing.commands import command_env, read_until, run

SOURCE = """
from e3 import sdk
from e3.east import East, IntegerType

x = sdk.input("x", IntegerType, {x})
double = sdk.task("double", [x], East.function([IntegerType], IntegerType, lambda b, v: v * {k}))
package = sdk.package("live", "0.1.0", double)
"""


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo)
    return repo


def test_once_creates_the_workspace_deploys_and_runs(tmp_path):
    repo = _repo(tmp_path)
    src = tmp_path / "live.py"
    src.write_text(SOURCE.format(x=5, k=2))
    out = run("e3", "watch", repo, "dev", src, "--start", "--once").out
    assert "created workspace dev" in out and "deployed live@0.1.0" in out and "dataflow complete" in out
    assert run("e3", "get", repo, "dev.tasks.double.output").out.strip() == "10"


def test_a_broken_source_is_one_line_naming_the_file_and_line(tmp_path):
    repo = _repo(tmp_path)
    src = tmp_path / "broken.py"
    src.write_text("from e3 import sdk\n\nraise ValueError('no package today')\n")
    r = run("e3", "watch", repo, "dev", src, "--once", expect=1)
    line = [ln for ln in r.out.splitlines() if "error" in ln]
    assert len(line) == 1 and "broken.py:3" in line[0] and "no package today" in line[0]


def test_saving_the_source_redeploys_and_reruns_until_ctrl_c(tmp_path):
    repo = _repo(tmp_path)
    src = tmp_path / "live.py"
    src.write_text(SOURCE.format(x=5, k=2))
    proc = subprocess.Popen(
        ["e3", "watch", str(repo), "dev", str(src), "--start", "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=command_env(),
        # Started with SIGINT ignored, as a shell's `&` leaves it: Ctrl-C still ends the watch.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        read_until(proc, "dataflow complete")
        assert run("e3", "get", repo, "dev.tasks.double.output").out.strip() == "10"
        src.write_text(SOURCE.format(x=5, k=3))  # the program changed: same version, new content
        later = read_until(proc, "dataflow complete")
        assert "replaced" in later
        assert run("e3", "get", repo, "dev.tasks.double.output").out.strip() == "15"
        # The package watch built after the save is byte for byte what sdk.export makes of that source.
        export = tmp_path / "export.py"
        export.write_text(src.read_text() + "\nsdk.export(package, 'live.zip')\n")
        run("python3", export, cwd=tmp_path)
        assert "already imported" in run("e3", "package", "import", repo, tmp_path / "live.zip").out
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err


def test_not_a_repository_and_a_missing_source_are_one_line_errors(tmp_path):
    from e3_testing.commands import assert_one_line_error

    r = run("e3", "watch", tmp_path / "nowhere", "dev", tmp_path / "live.py", "--once", expect=128)
    assert_one_line_error(r, "not an e3 repository")
    repo = _repo(tmp_path)
    missing = run("e3", "watch", repo, "dev", tmp_path / "absent.py", "--once", expect=1)
    assert "error: no such source file" in missing.out and not missing.err
    assert not (repo / ".e3" / "refs" / "workspaces" / "dev").exists()  # nothing created
