"""The runner: command IR evaluation, East tasks in-process (byte-equal to `east-py run`), spawned tasks."""
from __future__ import annotations

import datetime
import os

import pytest

from e3_testing.runner_tasks import (
    AS,
    East,
    Integer,
    String,
    bash_command,
    constant_command,
    east_command,
    east_task,
    function,
    make_task,
    value,
)

import east

from e3.exec import command, invocation
from e3.storage import logs
from e3.storage.repository import open_repository


class ListLog:
    def __init__(self):
        self.records = []

    def write(self, stream, data):
        self.records.append((stream, data))

    def text(self, stream=None):
        return b"".join(d for s, d in self.records if stream in (None, s)).decode()


@pytest.fixture
def r(repo):
    return open_repository(repo)


def inc():
    return function([Integer], Integer, lambda b, x: x + 1)


def test_command_ir_gives_the_argv_for_the_paths(r):
    h = r.objects.write(east_command())
    argv = command.evaluate(r.objects, h, ["/s/f", "/s/a"], "/s/out")
    assert argv == ["east-py", "run", "-p", "east-py-std", "-i", "/s/a", "-o", "/s/out", "/s/f"]


def test_empty_argv_is_a_command_error(r):
    h = r.objects.write(constant_command([]))
    with pytest.raises(command.CommandError, match="empty argv"):
        command.evaluate(r.objects, h, [], "/o")


def test_command_ir_that_is_not_a_function_is_a_command_error(r):
    h = r.objects.write(value(3, Integer))
    with pytest.raises(command.CommandError, match="does not compile"):
        command.evaluate(r.objects, h, [], "/o")


def test_east_py_run_argv_is_recognised_with_or_without_uv_prefix():
    ins, out = ["/s/0", "/s/1", "/s/2"], "/s/o"
    plan = invocation.parse_east_run(["east-py", "run", "-p", "east-py-std", "-i", "/s/2", "-i", "/s/1", "-o", out, "/s/0"], ins, out)
    assert plan == invocation.EastRun(("east-py-std",), 0, (2, 1))
    assert invocation.parse_east_run(["uv", "run", "east-py", "run", "-o", out, "/s/0"], ins, out) == invocation.EastRun((), 0, ())
    # anything we do not emulate is spawned as given
    assert invocation.parse_east_run(["east-py", "run", "-v", "-o", out, "/s/0"], ins, out) is None
    assert invocation.parse_east_run(["east-py", "run", "-i", "/elsewhere", "-o", out, "/s/0"], ins, out) is None
    assert invocation.parse_east_run(["east-py", "run", "/s/0"], ins, out) is None
    assert invocation.parse_east_run(["docker", "run", "east-py", "run", "-o", out, "/s/0"], ins, out) is None
    assert invocation.parse_east_run(["bash", "-c", "x"], ins, out) is None


def test_east_task_runs_in_process_and_stores_its_output(r):
    th, ins = east_task(r.objects, inc(), [value(41, Integer)])
    out = invocation.execute(r, th, ins)
    assert out.status == "success", out
    assert e3_value(r, out.output_hash) == 42


def e3_value(r, h):
    from e3 import east as e3east

    return e3east.decode(r.objects.read(h))[1]


@pytest.mark.parametrize(
    "params,out_type,body,inputs",
    [
        ([Integer], Integer, lambda b, x: x + 1, [(41, Integer)]),
        ([east.ArrayType(Integer)], east.ArrayType(Integer), lambda b, x: x.map(lambda b2, v: v * 2), [([1, 2, 3], east.ArrayType(Integer))]),
        ([String, String], String, lambda b, a, c: East.str(a) + c, [("a", String), ("bc", String)]),
        (
            [east.DictType(String, Integer)],
            east.DictType(String, Integer),
            lambda b, d: d.map(lambda b2, v, k: v + 1),
            [({"x": 1, "y": 2}, east.DictType(String, Integer))],
        ),
    ],
    ids=["integer", "array", "two-strings", "dict"],
)
def test_in_process_output_is_byte_equal_to_a_spawned_east_py_run(r, params, out_type, body, inputs):
    th, ins = east_task(r.objects, function(params, out_type, body), [value(v, t) for v, t in inputs])
    warm = invocation.execute(r, th, ins)
    cold = invocation.execute(r, th, ins, force_spawn=True)
    assert warm.status == cold.status == "success", (warm, cold)
    assert warm.output_hash == cold.output_hash


_UTC = datetime.timezone.utc


@pytest.mark.parametrize(
    "t,values",
    [
        (Integer, [0, -(2**63), 2**63 - 1]),
        (east.FloatType, [-0.0, float("nan"), float("-inf"), 5e-324]),
        (String, ["", "\u00e9\u0000\U0001F600"]),
        (east.BooleanType, [True, False]),
        (east.DateTimeType, [datetime.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=_UTC), datetime.datetime(9999, 12, 31, tzinfo=_UTC)]),
        (east.BlobType, [b"", b"\0\xff"]),
        (east.NullType, [None]),
    ],
    ids=["integer", "float", "string", "boolean", "datetime", "blob", "null"],
)
def test_scalar_inputs_in_any_encoding_give_the_output_east_py_run_gives(r, t, values):
    """In-process, a small scalar input in the runner's own bytes reaches the function as a Python
    value (e3.east.run_encoded), one in other bytes (container version 4) through the runtime's
    frozen decoder, as `east-py run` reads both: the outputs are byte-equal to a spawned run's."""
    from east.serialization.beast2 import encode_beast2_with_header_for

    n = 2 * len(values)

    def body(b, *params):
        out = b.let(East.value([], east.ArrayType(t)))
        for p in params:
            b.do(out.push_last(p))
        return out

    inputs = [encode_beast2_with_header_for(t, version=version)(v) for version in (None, 4) for v in values]
    th, ins = east_task(r.objects, function([t] * n, east.ArrayType(t), body), inputs)
    warm = invocation.execute(r, th, ins)
    cold = invocation.execute(r, th, ins, force_spawn=True)
    assert warm.status == cold.status == "success", (warm, cold)
    assert warm.output_hash == cold.output_hash


def test_a_scalar_input_of_another_type_fails_the_task_as_east_py_run_does(r):
    th, ins = east_task(r.objects, inc(), [value(1.5, east.FloatType)])
    log = ListLog()
    warm = invocation.execute(r, th, ins, log=log)
    cold = invocation.execute(r, th, ins, force_spawn=True)
    assert (warm.status, warm.exit_code) == (cold.status, cold.exit_code) == ("failed", 1)
    assert log.text("stderr").startswith("Error: ")


def test_a_function_given_fewer_inputs_than_it_takes_fails_naming_its_signature(r):
    th, ins = east_task(r.objects, function([Integer, Integer], Integer, lambda b, x, y: x + y), [value(1, Integer)])
    log = ListLog()
    out = invocation.execute(r, th, ins, log=log)
    assert (out.status, out.exit_code, out.message) == ("failed", 1, "Function expects 2 inputs, got 1")
    assert "Signature: (" in log.text("stderr")
    assert invocation.execute(r, th, ins, force_spawn=True).status == "failed"


def test_a_function_too_large_to_check_for_platform_calls_is_compiled_with_its_platform(r):
    """Past PLATFORM_CHECK_LIMIT bytes of IR no check is made: the function gets the platform
    `east-py run -p` names, so what it prints reaches its log, and one that prints nothing runs too."""
    from east_py_std import console_log

    def total(b, *xs):
        s = xs[0]
        for x in xs[1:]:
            s = s + x
        return s

    def noisy(b, *xs):
        b.let(console_log(East.str("sum")))
        return total(b, *xs)

    for body, printed in ((total, []), (noisy, [("stdout", b"sum\n")])):
        fn = function([Integer] * 12, Integer, body)
        assert len(fn) > invocation.PLATFORM_CHECK_LIMIT
        th, ins = east_task(r.objects, fn, [value(k, Integer) for k in range(12)])
        log = ListLog()
        out = invocation.execute(r, th, ins, log=log)
        assert out.status == "success" and r.objects.read(out.output_hash) == value(66, Integer)
        assert log.records == printed


def test_a_worker_keeps_a_bounded_number_of_compiled_functions(r, monkeypatch):
    # A fan-out's tasks are each a function of their own: a long-lived worker must not keep them all.
    monkeypatch.setattr(invocation, "COMPILED_KEPT", 2)
    monkeypatch.setattr(invocation, "_functions", {})
    for k in range(1, 5):
        th, ins = east_task(r.objects, function([Integer], Integer, lambda b, x, k=k: x + k), [value(10, Integer)])
        out = invocation.execute(r, th, ins)
        assert out.status == "success" and r.objects.read(out.output_hash) == value(10 + k, Integer)
        assert len(invocation._functions) <= 2
    again = invocation.execute(r, th, ins)  # the newest is still there; an evicted one is compiled again
    assert again.output_hash == out.output_hash


def test_spawn_all_setting_spawns_east_tasks(r, monkeypatch):
    # A command whose argv names a runner that is not installed: only a spawn can fail on it.
    th, ins = east_task(r.objects, inc(), [value(1, Integer)], east_command(prefix=("uv", "run", "east-py", "run")))
    assert invocation.execute(r, th, ins).status == "success"
    monkeypatch.setenv("E3_SPAWN_ALL", "1")
    log = ListLog()
    spawned = invocation.execute(r, th, ins, log=log)
    assert spawned.status in ("failed", "error")


def test_east_runtime_error_fails_the_task_with_its_message_in_the_log(r):
    fn = function([Integer], Integer, lambda b, x: East.error(East.str("boom")))
    th, ins = east_task(r.objects, fn, [value(1, Integer)])
    log = ListLog()
    out = invocation.execute(r, th, ins, log=log)
    assert (out.status, out.exit_code) == ("failed", 1)
    assert log.text("stderr") == "Error: boom\n"
    spawned_log = ListLog()
    spawned = invocation.execute(r, th, ins, force_spawn=True, log=spawned_log)
    assert (spawned.status, spawned.exit_code) == ("failed", 1)
    assert "Error: boom" in spawned_log.text("stderr")


def test_console_output_of_an_in_process_task_goes_to_its_log(r, capfd):
    from east_py_std import console_error, console_log

    def body(b, x):
        b.let(console_log(East.str("hello")))
        b.let(console_error(East.str("warn")))
        return x

    th, ins = east_task(r.objects, function([Integer], Integer, body), [value(1, Integer)])
    log = ListLog()
    assert invocation.execute(r, th, ins, log=log).status == "success"
    assert log.records == [("stdout", b"hello\n"), ("stderr", b"warn\n")]
    seen = capfd.readouterr()
    assert "hello" not in seen.out and "warn" not in seen.err


def test_shell_task_runs_on_files_and_streams_its_output(r):
    script = 'echo "reading $1"; cp "$1" "${@: -1}"; echo done >&2'
    th = make_task(r.objects, bash_command(script), 1)
    x = r.objects.write(value(7, Integer))
    log = ListLog()
    out = invocation.execute(r, th, [x], log=log)
    assert out.status == "success" and out.output_hash == x
    assert log.text("stdout").startswith("reading ") and log.text("stderr") == "done\n"
    assert not any(p.name.startswith("run-") for p in r.path("tmp").iterdir()), "scratch directory left behind"


def test_shell_task_nonzero_exit_fails_with_its_status(r):
    th = make_task(r.objects, bash_command("exit 3"), 0)
    out = invocation.execute(r, th, [])
    assert (out.status, out.exit_code) == ("failed", 3)


def test_shell_task_that_writes_no_output_is_an_error(r):
    th = make_task(r.objects, bash_command("true"), 0)
    out = invocation.execute(r, th, [])
    assert out.status == "error" and "no output" in out.message


def test_missing_program_is_an_error(r):
    th = make_task(r.objects, constant_command(["/nonexistent/e3-prog"]), 0)
    out = invocation.execute(r, th, [])
    assert out.status == "error" and "cannot run" in out.message


def test_timeout_kills_the_whole_process_group(r, tmp_path):
    marker = tmp_path / "child-survived"
    th = make_task(r.objects, bash_command(f"(sleep 1; touch {marker}) & sleep 30"), 0)
    out = invocation.execute(r, th, [], timeout=0.3)
    assert out.status == "error" and "timed out" in out.message
    import time

    time.sleep(1.2)
    assert not marker.exists()


def test_wrong_number_of_inputs_is_an_error(r):
    th, ins = east_task(r.objects, inc(), [value(1, Integer)])
    assert invocation.execute(r, th, ins[:1]).status == "error"


def test_missing_input_object_is_an_error(r):
    th, ins = east_task(r.objects, inc(), [value(1, Integer)])
    out = invocation.execute(r, th, [ins[0], "0" * 64])
    assert out.status == "error" and "not found" in out.message


def test_runner_writes_into_a_task_log(r):
    th = make_task(r.objects, bash_command("echo hi; exit 1"), 0)
    with logs.open_log(r, "a" * 64, "exec-1") as log:
        out = invocation.execute(r, th, [], log=log)
        log.end(out.status)
    recs = logs.read_records(logs.log_path(r, "a" * 64))
    assert [x["stream"] for x in recs] == ["start", "stdout", "end"]
    assert recs[1]["bytes"] == b"hi\n" and recs[2]["status"] == "failed"
    assert os.path.exists(logs.log_path(r, "a" * 64))


def test_only_a_function_that_provably_calls_no_platform_function_compiles_without_one():
    from east.types import FunctionType
    from east_py_std import console_log

    from e3 import east as e3east

    def noisy(b, n):
        b.let(console_log(East.str("n is ", n)))
        return n + 1

    assert e3east.calls_no_platform(inc())
    assert not e3east.calls_no_platform(function([Integer], Integer, noisy))
    # Code the IR text does not show: a function-typed input, an inner function (which may be passed on).
    assert not e3east.calls_no_platform(function([FunctionType([Integer], Integer)], Integer, lambda b, f: f(East.value(3))))
    assert not e3east.calls_no_platform(function([AS], AS, lambda b, a: a.map(lambda b2, x: East.str(x, "!"))))
    assert not e3east.calls_no_platform(b"not beast2")



def test_an_input_missing_from_its_repository_is_an_error_though_another_had_it(r, tmp_path, _created):
    """A worker keeps small values it read or wrote lately (a chain's next input, a fan-out's
    shared one); an object stored in one repository is never taken for another's."""
    from e3_testing.commands import copy_repository

    th, ins = east_task(r.objects, inc(), [value(41, Integer)])
    first = invocation.execute(r, th, ins)
    assert first.status == "success"
    assert invocation.execute(r, th, [ins[0], first.output_hash]).status == "success"  # the chain's next
    assert any(key[1] == first.output_hash for key in invocation._values)
    other = open_repository(copy_repository(_created, tmp_path / "other"))
    th3, ins3 = east_task(other.objects, inc(), [value(0, Integer)])
    out = invocation.execute(other, th3, [ins3[0], first.output_hash])
    assert out.status == "error" and "not found" in out.message
