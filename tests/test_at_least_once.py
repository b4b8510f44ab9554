"""At least once: a task whose outcome was not recorded when its worker died runs again.

A shell task's side effects happen before its outcome can be recorded (its
output must be stored first, to be named by the record), so a worker killed in
between leaves an execution the next worker runs again: the side effect
repeats, the outcome is recorded once. e3-run-task(1) says so.
"""
from __future__ import annotations

from e3_testing.commands import deployed, run

from e3 import sdk
from e3.east import East, IntegerType


def test_a_worker_killed_after_a_shell_task_ran_but_before_its_record_runs_it_again(tmp_path):
    side, killed = tmp_path / "side", tmp_path / "killed"
    x = sdk.input("x", IntegerType, 1)
    # Appends to `side`, writes its output, then (the first time only) kills its worker, which
    # has not yet stored the output nor written the record.
    script = f"echo ran >> '{side}'; cp "
    tail = f"; [ -e '{killed}' ] || {{ touch '{killed}'; kill -9 $PPID; }}"
    task = sdk.custom_task(
        "effect", [x], IntegerType, lambda b, inputs, output: East.str(script, sdk.quote(inputs.get(0)), " ", sdk.quote(output), tail)
    )
    zip_path = tmp_path / "p.zip"
    sdk.export(sdk.package("once", "1.0.0", task), zip_path)
    repo = deployed(tmp_path, zip_path, "once@1.0.0")
    (eid,) = run("e3-enqueue", repo, "dev").out.split()
    first = run("e3-run-task", repo, "--once", expect=None)
    assert first.returncode == -9 and killed.exists()
    second = run("e3-run-task", repo, "--once")
    assert second.out.split() == [eid, "success", "dev.effect"]
    assert side.read_text() == "ran\nran\n"  # the side effect happened twice
    assert run("e3", "get", repo, "dev.tasks.effect.output").out == "1\n"
    assert run("e3-run-task", repo, "--once").out == ""
