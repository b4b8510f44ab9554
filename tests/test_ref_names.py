"""One rule for the names in e3's refs, on every path that makes a ref; a corrupt workspace ref is reported."""
from __future__ import annotations

import pytest

from e3_testing.commands import assert_one_line_error, run

BAD_WORKSPACES = ["-rf", "a/b", "café", ".hidden", "x.lock"]


@pytest.fixture
def commit(repo) -> str:
    run("e3", "workspace", "create", repo, "dev")
    return run("git", "--git-dir", repo / ".e3", "rev-parse", "refs/workspaces/dev").out.strip()


@pytest.mark.parametrize("name", BAD_WORKSPACES)
def test_update_ref_refuses_a_workspace_name_that_workspace_create_refuses(repo, commit, name):
    create = run("e3", "workspace", "create", repo, "--", name, expect=2)
    assert_one_line_error(create, f"invalid workspace name {name!r}")
    r = run("e3-update-ref", "--repo", repo, f"refs/workspaces/{name}", commit, expect=128)
    assert_one_line_error(r, f"invalid workspace name {name!r}")
    r = run("e3-update-ref", "--repo", repo, "--stdin", input=f"create refs/workspaces/{name} {commit}\n", expect=128)
    assert_one_line_error(r, f"invalid workspace name {name!r}")
    assert run("e3", "list", repo).out == "dev  (empty)\n" or "dev" in run("e3", "list", repo).out


@pytest.mark.parametrize("ref", ["refs/packages/demo", "refs/packages/demo/1.0.0/x", "refs/tasks/dev", "refs/tasks/-rf/t"])
def test_update_ref_refuses_package_and_task_refs_of_the_wrong_shape(repo, commit, ref):
    r = run("e3-update-ref", "--repo", repo, ref, commit, expect=128)
    assert_one_line_error(r, "invalid")


def test_update_ref_still_moves_e3_refs_with_good_names_and_refs_outside_e3s_namespaces(repo, commit):
    run("e3-update-ref", "--repo", repo, "refs/workspaces/other_1.0@x+y=z", commit)
    run("e3-update-ref", "--repo", repo, "refs/packages/demo/1.0.0", commit)
    run("e3-update-ref", "--repo", repo, "refs/heads/a/b/c", commit)
    assert "other_1.0@x+y=z" in run("e3", "list", repo).out


def test_list_reports_a_workspace_ref_holding_garbage_as_get_and_start_do(repo, commit):
    run("e3", "workspace", "create", repo, "zz")
    (repo / ".e3" / "refs" / "workspaces" / "dev").write_text("garbage\n")
    for argv in (["list", repo], ["get", repo, "dev.inputs.x"], ["workspace", "list", repo]):
        r = run("e3", *argv, expect=128)
        assert_one_line_error(r, "ref refs/workspaces/dev is corrupt")
