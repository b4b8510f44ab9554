"""The commands against a repository behind e3-api-server: the same commands, a URL for the path.

One real server on 127.0.0.1 serves a directory of repositories for the module;
each test makes its own repository there and drives the real executables with
its URL, as a user would. That the commands reach it only through e3.api is
test_cli_imports'; that the interface behaves the same behind the server is the
contract suite's. This checks the commands' own part: streams, files and output, and what
a command by URL loads (no async backend or CLI of httpx; no East runtime where nothing is decoded).
"""
from __future__ import annotations

import pytest

from e3_testing.api_server import ApiServer
from e3_testing.commands import assert_one_line_error, run, run_loading
from e3_testing.runner_tasks import run_package

from e3 import sdk


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    with ApiServer(["--repos", root]) as s:
        s.root = root
        yield s


@pytest.fixture
def url(server, request):
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    run("e3", "repo", "create", server.root / name)
    return server.repo_url(name)


@pytest.fixture(scope="module")
def runpkg_zip(tmp_path_factory):
    path = tmp_path_factory.mktemp("zips") / "runpkg.zip"
    sdk.export(run_package(), path)
    return path


def test_object_plumbing_writes_and_reads_through_the_server(url, tmp_path):
    (tmp_path / "v.east").write_text('"hello"')
    h = run("e3-hash-object", "-w", "-t", "String", "--repo", url, tmp_path / "v.east").out.strip()
    assert run("e3-cat-object", "-p", "--repo", url, h).out == '"hello"\n'
    assert run("e3-cat-object", "-t", "--repo", url, h).out == "String\n"
    assert run("e3-cat-object", "-e", "--repo", url, "0" * 64, expect=1).out == ""
    stdin = run("e3-hash-object", "-w", "--stdin", "--from", "east", "-t", "Integer", "--repo", url, input="42").out.strip()
    batch = run("e3-cat-object", "--batch-check", "--repo", url, input=f"{stdin}\n{'0' * 64}\n").out
    assert batch == f"{stdin} 19 Integer\n{'0' * 64} missing\n"


def test_a_package_zip_goes_up_and_comes_back_byte_for_byte(url, runpkg_zip, tmp_path):
    assert "Imported runpkg@1.0.0" in run("e3", "package", "import", url, runpkg_zip).out
    assert run("e3", "package", "list", url).out == "runpkg@1.0.0\n"
    run("e3", "package", "export", url, "runpkg", tmp_path / "back.zip")
    assert (tmp_path / "back.zip").read_bytes() == runpkg_zip.read_bytes()


def test_a_workspace_runs_behind_the_server(url, runpkg_zip, tmp_path):
    run("e3", "package", "import", url, runpkg_zip)
    run("e3", "workspace", "deploy", url, "dev", "runpkg", "--create")
    (tmp_path / "name.east").write_text('"World"')
    run("e3", "set", url, "dev.inputs.name", tmp_path / "name.east")
    out = run("e3", "start", url, "dev", "--filter", "noisy").out
    assert "ran noisy" in out and "1 tasks: 1 ran" in out
    assert run("e3", "get", url, "dev.inputs.name").out == '"World"\n'
    assert "counting to 2" in run("e3", "logs", url, "dev.noisy").out
    assert "noisy: up to date" in run("e3", "workspace", "status", url, "dev").out
    assert run("e3", "list", url).out == "dev  (runpkg@1.0.0)\n"


def test_an_unknown_workspace_behind_the_server_is_one_line(url):
    assert_one_line_error(run("e3", "workspace", "status", url, "nope", expect=128), "workspace nope does not exist")


def test_repo_list_names_what_a_server_serves_and_a_directory_holds(server, url, tmp_path):
    import json

    listed = run("e3", "repo", "list", server.url).out.splitlines()
    assert url.rsplit("/", 1)[1] in listed and listed == sorted(listed)
    by_dir = run("e3", "repo", "list", server.root).out.splitlines()
    assert run("e3", "repo", "list", server.url + "/repos/").out.splitlines() == by_dir == listed
    assert json.loads(run("e3", "repo", "list", server.url, "--json").out) == listed
    # A directory: what a server of it would serve; a hidden one or a plain folder is not a repository.
    run("e3", "repo", "create", tmp_path / "b")
    run("e3", "repo", "create", tmp_path / "a")
    run("e3", "repo", "create", tmp_path / ".hidden")
    (tmp_path / "folder").mkdir()
    assert run("e3", "repo", "list", tmp_path).out == "a\nb\n"
    (tmp_path / "empty").mkdir()
    assert run("e3", "repo", "list", tmp_path / "empty").out == f"No repositories in {tmp_path / 'empty'}\n"
    assert_one_line_error(run("e3", "repo", "list", url, expect=2), "not a server's url", server.url)
    assert_one_line_error(run("e3", "repo", "list", tmp_path / "nothing", expect=2), "not a directory")
    assert_one_line_error(run("e3", "repo", "list", "http://127.0.0.1:1", expect=128), "http://127.0.0.1:1", "cannot connect")


NEVER_IN_A_CLIENT = ("trio", "anyio", "click", "rich", "pygments")
"""httpx's command-line tool and httpcore's async backends: a synchronous client never runs them."""


@pytest.fixture
def deployed(url, runpkg_zip):
    """`url` with runpkg deployed to workspace dev (dev.inputs.greeting holds its default, "Hello")."""
    run("e3", "package", "import", url, runpkg_zip)
    run("e3", "workspace", "deploy", url, "dev", "runpkg", "--create")
    return url


@pytest.mark.parametrize("argv", [("list",), ("get", "dev.inputs.greeting"), ("list", "dev.inputs")], ids="-".join)
def test_by_url_loads_no_async_backend_nor_httpx_cli(deployed, argv):
    out, loaded = run_loading(NEVER_IN_A_CLIENT, argv[0], deployed, *argv[1:])
    assert out.returncode == 0 and out.stdout, out.stderr
    assert loaded == set()


def test_getting_a_value_by_url_as_beast2_loads_no_east_runtime(server, deployed):
    """`e3 get URL PATH -f beast2` copies the bytes the server sends: nothing is decoded, so the
    East runtime stays unloaded, as for the same command on the directory (test_cli_imports)."""
    out, loaded = run_loading(("east", *NEVER_IN_A_CLIENT), "get", deployed, "dev.inputs.greeting", "-f", "beast2")
    assert out.returncode == 0, out.stderr
    local = server.root / deployed.rsplit("/", 1)[1]
    assert out.stdout == run("e3", "get", local, "dev.inputs.greeting", "-f", "beast2").stdout
    assert loaded == set()

