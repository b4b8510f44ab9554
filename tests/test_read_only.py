"""Reading never needs write access: every reading command works on a repository mounted read-only.

The repository is bind-mounted read-only in a user and mount namespace of its
own (`unshare -rm`), so the check holds for root as for anyone: nothing in
`.e3` can be created, written or locked for writing.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from e3_testing.commands import command_env, copy_repository, deployed, run
from e3_testing.packages import chain_zip

READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'


def read_only(directory: Path, *argv) -> subprocess.CompletedProcess:
    """Run `argv` with `directory` mounted read-only."""
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", READ_ONLY, "ro", str(directory), *[str(a) for a in argv]],
        capture_output=True, env=command_env(), timeout=120,
    )


@pytest.fixture(scope="module")
def _ran_once(tmp_path_factory) -> Path:
    """A 5-task chain deployed and run to the end, once for the module."""
    where = tmp_path_factory.mktemp("ran")
    repo = deployed(where, chain_zip(where, 5), "chain@1.0.0")
    run("e3", "start", repo, "dev", "-q")
    probe = read_only(repo, "sh", "-c", f"! touch '{repo}/.e3/probe' 2>/dev/null")
    if probe.returncode != 0:
        pytest.skip(f"cannot mount read-only here (unshare -rm): {probe.stderr.decode(errors='replace').strip()}")
    return repo


@pytest.fixture
def ran(tmp_path, _ran_once) -> Path:
    """Each test's own copy of the run repository, so that what one test's commands write (or a
    reading command would wrongly write) never reaches another."""
    return copy_repository(_ran_once, tmp_path / "repo")


READERS = [
    ["e3", "workspace", "status", "{repo}", "dev"],
    ["e3", "workspace", "list", "{repo}"],
    ["e3", "workspace", "log", "{repo}", "dev"],
    ["e3", "workspace", "diff", "{repo}", "dev"],
    ["e3", "list", "{repo}"],
    ["e3", "list", "{repo}", "dev.tasks", "-l"],
    ["e3", "get", "{repo}", "dev.tasks.t00004.output"],
    ["e3", "repo", "status", "{repo}"],
    ["e3", "package", "list", "{repo}"],
    ["e3", "logs", "{repo}", "dev.t00001"],
    ["e3-fsck", "--repo", "{repo}"],
    ["e3-rev-parse", "--repo", "{repo}", "dev.tasks.t00004.output"],
    ["e3-show-ref", "--repo", "{repo}"],
    ["e3-cat-object", "--repo", "{repo}", "-p", "{value}"],
    ["e3-log-tail", "--repo", "{repo}", "{task_id}"],
    ["e3", "package", "export", "{repo}", "chain@1.0.0", "{out}/chain.zip"],
    ["e3", "workspace", "export", "{repo}", "dev", "{out}/dev.zip"],
    ["e3", "status", "{repo}", "dev.tasks.t00004.output"],
    ["e3", "logs", "{repo}", "dev"],
    ["e3", "start", "{repo}", "dev", "--dry-run"],
]


@pytest.mark.parametrize("argv", READERS, ids=lambda a: " ".join(a[:3]).replace("{repo}", "REPO"))
def test_a_reading_command_works_on_a_read_only_repository(ran, argv):
    value = run("e3-rev-parse", "--repo", ran, "dev.tasks.t00004.output").out.strip()
    # Any executed task's id: its record pointer (a task that printed nothing has no log file).
    task_id = next(n for n in os.listdir(ran / ".e3" / "tasks") if len(n) == 64)
    names = {"{repo}": str(ran), "{out}": str(ran.parent), "{value}": value, "{task_id}": task_id}

    def filled(arg: str) -> str:
        for name, text in names.items():
            arg = arg.replace(name, text)
        return arg

    r = read_only(ran, *map(filled, argv))
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode(errors="replace")
    assert b"read-only" not in r.stderr


def test_workspace_status_on_a_read_only_repository_says_what_it_says_on_a_writable_one(ran):
    writable = run("e3", "workspace", "status", ran, "dev").out
    assert read_only(ran, "e3", "workspace", "status", ran, "dev").stdout.decode() == writable
