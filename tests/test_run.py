"""`e3 run REPO PKG[@VER]/TASK INPUT... -o OUTPUT`: one task of an imported package on files."""
from __future__ import annotations

import json

import pytest

from e3_testing.commands import assert_one_line_error, run, write


@pytest.fixture
def prepo(repo, runpkg_zip):
    from e3.repo import package
    from e3.storage.repository import open_repository

    package.import_zip(open_repository(repo), runpkg_zip)
    return repo


def test_run_east_task_on_text_inputs_writes_the_output_file(prepo, tmp_path):
    g, n = write(tmp_path, "g.east", '"Hi"'), write(tmp_path, "n.json", '"there"')
    out = tmp_path / "out.east"
    res = run("e3", "run", prepo, "runpkg/greet", g, n, "-o", out)
    assert res.out == "" and out.read_text() == '"Hi, there!"\n'


def test_run_output_beast2_is_byte_equal_to_the_spawned_runner(prepo, tmp_path):
    g, n = write(tmp_path, "g.east", '"Hi"'), write(tmp_path, "n.east", '"you"')
    run("e3", "run", prepo, "runpkg@1.0.0/greet", g, n, "-o", tmp_path / "warm.beast2")
    run("e3", "run", prepo, "runpkg/greet", g, n, "-o", tmp_path / "cold.beast2", "--spawn", "--force")
    assert (tmp_path / "warm.beast2").read_bytes() == (tmp_path / "cold.beast2").read_bytes()


def test_run_shows_task_output_on_stderr_and_keeps_it_in_the_log(prepo, tmp_path):
    t = write(tmp_path, "t.json", '"41"')
    res = run("e3", "run", prepo, "runpkg/noisy", t, "-o", tmp_path / "o.json")
    assert json.loads((tmp_path / "o.json").read_text()) == "42"
    assert "counting to" in res.err
    import glob

    (log,) = glob.glob(str(prepo / ".e3" / "logs" / "*.eastl"))
    tid = log.rsplit("/", 1)[1].split(".")[0]
    assert "counting to" in run("e3-log-tail", "--repo", prepo, tid).out


def test_run_custom_task_spawns_its_script(prepo, tmp_path):
    g = write(tmp_path, "g.east", '"a, b!"')
    res = run("e3", "run", prepo, "runpkg/copy", g, "-o", tmp_path / "o.east")
    assert (tmp_path / "o.east").read_text() == '"a, b!"\n' and "copying" in res.err


def test_run_of_a_failing_task_exits_1_naming_the_failure(prepo, tmp_path):
    t = write(tmp_path, "t.east", "1")
    res = run("e3", "run", prepo, "runpkg/broken", t, "-o", tmp_path / "o.east", expect=1)
    assert "Error: no way" in res.err and "task runpkg@1.0.0/broken failed" in res.err
    assert not (tmp_path / "o.east").exists()


def test_run_reuses_a_recorded_success_unless_forced(prepo, tmp_path):
    t = write(tmp_path, "t.east", "5")
    first = run("e3", "run", prepo, "runpkg/noisy", t, "-o", tmp_path / "a.east")
    again = run("e3", "run", prepo, "runpkg/noisy", t, "-o", tmp_path / "b.east")
    forced = run("e3", "run", prepo, "runpkg/noisy", t, "-o", tmp_path / "c.east", "--force")
    assert "counting" in first.err and "counting" not in again.err and "counting" in forced.err
    assert (tmp_path / "a.east").read_text() == (tmp_path / "b.east").read_text() == "6\n"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["nopkg/greet"], "package nopkg not found"),
        (["runpkg@9.9.9/greet"], "runpkg@9.9.9 not found"),
        (["runpkg/nosuch"], "task 'nosuch' not found"),
        (["runpkg"], "expected PKG/TASK"),
        (["runpkg/greet", "ONE"], "takes 2 input file(s)"),
        (["runpkg/noisy", "t.txt"], "cannot tell the format"),
        (["runpkg/noisy", "missing.east"], "not found"),
        (["runpkg/noisy", "bad.east"], "t.east"),
    ],
)
def test_run_bad_input_is_one_line(prepo, tmp_path, args, needle):
    write(tmp_path, "ONE.east", '"x"')
    write(tmp_path, "t.txt", "1")
    write(tmp_path, "bad.east", '"a string"')
    res = run("e3", "run", prepo, *args, "-o", tmp_path / "o.east", cwd=tmp_path, expect=None)
    assert res.returncode in (2, 128)
    if needle == "t.east":
        needle = "bad.east"
    assert_one_line_error(res, needle)
    assert not (tmp_path / "o.east").exists()


def test_run_refuses_an_output_without_a_known_extension(prepo, tmp_path):
    assert_one_line_error(run("e3", "run", prepo, "runpkg/noisy", "x.east", "-o", tmp_path / "out", expect=2), "cannot tell the format")
