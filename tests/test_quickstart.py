"""The README's quick start, command for command, on the example package."""
from __future__ import annotations

import shutil

from e3_testing.commands import run


def test_quick_start_runs_exactly_as_the_readme_says(tmp_path, example_zip):
    shutil.copy(example_zip, tmp_path / "my-package.zip")
    e3 = lambda *a, **kw: run("e3", *a, cwd=tmp_path, **kw)  # noqa: E731
    e3("repo", "create", ".")
    e3("package", "import", ".", "./my-package.zip")
    e3("workspace", "create", ".", "dev")
    e3("workspace", "deploy", ".", "dev", "my-package@1.0.0")
    started = e3("start", ".", "dev")
    assert "failed" not in started.out
    logs = e3("logs", ".", "dev.my-task", "--follow", timeout=30)
    assert "my-task: repeating Hello, World! 2 times" in logs.out
    got = e3("get", ".", "dev.tasks.my-task.output")
    assert got.out.strip() == '"Hello, World! Hello, World!"'
    shouted = e3("get", ".", "dev.tasks.shout.output")
    assert shouted.out.strip() == '"HELLO, WORLD! HELLO, WORLD!"'


def test_second_start_reuses_every_result_and_runs_nothing(tmp_path, example_zip):
    e3 = lambda *a, **kw: run("e3", *a, cwd=tmp_path, **kw)  # noqa: E731
    e3("repo", "create", ".")
    e3("package", "import", ".", example_zip)
    e3("workspace", "create", ".", "dev")
    e3("workspace", "deploy", ".", "dev", "my-package@1.0.0")
    first = e3("start", ".", "dev")
    assert [line.split()[0] for line in first.out.splitlines()[:3]] == ["ran"] * 3
    again = e3("start", ".", "dev")
    assert [line.split()[0] for line in again.out.splitlines()[:3]] == ["cached"] * 3
    assert "3 cached" in again.out and "ran" not in again.out


def test_changing_one_input_reruns_exactly_its_downstream(tmp_path, example_zip):
    e3 = lambda *a, **kw: run("e3", *a, cwd=tmp_path, **kw)  # noqa: E731
    e3("repo", "create", ".")
    e3("package", "import", ".", example_zip)
    e3("workspace", "create", ".", "dev")
    e3("workspace", "deploy", ".", "dev", "my-package@1.0.0")
    e3("start", ".", "dev")
    (tmp_path / "times.east").write_text("3")
    e3("set", ".", "dev.inputs.times", "times.east")
    again = e3("start", ".", "dev")
    ran = sorted(line.split()[1] for line in again.out.splitlines() if line.startswith("ran "))
    assert ran == ["my-task", "shout"]
    assert "cached greet" in again.out
    got = e3("get", ".", "dev.tasks.my-task.output")
    assert got.out.strip() == '"Hello, World! Hello, World! Hello, World!"'
