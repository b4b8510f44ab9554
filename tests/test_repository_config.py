"""The repository's config (`.e3/config`, git's format) read without pygit2: what git itself reads."""
from __future__ import annotations

import subprocess
import sys

import pytest

from e3_testing.commands import BIN, command_env, deployed, run
from e3_testing.packages import chain_zip

from e3.storage.repository import open_repository

CASES = {
    "unset": "",
    "plain": "[e3]\n\texecutor = dask://h:1\n",
    "case and a comment": '[E3]\n\tExecutor = "dask://h:1"  # the cluster\n',
    "a subsection is another section": '[e3 "sub"]\n\texecutor = no\n',
    "the last one counts": "[e3]\n\texecutor = a\n[core]\n\tbare = true\n[e3]\n\texecutor = b ; later\n",
    "quotes, escapes and spaces": '[e3]\n\texecutor = " x \\"y\\"\\tz " w  \n',
    "a name alone": "[e3]\n\texecutor\n",
    "a line continued": "[e3]\n\texecutor = dask://\\\nh:1\n",
    "on the header's line": "[e3] executor = x\n",
}


def git_config(repo, key: str) -> str | None:
    r = subprocess.run(["git", f"--git-dir={repo / '.e3'}", "config", "--get", key], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr
    return r.stdout[:-1] if r.returncode == 0 else None


@pytest.mark.parametrize("case", CASES)
def test_a_setting_reads_as_git_reads_it(repo, case):
    with open(repo / ".e3" / "config", "a") as f:
        f.write(CASES[case])
    assert open_repository(repo).config("e3.executor") == git_config(repo, "e3.executor")


def test_the_settings_e3_repo_create_writes_read_back(repo):
    r = open_repository(repo)
    for key in ("e3.formatVersion", "gc.auto", "core.logAllRefUpdates", "core.bare"):
        assert r.config(key) == git_config(repo, key) is not None


def test_a_start_with_nothing_to_do_loads_no_pygit2(tmp_path):
    """e3 start reads `e3.executor` on every run; reading it costs no pygit2 import (tens of ms)."""
    repo = deployed(tmp_path, chain_zip(tmp_path, 3), "chain@1.0.0")
    run("e3", "start", repo, "dev")
    r = subprocess.run(
        [sys.executable, "-X", "importtime", str(BIN / "e3"), "start", str(repo), "dev"],
        capture_output=True, text=True, env=command_env(),
    )
    assert r.returncode == 0, r.stderr
    loaded = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "e3.exec.start" in loaded and "pygit2" not in loaded
