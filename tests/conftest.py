"""Shared test fixtures: run the real executables from this checkout in temp repositories.

The helpers themselves are e3_testing (tests/e3_testing/), which benchmarks use too.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from e3_testing.commands import copy_repository, run

# Every test runs many e3 processes. Installed, e3's modules are compiled once (pip writes their .pyc);
# run from this checkout under PYTHONDONTWRITEBYTECODE each process would compile them all again.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


@pytest.fixture(scope="session", autouse=True)
def _repository_templates(tmp_path_factory):
    """Repositories e3_testing.commands.from_template makes once per session (per xdist worker) and copies."""
    from e3_testing import commands

    commands.TEMPLATES = tmp_path_factory.mktemp("templates")
    yield
    commands.TEMPLATES = None


@pytest.fixture(scope="session")
def runpkg_zip(tmp_path_factory) -> Path:
    """tests/e3_testing/runner_tasks.py's package `runpkg` 1.0.0 as a zip (built once per session)."""
    from e3_testing.runner_tasks import run_package

    from e3 import sdk

    path = tmp_path_factory.mktemp("pkg") / "runpkg.zip"
    sdk.export(run_package(), path)
    return path


@pytest.fixture(scope="session")
def example_zip(tmp_path_factory) -> Path:
    """examples/my_package.py's package `my-package` 1.0.0 as a zip (built once per session)."""
    import subprocess

    out = tmp_path_factory.mktemp("pkg") / "my-package.zip"
    subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "examples" / "my_package.py"), str(out)], check=True,
                   capture_output=True)
    return out


@pytest.fixture
def e3():
    """`e3(...)` runs the e3 dispatcher."""
    return lambda *args, **kw: run("e3", *args, **kw)


@pytest.fixture(scope="session")
def _created(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("created") / "repo"
    run("e3", "repo", "create", path)
    return path


@pytest.fixture(scope="session")
def _demo_deployed(tmp_path_factory, _created) -> Path:
    from e3_testing.pkgfixture import make_package

    path = copy_repository(_created, tmp_path_factory.mktemp("demo") / "repo")
    make_package(path)
    run("e3", "workspace", "create", path, "dev")
    run("e3", "workspace", "deploy", path, "dev", "demo@1.0.0")
    return path


@pytest.fixture
def repo(tmp_path, _created) -> Path:
    """A fresh repository (`e3 repo create`'s, copied); returns the directory that holds `.e3`."""
    return copy_repository(_created, tmp_path / "repo")


@pytest.fixture
def demo_dev(tmp_path, _demo_deployed) -> Path:
    """A repository with tests/e3_testing/pkgfixture.py's package demo@1.0.0 deployed to workspace dev
    by `e3 workspace create` and `e3 workspace deploy` (two commits in dev's history, so that dev~1
    exists); copied from one made once per session."""
    return copy_repository(_demo_deployed, tmp_path / "repo")


@pytest.fixture
def python() -> str:
    return sys.executable
