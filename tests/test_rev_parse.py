"""e3-rev-parse: refs, pkg@version, reflog and history suffixes, hex prefixes, dataset paths."""
from __future__ import annotations

import pytest

from e3_testing.commands import assert_one_line_error, run
from test_refs import commit, upd


@pytest.fixture
def history(repo):
    """Workspace dev with three states: x=1; x=2,y=3; x=2,y=3,tasks/t/output=4."""
    c1 = commit(repo, {"inputs/x": "1"}, message="one")
    c2 = commit(repo, {"inputs/x": "2", "inputs/y": "3"}, c1, message="two")
    c3 = commit(repo, {"inputs/x": "2", "inputs/y": "3", "tasks/t/output": "4"}, c2, message="three")
    for c in (c1, c2, c3):
        upd(repo, "refs/workspaces/dev", c)
    upd(repo, "refs/packages/pkg/1.0.0", c1)
    return repo, (c1, c2, c3)


def parse(repo, *names, expect=0):
    return run("e3-rev-parse", "--repo", repo, *names, expect=expect)


def obj(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_rev_parse_resolves_refs_packages_and_history(history):
    repo, (c1, c2, c3) = history
    out = parse(repo, "dev", "refs/workspaces/dev", "pkg@1.0.0", "dev~1", "dev~2", "dev^", "dev^0", "dev~", "packages/pkg/1.0.0").out
    assert out.split() == [c3, c3, c1, c2, c1, c2, c3, c2, c1]


def test_rev_parse_reads_the_reflog(history):
    repo, (c1, c2, c3) = history
    upd(repo, "refs/workspaces/dev", c1)  # a reset: history and reflog now differ
    assert parse(repo, "dev@{0}", "dev@{1}", "dev@{2}", "dev@{3}").out.split() == [c1, c3, c2, c1]
    assert_one_line_error(parse(repo, "dev@{9}", expect=128), "only has 4 entries")


def test_rev_parse_resolves_dataset_paths_at_any_revision(history):
    repo, _ = history
    out = parse(repo, "dev.inputs.x", "dev.tasks.t.output", "dev~2.inputs.x", "dev@{1}.inputs.y", "dev.`inputs`.y").out
    assert out.split() == [obj("2"), obj("4"), obj("1"), obj("3"), obj("3")]


def test_rev_parse_dataset_without_value_is_an_error(history):
    repo, _ = history
    assert_one_line_error(parse(repo, "dev~2.inputs.y", expect=128), "dev~2.inputs.y has no value")
    assert_one_line_error(parse(repo, "dev.tasks", expect=128), "tree of datasets")
    assert_one_line_error(parse(repo, "nope.inputs.x", expect=128), "unknown revision 'nope.inputs.x'")


def test_rev_parse_resolves_hex_prefixes_of_commits_and_objects(history):
    repo, (c1, _, _) = history
    assert parse(repo, c1[:7], c1, obj("1")[:10], obj("1")).out.split() == [c1, c1, obj("1"), obj("1")]


def test_rev_parse_prefers_a_ref_over_a_hex_prefix(history):
    repo, (c1, _, c3) = history
    upd(repo, f"refs/workspaces/{c3[:6]}", c1)
    assert parse(repo, c3[:6]).out == f"{c1}\n"


def test_rev_parse_unknown_name_is_fatal_and_prints_nothing(history):
    repo, _ = history
    r = parse(repo, "dev", "nope", expect=128)
    assert r.out == ""
    assert_one_line_error(r, "unknown revision 'nope'")
    assert_one_line_error(parse(repo, "dev~5", expect=128), "history of")
    assert_one_line_error(parse(repo, "dev^2", expect=128), "has 1 parent")
    assert_one_line_error(parse(repo, "1234567890" * 4, expect=128), "unknown revision")


def test_rev_parse_verify_and_quiet(history):
    repo, (_, _, c3) = history
    assert parse(repo, "--verify", "dev").out == f"{c3}\n"
    r = parse(repo, "--verify", "-q", "nope", expect=1)
    assert r.out == r.err == ""
    assert "exactly one NAME" in parse(repo, "--verify", "dev", "dev", expect=2).err
    assert "--quiet only works with --verify" in parse(repo, "-q", "dev", expect=2).err


def test_rev_parse_symbolic_full_name(history):
    repo, (c1, _, _) = history
    assert parse(repo, "--symbolic-full-name", "dev~2", "pkg@1.0.0").out.split() == ["refs/workspaces/dev", "refs/packages/pkg/1.0.0"]
    assert_one_line_error(parse(repo, "--symbolic-full-name", c1, expect=128), "does not start from a ref")


def test_rev_parse_says_whether_a_dataset_is_unassigned_or_unknown(repo):
    from test_gc import build_world

    build_world(repo)
    c = run("e3-rev-parse", "--repo", repo, "dev").out.strip()
    # A state of the deployed workspace where inputs.x has no value.
    from e3.storage import refs
    from e3.storage.repository import open_repository

    r = open_repository(repo)
    entries = refs.read_state(r, c)
    del entries[("inputs", "x")]
    upd(repo, "refs/workspaces/dev", refs.write_state(r, entries, c, "reset x"))
    assert_one_line_error(parse(repo, "dev.inputs.x", expect=128), "dataset dev.inputs.x is unassigned")
    assert_one_line_error(parse(repo, "dev.inputs.nope", expect=128), "no dataset inputs.nope in package demo@1.0.0")
    assert_one_line_error(parse(repo, "dev@{2}.inputs.y", expect=128), "not deployed in that state")
    assert_one_line_error(parse(repo, "dev@{9}.inputs.x", expect=128), "only has 4 entries")
