"""e3.repo.workspace_writer: e3 start's commits, made on datasets the writer keeps itself. Each
commit is the one `workspace.transact` would make; a change another writer made meanwhile is kept
and handed back; a change that changes nothing makes no commit; the state leaf is refused."""
from __future__ import annotations

import shutil

import pytest

from e3_testing.commands import deployed, run, write
from e3_testing.packages import diamond_zip
from e3.errors import UsageError
from e3.repo import workspace
from e3.repo.workspace_writer import WorkspaceWriter
from e3.storage import refs
from e3.storage.git_objects import commit_tree_id
from e3.storage.repository import open_repository

A = ("tasks", "a", "output")
X = ("inputs", "x")


def _ran(tmp_path):
    """A repository whose dev ran once, opened; its commit and datasets."""
    path = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    run("e3", "start", path, "dev")
    repo = open_repository(path)
    snap = workspace.read_snapshot(repo, "dev")
    return path, repo, snap.commit, dict(snap.datasets)


def _head(repo) -> str:
    return refs.read(repo, workspace.ref_name("dev"))


def test_a_commit_is_the_one_transact_makes_and_the_writer_keeps_its_datasets(tmp_path):
    path, repo, commit, datasets = _ran(tmp_path)
    twin_path = tmp_path / "twin"
    shutil.copytree(path, twin_path)
    twin = open_repository(twin_path)
    changes = {A: datasets[X], ("tasks", "b", "output"): datasets[A]}  # hashes already stored

    writer = WorkspaceWriter(repo, "dev", commit, datasets)
    writer.prepare()
    seen = []
    new_commit, others = writer.transact(lambda current: seen.append(dict(current)) or changes, "batch")
    assert others is None  # nobody else wrote: the caller's tree plus its changes is the workspace's
    assert seen == [datasets]  # fn read the datasets of the commit it builds on
    assert _head(repo) == new_commit != commit
    view = workspace.transact(twin, "dev", lambda v: changes, "batch")
    assert commit_tree_id(repo, new_commit) == commit_tree_id(twin, view.commit)  # the same tree
    assert workspace.read_snapshot(repo, "dev").datasets == {**datasets, **changes}

    # The next commit builds on the writer's own datasets, changed in place.
    again, others = writer.transact(lambda current: seen.append(dict(current)) or {A: datasets[A]}, "back")
    assert others is None and seen[1] == {**datasets, **changes}
    assert workspace.read_snapshot(repo, "dev").datasets == {**datasets, **changes, A: datasets[A]}
    assert refs.read(repo, workspace.ref_name("dev")) == again


def test_a_change_made_by_another_writer_is_kept_and_handed_back(tmp_path):
    path, repo, commit, datasets = _ran(tmp_path)
    writer = WorkspaceWriter(repo, "dev", commit, datasets)
    run("e3", "set", path, "dev.inputs.x", write(tmp_path, "x.east", "41"))
    after_set = workspace.read_snapshot(repo, "dev")
    assert after_set.datasets[X] != datasets[X]

    seen = []
    new_commit, others = writer.transact(lambda current: seen.append(dict(current)) or {A: datasets[X]}, "batch")
    assert seen == [after_set.datasets]  # fn saw the set
    assert others == {**after_set.datasets, A: datasets[X]}  # the workspace's tree, the set and the change
    assert workspace.read_snapshot(repo, "dev").datasets == others
    assert _head(repo) == new_commit


def test_a_change_that_changes_nothing_makes_no_commit(tmp_path):
    _, repo, commit, datasets = _ran(tmp_path)
    writer = WorkspaceWriter(repo, "dev", commit, datasets)
    assert writer.transact(lambda current: {A: current[A]}, "same") == (commit, None)
    assert writer.transact(lambda current: None, "none") == (commit, None)
    assert _head(repo) == commit


def test_the_state_leaf_and_bad_paths_are_refused_and_nothing_is_committed(tmp_path):
    _, repo, commit, datasets = _ran(tmp_path)
    writer = WorkspaceWriter(repo, "dev", commit, datasets)
    with pytest.raises(UsageError, match="invalid dataset path"):
        writer.transact(lambda current: {workspace.STATE_PATH: datasets[A]}, "state")
    with pytest.raises(UsageError, match="invalid dataset path"):
        writer.transact(lambda current: {("tasks", ".."): datasets[A]}, "dots")
    assert _head(repo) == commit
    # and the writer still commits on the right tree afterwards
    new_commit, others = writer.transact(lambda current: {A: datasets[X]}, "batch")
    assert others is None and workspace.read_snapshot(repo, "dev").datasets == {**datasets, A: datasets[X]}
