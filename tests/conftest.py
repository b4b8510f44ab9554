"""Shared test fixtures: run the real executables from this checkout in temp repositories.

The helpers themselves are e3_testing (tests/e3_testing/), which benchmarks use too.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from e3_testing.commands import run


@pytest.fixture(scope="session")
def runpkg_zip(tmp_path_factory) -> Path:
    """tests/e3_testing/runner_tasks.py's package `runpkg` 1.0.0 as a zip (built once per session)."""
    from e3_testing.runner_tasks import run_package

    from e3 import sdk

    path = tmp_path_factory.mktemp("pkg") / "runpkg.zip"
    sdk.export(run_package(), path)
    return path


@pytest.fixture
def e3():
    """`e3(...)` runs the e3 dispatcher."""
    return lambda *args, **kw: run("e3", *args, **kw)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A fresh repository; returns the directory that holds `.e3`."""
    path = tmp_path / "repo"
    run("e3", "repo", "create", path)
    return path


@pytest.fixture
def demo_dev(repo) -> Path:
    """`repo` with tests/e3_testing/pkgfixture.py's package demo@1.0.0 deployed to workspace dev (two
    commits in dev's history, so that dev~1 exists)."""
    from e3_testing.pkgfixture import make_package

    make_package(repo)
    run("e3", "workspace", "create", repo, "dev")
    run("e3", "workspace", "deploy", repo, "dev", "demo@1.0.0")
    return repo


@pytest.fixture
def python() -> str:
    return sys.executable
