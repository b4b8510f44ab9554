"""Refs: e3-update-ref, e3-show-ref and the refs library (git's files backend, CAS, reflogs, transactions)."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

from e3_testing.commands import LIB, assert_one_line_error, command_env, run

from e3.storage import refs
from e3.storage.repository import open_repository

ZERO = "0" * 40


def commit(repo_dir, entries: dict | None = None, parent: str | None = None, message: str = "state") -> str:
    """A workspace-style commit: each leaf holds an e3 object hash."""
    r = open_repository(repo_dir)
    out = {}
    for path, text in (entries or {}).items():
        out[tuple(path.split("/"))] = r.objects.write(text.encode())
    return refs.write_state(r, out, parent, message)


def git(repo_dir, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={repo_dir}/.e3", *args], check=True, capture_output=True, text=True, env=command_env()
    ).stdout


def ref_files(repo_dir) -> list[str]:
    root = repo_dir / ".e3"
    return sorted(str(p.relative_to(root)) for sub in ("refs", "logs") for p in (root / sub).rglob("*") if p.is_file())


def upd(repo_dir, *args: str, expect: int = 0, input=None):
    return run("e3-update-ref", "--repo", repo_dir, *args, expect=expect, input=input)


# ---------------------------------------------------------------- e3-update-ref


def test_update_ref_creates_a_ref_that_show_ref_lists(repo):
    c = commit(repo)
    upd(repo, "refs/workspaces/dev", c)
    assert run("e3-show-ref", "--repo", repo).out == f"{c} refs/workspaces/dev\n"


def test_update_ref_writes_git_compatible_ref_and_reflog_with_message(repo):
    c1 = commit(repo, message="one")
    c2 = commit(repo, parent=c1, message="two")
    upd(repo, "-m", "first", "refs/workspaces/dev", c1)
    upd(repo, "-m", "second", "refs/workspaces/dev", c2, c1)
    assert git(repo, "rev-parse", "refs/workspaces/dev").strip() == c2
    log = git(repo, "reflog", "show", "--format=%H %gs", "refs/workspaces/dev").splitlines()
    assert log == [f"{c2} second", f"{c1} first"]


def test_update_ref_refuses_when_old_value_moved(repo):
    c1, c2, c3 = commit(repo, message="1"), commit(repo, message="2"), commit(repo, message="3")
    upd(repo, "refs/workspaces/dev", c1)
    upd(repo, "refs/workspaces/dev", c2)
    r = upd(repo, "refs/workspaces/dev", c3, c1, expect=128)
    assert_one_line_error(r, "refs/workspaces/dev moved", c1, c2)
    assert refs.read(open_repository(repo), "refs/workspaces/dev") == c2
    assert len(refs.reflog(open_repository(repo), "refs/workspaces/dev")) == 2


def test_update_ref_with_zero_old_refuses_an_existing_ref(repo):
    c1, c2 = commit(repo, message="1"), commit(repo, message="2")
    upd(repo, "refs/workspaces/dev", c1, ZERO)
    assert_one_line_error(upd(repo, "refs/workspaces/dev", c2, ZERO, expect=128), "moved", "expected no ref")
    assert_one_line_error(upd(repo, "refs/workspaces/dev", c2, "", expect=128), "moved")


def test_update_ref_accepts_revisions_as_values(repo):
    c1 = commit(repo, message="1")
    c2 = commit(repo, parent=c1, message="2")
    upd(repo, "refs/workspaces/dev", c2)
    upd(repo, "refs/workspaces/old", "dev~1")
    upd(repo, "refs/workspaces/dev", c1[:8], "dev")
    assert run("e3-show-ref", "--repo", repo, "--hash").out == f"{c1}\n{c1}\n"


def test_update_ref_delete_removes_ref_and_reflog(repo):
    c = commit(repo)
    upd(repo, "refs/workspaces/dev", c)
    upd(repo, "-d", "refs/workspaces/dev", c)
    assert ref_files(repo) == []
    run("e3-show-ref", "--repo", repo, expect=1)


def test_update_ref_delete_refuses_when_moved(repo):
    c1, c2 = commit(repo, message="1"), commit(repo, message="2")
    upd(repo, "refs/workspaces/dev", c2)
    assert_one_line_error(upd(repo, "-d", "refs/workspaces/dev", c1, expect=128), "moved")
    assert refs.read(open_repository(repo), "refs/workspaces/dev") == c2


def test_update_ref_delete_of_unknown_ref_is_an_error(repo):
    assert_one_line_error(upd(repo, "-d", "refs/workspaces/nope", expect=128), "refs/workspaces/nope does not exist")


def test_update_ref_refuses_a_value_that_is_not_a_commit(repo):
    r = open_repository(repo)
    obj = r.objects.write(b"value")
    blob = str(r.git.create_blob(b"x"))
    assert_one_line_error(upd(repo, "refs/workspaces/dev", blob, expect=128), "git blob, not a commit")
    assert_one_line_error(upd(repo, "refs/workspaces/dev", obj, expect=128), "e3 object, not a commit")
    assert_one_line_error(upd(repo, "refs/workspaces/dev", "1" * 40, expect=128), "unknown revision")
    assert ref_files(repo) == []


@pytest.mark.parametrize(
    "name",
    ["refs/workspaces/a..b", "refs/workspaces/../../escape", "refs/workspaces/a\x01b", "refs/workspaces/a b",
     "/etc/passwd", "../outside", "refs/", "refs/workspaces/x.lock", "dev", "refs/workspaces/a@{1}", "refs//x"],
)
def test_update_ref_rejects_bad_ref_names(repo, name):
    c = commit(repo)
    r = upd(repo, name, c, expect=128)
    assert_one_line_error(r, "invalid ref name")
    assert ref_files(repo) == []
    assert not (repo / "outside").exists() and not (repo.parent / "escape").exists()


def test_update_ref_usage_errors_exit_2(repo):
    assert "expected REF NEW" in upd(repo, "refs/workspaces/dev", expect=2).err
    assert "-d takes" in upd(repo, "-d", expect=2).err
    assert "--stdin takes no" in upd(repo, "--stdin", "refs/x", expect=2).err


def test_update_ref_reports_a_held_lock(repo):
    c = commit(repo)
    (repo / ".e3" / "refs" / "workspaces").mkdir(parents=True)
    lock = repo / ".e3" / "refs" / "workspaces" / "dev.lock"
    lock.write_text("")
    with open(lock) as held:  # held, as a live e3 writer holds its lock file
        fcntl.flock(held, fcntl.LOCK_EX)
        r = upd(repo, "refs/workspaces/dev", c, expect=128)
    assert_one_line_error(r, "cannot lock ref refs/workspaces/dev", "dev.lock exists")
    assert not (repo / ".e3" / "refs" / "workspaces" / "dev").exists()


def test_update_ref_refuses_a_ref_inside_another_ref(repo):
    c = commit(repo)
    # Outside e3's namespaces, where a workspace ref could not hold another at all (tests/test_ref_names.py).
    upd(repo, "refs/heads/dev", c)
    assert_one_line_error(upd(repo, "refs/heads/dev/x", c, ZERO, expect=128), "refs/heads/dev exists")
    assert_one_line_error(upd(repo, "refs/heads/dev/x", c, expect=128), "refs/heads/dev exists")
    assert_one_line_error(upd(repo, "refs/heads", c, expect=128), "refs exist under")


def test_packed_refs_are_read_updated_and_deleted(repo):
    c1 = commit(repo, message="1")
    c2 = commit(repo, parent=c1, message="2")
    upd(repo, "refs/workspaces/a", c1)
    upd(repo, "refs/workspaces/b", c1)
    git(repo, "pack-refs", "--all", "--prune")
    assert not (repo / ".e3" / "refs" / "workspaces" / "a").exists()
    assert run("e3-show-ref", "--repo", repo).out == f"{c1} refs/workspaces/a\n{c1} refs/workspaces/b\n"
    upd(repo, "refs/workspaces/a", c2, c1)
    assert_one_line_error(upd(repo, "-d", "refs/workspaces/b", c2, expect=128), "moved")
    upd(repo, "-d", "refs/workspaces/b", c1)
    assert run("e3-show-ref", "--repo", repo).out == f"{c2} refs/workspaces/a\n"
    assert git(repo, "show-ref").strip() == f"{c2} refs/workspaces/a"


def test_refs_written_by_git_are_read(repo):
    c = commit(repo)
    git(repo, "update-ref", "refs/packages/p/1.0.0", c)
    assert run("e3-rev-parse", "--repo", repo, "p@1.0.0").out == f"{c}\n"


# ---------------------------------------------------------------- --stdin transactions


def test_stdin_applies_every_verb_in_one_transaction(repo):
    c1, c2 = commit(repo, message="1"), commit(repo, message="2")
    upd(repo, "refs/workspaces/gone", c1)
    upd(repo, "refs/workspaces/moving", c1)
    upd(repo, "refs/workspaces/fixed", c2)
    script = (
        f"create refs/workspaces/new {c1}\n"
        f"update refs/workspaces/moving {c2} {c1}\n"
        f"delete refs/workspaces/gone {c1}\n"
        f"verify refs/workspaces/fixed {c2}\n"
        f"verify refs/workspaces/absent\n"
        "option no-deref\n\n"
    )
    upd(repo, "-m", "batch", "--stdin", input=script)
    out = run("e3-show-ref", "--repo", repo).out
    assert out == f"{c2} refs/workspaces/fixed\n{c2} refs/workspaces/moving\n{c1} refs/workspaces/new\n"
    assert refs.reflog(open_repository(repo), "refs/workspaces/moving")[0].message == "batch"


def test_stdin_changes_nothing_when_one_old_value_moved(repo):
    c1, c2 = commit(repo, message="1"), commit(repo, message="2")
    upd(repo, "refs/workspaces/a", c1)
    upd(repo, "refs/workspaces/b", c1)
    before = ref_files(repo), run("e3-show-ref", "--repo", repo).out
    script = f"update refs/workspaces/a {c2} {c1}\ncreate refs/workspaces/c {c2}\nupdate refs/workspaces/b {c2} {c2}\n"
    assert_one_line_error(upd(repo, "--stdin", input=script, expect=128), "refs/workspaces/b moved")
    assert (ref_files(repo), run("e3-show-ref", "--repo", repo).out) == before


def test_stdin_verify_of_a_moved_ref_aborts(repo):
    c1, c2 = commit(repo, message="1"), commit(repo, message="2")
    upd(repo, "refs/workspaces/a", c1)
    script = f"create refs/workspaces/b {c1}\nverify refs/workspaces/a {c2}\n"
    assert_one_line_error(upd(repo, "--stdin", input=script, expect=128), "moved")
    assert not (repo / ".e3" / "refs" / "workspaces" / "b").exists()


@pytest.mark.parametrize(
    "line, needle",
    [
        ("frobnicate refs/workspaces/x", "unknown command 'frobnicate'"),
        ("update refs/workspaces/x", "update takes REF NEW [OLD]"),
        ("create refs/workspaces/x {c} {c}", "create takes REF NEW"),
        ("delete", "delete takes REF [OLD]"),
        ("update refs/workspaces/a..b {c}", "invalid ref name"),
        ("update refs/workspaces/x nonsense", "unknown revision"),
        ("create refs/workspaces/x " + ZERO, "zero value"),
        ("update  refs/workspaces/x {c}", "update takes"),
    ],
)
def test_stdin_malformed_line_names_its_number_and_changes_nothing(repo, line, needle):
    c = commit(repo)
    script = f"create refs/workspaces/ok {c}\n" + line.format(c=c) + "\n"
    r = upd(repo, "--stdin", input=script, expect=128)
    assert_one_line_error(r, "stdin line 2", needle)
    assert ref_files(repo) == []


def test_stdin_refuses_two_updates_of_one_ref(repo):
    c = commit(repo)
    r = upd(repo, "--stdin", input=f"create refs/workspaces/x {c}\nupdate refs/workspaces/x {c}\n", expect=128)
    assert_one_line_error(r, "multiple updates for ref refs/workspaces/x")
    assert ref_files(repo) == []


def test_transaction_rolls_back_when_a_write_fails(repo):
    c1, c2 = commit(repo, message="1"), commit(repo, message="2")
    r = open_repository(repo)
    refs.update(r, "refs/workspaces/a", c1)
    refs.update(r, "refs/workspaces/z", c1)
    logs = repo / ".e3" / "logs" / "refs" / "workspaces" / "z"
    logs.unlink()
    logs.mkdir()  # appending to z's reflog now fails, after a was already moved
    with pytest.raises(Exception):
        refs.transaction(r, [refs.RefUpdate("refs/workspaces/a", c2, c1), refs.RefUpdate("refs/workspaces/z", c2, c1)])
    assert refs.read(r, "refs/workspaces/a") == c1
    assert refs.read(r, "refs/workspaces/z") == c1
    assert not list((repo / ".e3" / "refs" / "workspaces").glob("*.lock"))


# ---------------------------------------------------------------- e3-show-ref


def test_show_ref_filters_by_namespace_and_pattern(repo):
    c = commit(repo)
    for name in ("refs/packages/p/1.0.0", "refs/workspaces/dev", "refs/tasks/dev/t", "refs/workspaces/t"):
        upd(repo, name, c)
    show = lambda *a, **kw: run("e3-show-ref", "--repo", repo, *a, **kw).out  # noqa: E731
    assert show("--packages") == f"{c} refs/packages/p/1.0.0\n"
    assert show("--workspaces", "--tasks", "--hash") == f"{c}\n{c}\n{c}\n"
    assert show("t") == f"{c} refs/tasks/dev/t\n{c} refs/workspaces/t\n"
    assert show("dev/t") == f"{c} refs/tasks/dev/t\n"
    assert show("ev", expect=1) == ""


def test_show_ref_verify_needs_exact_existing_names(repo):
    c = commit(repo)
    upd(repo, "refs/workspaces/dev", c)
    assert run("e3-show-ref", "--repo", repo, "--verify", "refs/workspaces/dev").out == f"{c} refs/workspaces/dev\n"
    assert_one_line_error(run("e3-show-ref", "--repo", repo, "--verify", "refs/workspaces/x", expect=128), "does not exist")
    assert_one_line_error(run("e3-show-ref", "--repo", repo, "--verify", "dev", expect=128), "invalid ref name")
    r = run("e3-show-ref", "--repo", repo, "--verify", "-q", "refs/workspaces/x", expect=1)
    assert r.out == r.err == ""


def test_show_ref_in_an_empty_repository_exits_1(repo):
    assert run("e3-show-ref", "--repo", repo, expect=1).out == ""


def test_show_ref_outside_a_repository_is_fatal(tmp_path):
    assert_one_line_error(run("e3-show-ref", cwd=tmp_path, expect=128), "not an e3 repository")


# ---------------------------------------------------------------- concurrency with real processes

_CAS = """
import sys
sys.path.insert(0, {lib!r})
from e3.storage.repository import open_repository
from e3.storage import refs
from e3.errors import RefMoved
r = open_repository({repo!r})
sys.stdin.readline()  # start together
try:
    refs.update(r, "refs/workspaces/dev", sys.argv[1], sys.argv[2], "racer")
    print("won")
except RefMoved as e:
    print("moved", e)
"""


def test_two_processes_moving_one_ref_with_cas_one_wins(repo):
    base = commit(repo, message="base")
    a, b = commit(repo, parent=base, message="a"), commit(repo, parent=base, message="b")
    upd(repo, "refs/workspaces/dev", base)
    for _ in range(5):
        upd(repo, "refs/workspaces/dev", base)
        script = _CAS.format(lib=str(LIB), repo=str(repo))
        procs = [
            subprocess.Popen([sys.executable, "-c", script, new, base], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for new in (a, b)
        ]
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=60)[0] for p in procs]
        assert sorted(o.split()[0] for o in outs) == ["moved", "won"], outs
        winner = a if outs[0].startswith("won") else b
        assert refs.read(open_repository(repo), "refs/workspaces/dev") == winner


def test_two_update_ref_processes_racing_one_wins_and_the_other_exits_128(repo):
    base = commit(repo, message="base")
    a, b = commit(repo, parent=base, message="a"), commit(repo, parent=base, message="b")
    upd(repo, "refs/workspaces/dev", base)
    procs = [
        subprocess.Popen(["e3-update-ref", "--repo", str(repo), "refs/workspaces/dev", new, base], env=command_env(),
                         stderr=subprocess.PIPE, text=True)
        for new in (a, b)
    ]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 128], results
    assert any("moved" in err for _, err in results)
    log = refs.reflog(open_repository(repo), "refs/workspaces/dev")
    assert len(log) == 2 and log[0].old == base


def test_many_processes_incrementing_one_ref_lose_no_update(repo, tmp_path):
    """Eight processes each append five commits with CAS-and-retry: all forty land in one chain."""
    script = f"""
import sys
sys.path.insert(0, {str(LIB)!r})
from e3.storage.repository import open_repository
from e3.storage import refs
from e3.errors import RefMoved
r = open_repository({str(repo)!r})
for i in range(5):
    while True:
        cur = refs.read(r, "refs/workspaces/dev")
        c = refs.write_state(r, {{}}, cur, f"{{sys.argv[1]}}-{{i}}")
        try:
            refs.update(r, "refs/workspaces/dev", c, cur or refs.ZERO, "step")
            break
        except RefMoved:
            continue
"""
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in range(8)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    r = open_repository(repo)
    chain = list(refs.history(r, refs.read(r, "refs/workspaces/dev")))
    assert len(chain) == 40
    assert len(refs.reflog(r, "refs/workspaces/dev")) == 40
