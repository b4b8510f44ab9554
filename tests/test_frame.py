"""The suite's frame: the dispatcher, help, exit codes, repository creation and discovery."""
from __future__ import annotations

import os
import stat
import subprocess

import pytest

from e3_testing.commands import BIN, assert_one_line_error, command_env, run


def test_version_prints_a_version(e3):
    assert e3("--version").out.startswith("e3 version ")


def test_no_command_prints_usage_and_exits_2(e3):
    r = e3(expect=2)
    assert "usage: e3" in r.out and "repo" in r.out


def test_unknown_command_suggests_close_matches(e3):
    r = e3("rpeo", expect=2)
    assert_one_line_error(r, "'rpeo' is not an e3 command", "repo")


def test_user_command_on_path_becomes_a_subcommand(e3, tmp_path):
    script = tmp_path / "e3-hello"
    script.write_text("#!/bin/sh\necho hello \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    r = e3("hello", "a", "b", env={"PATH": f"{tmp_path}:{BIN}:{os.environ['PATH']}"})
    assert r.out == "hello a b\n"


def test_help_shows_the_manual_page(e3):
    r = e3("help", "repo", env={"MANPAGER": "cat", "PAGER": "cat"})
    assert "e3-repo - create, inspect, list, clean and remove" in r.out


@pytest.mark.parametrize("topic, text", [("repository", "objects/"), ("sdk", "custom_task")])
def test_help_shows_the_pages_that_are_not_commands(e3, topic, text):
    r = e3("help", topic, env={"MANPAGER": "cat", "PAGER": "cat"})
    assert text in r.out


def test_help_for_unknown_command_is_one_line_error(e3):
    assert_one_line_error(e3("help", "nope", expect=2), "no manual entry")


def test_command_help_flag_shows_usage(e3):
    assert "usage: e3 repo" in e3("repo", "--help").out


def test_repo_create_makes_a_bare_git_repository_with_e3_settings(e3, tmp_path):
    e3("repo", "create", tmp_path / "r")
    root = tmp_path / "r" / ".e3"
    config = (root / "config").read_text()
    assert "[e3]" in config and "auto = 0" in config and "logAllRefUpdates = always" in config
    for sub in ("objects", "refs", "tasks", "logs", "queue", "tmp"):
        assert (root / sub).is_dir(), sub


def test_repo_create_refuses_existing_repository(e3, repo):
    before = sorted(p.name for p in (repo / ".e3").iterdir())
    assert_one_line_error(e3("repo", "create", repo, expect=128), "already exists")
    assert sorted(p.name for p in (repo / ".e3").iterdir()) == before


def test_repo_create_in_unwritable_directory_fails_cleanly(e3, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions; use a path under a file instead
            target = tmp_path / "file"
            target.write_text("x")
            r = e3("repo", "create", target / "sub", expect=128)
        else:
            r = e3("repo", "create", locked / "sub", expect=128)
        assert_one_line_error(r, "cannot create repository")
    finally:
        locked.chmod(0o700)


def test_repo_create_without_a_path_makes_the_repository_here_or_in_e3_repo(e3, tmp_path):
    e3("repo", "create", cwd=tmp_path)
    assert (tmp_path / ".e3" / "config").is_file()
    e3("repo", "create", cwd=tmp_path, env={"E3_REPO": str(tmp_path / "elsewhere")})
    assert (tmp_path / "elsewhere" / ".e3" / "config").is_file()


# ---------------------------------------------------------------- naming the repository


def test_inside_a_repository_the_repository_argument_may_be_left_out(demo_dev, e3):
    sub = demo_dev / "sub" / "dir"
    sub.mkdir(parents=True)
    assert e3("list", cwd=sub).out == "dev  (demo@1.0.0)\n"
    assert e3("list", "dev", cwd=sub).out == "inputs\ntasks\n"  # `dev` names no repository: it is the PATH
    assert e3("get", "dev.inputs.a", cwd=sub).out == "1\n"
    assert e3("workspace", "status", "dev", cwd=sub).out.startswith("Workspace: dev\n")
    first = e3("rev-parse", "dev~1", cwd=sub).out
    assert e3("rev-parse", ".", "dev~1", cwd=demo_dev).out == first  # `.` is the repository, as in the README
    assert run("e3-show-ref", "--workspaces", cwd=sub).out.split()[1] == "refs/workspaces/dev"


def test_e3_repo_and_repo_option_name_it_from_anywhere(demo_dev, e3, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert e3("list", cwd=elsewhere, env={"E3_REPO": str(demo_dev)}).out == "dev  (demo@1.0.0)\n"
    assert e3("list", "--repo", demo_dev, "dev", cwd=elsewhere).out == "inputs\ntasks\n"
    assert run("e3-rev-parse", demo_dev, "dev", cwd=elsewhere).out == run("e3-rev-parse", "--repo", demo_dev, "dev").out
    assert_one_line_error(e3("list", demo_dev, "dev", "--repo", elsewhere, expect=2, cwd=elsewhere), "two repositories")


def test_outside_any_repository_the_error_is_one_line(e3, tmp_path):
    assert_one_line_error(e3("workspace", "list", cwd=tmp_path, expect=128), "not an e3 repository")


def test_repo_remove_never_finds_its_repository(repo, e3):
    assert_one_line_error(e3("repo", "remove", "--force", cwd=repo, expect=2), "name the repository")
    assert (repo / ".e3").is_dir()


@pytest.mark.parametrize(
    "argv",
    [["repo", "create"], ["list"], ["workspace", "list"], ["package", "list"], ["repo", "status"]],
    ids=" ".join,
)
def test_a_url_as_repository_is_a_server_and_makes_no_folder(e3, tmp_path, argv):
    url = "http://127.0.0.1:1/repos/x"  # nothing listens there
    r = e3(*argv, url, expect=128, cwd=tmp_path)
    assert_one_line_error(r, "http://127.0.0.1:1", "cannot connect")
    assert "repo create" not in r.err  # the hint for a missing local repository would make a folder `http:`
    assert list(tmp_path.iterdir()) == []


def test_a_url_for_plumbing_that_works_on_a_directory_is_a_one_line_error(tmp_path):
    r = run("e3-show-ref", "--repo", "HTTPS://example.org/repos/x", expect=128, cwd=tmp_path)
    assert_one_line_error(r, "is a server", "local repository only")


def run_into_closed_pipe(*argv) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader has already gone (`… | head -0`, without the race)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([str(a) for a in argv], stdout=w, stderr=subprocess.PIPE, env=command_env(), timeout=60)
    finally:
        os.close(w)


@pytest.mark.parametrize("argv", [["e3", "--help"], ["e3", "--version"], ["e3", "repo", "--help"], ["e3-rev-parse", "--help"]], ids=" ".join)
def test_a_closed_pipe_on_stdout_ends_quietly(argv):
    res = run_into_closed_pipe(*argv)
    assert (res.returncode, res.stderr) == (0, b"")


def test_repo_status_as_json(repo, e3):
    import json

    st = json.loads(e3("repo", "status", repo, "--json").out)
    assert st["location"].endswith(".e3") and st["workspaces"] == [] and st["queue"] == {}
    assert {"objects", "object_bytes", "refs", "packages", "executions", "running"} <= set(st)


def _complete(tmp_path, executable: str, line: str, cwd=None) -> list[str]:
    out = tmp_path / "completions"
    run(
        executable,
        cwd=cwd,
        env={
            "_ARGCOMPLETE": "1",
            "_ARGCOMPLETE_IFS": "\n",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        },
    )
    return [w.strip() for w in out.read_text().splitlines()]


def test_completion_of_command_names(tmp_path):
    assert "repo" in _complete(tmp_path, "e3", "e3 re")


def test_completion_of_subcommand_arguments(tmp_path):
    assert "create" in _complete(tmp_path, "e3", "e3 repo cr")


def test_every_plumbing_executable_completes_its_options(tmp_path):
    for exe in sorted(BIN.glob("e3-*")):
        words = _complete(tmp_path, exe.name, f"{exe.name} --")
        assert "--help" in words, f"{exe.name} offers no completion: {words}"


def test_completion_offers_what_exists_in_the_repository(demo_dev, tmp_path):
    r = str(demo_dev)
    assert "dev" in _complete(tmp_path, "e3", f"e3 start {r} ")
    assert _complete(tmp_path, "e3", f"e3 get {r} dev.in") == ["dev.inputs."]
    assert _complete(tmp_path, "e3", f"e3 get {r} dev.inputs.") == ["dev.inputs.a", "dev.inputs.b", "dev.inputs.c"]
    assert _complete(tmp_path, "e3", f"e3 workspace deploy {r} dev d") == ["demo", "demo@1.0.0"]
    assert _complete(tmp_path, "e3", f"e3 logs {r} dev.") == ["dev.double", "dev.greet"]
    assert _complete(tmp_path, "e3", f"e3 start {r} dev --filter g") == ["greet"]
    assert _complete(tmp_path, "e3", f"e3 workspace status {r} dev d") == ["double"]


def test_completion_finds_the_repository_from_here_and_completes_help_topics(demo_dev, tmp_path):
    assert "dev" in _complete(tmp_path, "e3", "e3 start ", cwd=demo_dev)  # REPO left out: WS's completions
    assert _complete(tmp_path, "e3", "e3 start . ", cwd=demo_dev)[-1] == "dev"
    assert _complete(tmp_path, "e3", "e3 help works") == ["workspace"]
    assert "repository" in _complete(tmp_path, "e3", "e3 help rep")


def all_parsers():
    """Every command's parser and subcommand parser: (name, parser)."""
    import argparse
    import importlib

    from e3_testing.commands import LIB

    for path in sorted((LIB / "e3" / "cli").glob("*.py")):
        if path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"e3.cli.{path.stem}")
        build = getattr(module, "build_parser", None)
        if build is None:
            continue
        todo = [(path.stem, build())]
        while todo:
            name, p = todo.pop()
            yield name, p
            for a in p._actions:
                if isinstance(a, argparse._SubParsersAction):
                    todo += [(f"{name} {sub}", sp) for sub, sp in a.choices.items()]


def test_options_that_mean_the_same_thing_have_the_same_name():


    formats = {"east", "json", "beast2", "csv"}
    for name, p in all_parsers():
        for a in p._actions:
            strings = set(a.option_strings)
            if not strings:
                continue
            if a.dest == "type":
                assert "--type" in strings, f"{name}: a type is given with --type ({strings})"
            if a.choices and set(a.choices) <= formats and a.help != "==SUPPRESS==":
                # a value read: --from; a value printed: -f/--format (e3 convert: --to, beside --from)
                assert strings & {"--from", "--format", "--to"}, f"{name}: {strings}"
                assert not ("--format" in strings and "read" in (a.help or "")), name
            if a.dest in ("timeout", "concurrency", "interval"):
                assert a.type.__name__ in ("positive_float", "positive_int"), f"{name} {a.dest}: {a.type}"
            if a.dest == "repo_option":
                assert strings == {"--repo"}
