"""Choosing where `e3 start` runs (e3.exec.executor_choice): Dask is an optional extra.

Without it installed, the default install works as before (the local pool,
which never imports Dask), and naming a cluster is a one-line error that says
what to install. "Not installed" is a `distributed` package first on the module
path whose import fails, as Python reports a missing module; it reaches every
process the commands start (the local pool's workers too).
"""
from __future__ import annotations

import os

from e3_testing.commands import LIB, assert_one_line_error, run

from e3 import sdk
from e3.east import East, IntegerType


def _without_dask(tmp_path) -> dict[str, str]:
    fake = tmp_path / "no-dask"
    for name in ("distributed", "dask"):
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text(f"raise ModuleNotFoundError(\"No module named '{name}'\", name={name!r})\n")
    return {"PYTHONPATH": os.pathsep.join([str(fake), str(LIB), *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_without_dask_the_local_pool_runs_and_naming_a_cluster_says_what_to_install(tmp_path):
    env = _without_dask(tmp_path)
    x = sdk.input("x", IntegerType, 20)
    pkg = sdk.package("plain", "1.0.0", sdk.task("double", [x], East.function([IntegerType], IntegerType, lambda b, v: v + v)))
    sdk.export(pkg, tmp_path / "plain.zip")
    repo = tmp_path / "repo"
    run("e3", "repo", "create", repo, env=env)
    run("e3", "workspace", "import", repo, "dev", tmp_path / "plain.zip", env=env)

    r = run("e3", "start", repo, "dev", "--executor", "dask://127.0.0.1:8786", expect=128, env=env)
    assert_one_line_error(r, "needs dask", "pip install 'e3-py[dask]'")
    run("git", f"--git-dir={repo / '.e3'}", "config", "e3.executor", "dask://127.0.0.1:8786")
    r = run("e3", "start", repo, "dev", expect=128, env=env)  # the configured one, likewise
    assert_one_line_error(r, "needs dask")

    assert run("e3", "start", repo, "dev", "--executor", "local", env=env).out.startswith("ran double")
    assert run("e3", "get", repo, "dev.tasks.double.output", env=env).out.strip() == "40"
