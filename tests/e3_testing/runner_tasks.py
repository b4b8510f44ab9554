"""Building real tasks for runner tests: East functions, command IR, task objects, in a real repository.

Built directly with the East runtime (`import east`) until the SDK offers the
same; command IR is what the original engine's SDK writes: the east-py form
`[east-py, run, -p, east-py-std, -i IN1..., -o OUT, IN0]` or `[bash, -c, SCRIPT]`.
"""
from __future__ import annotations

import east
from east import East
from east.functions import function_ir
from east.serialization.beast2 import encode_beast2_with_header_for
from east.types.type_of_type import IRType

from e3 import east as e3east
from e3.model.task import TaskObject, store_task

AS = east.ArrayType(east.StringType)
Integer = east.IntegerType
String = east.StringType


def ir_bytes(fn) -> bytes:
    return encode_beast2_with_header_for(IRType)(function_ir(fn))


def function(params, out, body) -> bytes:
    """The Beast2 IR of an East function, as a task's function_ir dataset holds it."""
    return ir_bytes(East.function(params, out, body))


def east_command(prefix=("east-py", "run", "-p", "east-py-std"), extra=()) -> bytes:
    """Command IR: PREFIX -i IN1 ... -o OUT IN0 (the SDK's default East runner argv)."""

    def body(b, ins, out):
        argv = b.let(East.value(list(prefix) + list(extra), AS))

        def each(b2, p, i):
            b2.do(argv.push_last("-i"))
            b2.do(argv.push_last(p))

        b.for_(ins.slice(1, ins.size()), each)
        b.do(argv.push_last("-o"))
        b.do(argv.push_last(out))
        b.do(argv.push_last(ins.at(0)))
        return argv

    return function([AS, String], AS, body)


def bash_command(script: str) -> bytes:
    """Command IR: [bash, -c, SCRIPT] with $IN0.. and $OUT substituted by the paths (via positional args)."""

    def body(b, ins, out):
        argv = b.let(East.value(["bash", "-c", script, "task"], AS))
        b.do(argv.append(ins))
        b.do(argv.push_last(out))
        return argv

    return function([AS, String], AS, body)


def constant_command(argv: list[str]) -> bytes:
    return function([AS, String], AS, lambda b, ins, out: East.value(argv, AS))


def value(v, t) -> bytes:
    return e3east.encode(v, t)


def make_task(store, command_ir: bytes, n_inputs: int) -> str:
    cmd = store.write(command_ir)
    inputs = tuple(("inputs", f"i{k}") for k in range(n_inputs))
    return store_task(store, TaskObject(cmd, inputs, ("tasks", "t", "output")))


def east_task(store, fn_ir: bytes, inputs: list[bytes], command_ir: bytes | None = None) -> tuple[str, list[str]]:
    """A task running `fn_ir` on `inputs`; returns (task hash, input hashes with function_ir first)."""
    th = make_task(store, command_ir or east_command(), len(inputs) + 1)
    return th, [store.write(fn_ir)] + [store.write(x) for x in inputs]


def run_package():
    """Package `runpkg` 1.0.0: greet (East, 2 inputs), noisy (prints), broken (East error), copy (bash)."""
    from east_py_std import console_log

    from e3 import sdk
    from e3.east import IntegerType, StringType

    greeting = sdk.input("greeting", StringType, "Hello")
    name = sdk.input("name", StringType)
    times = sdk.input("times", IntegerType, 2)
    greet = sdk.task("greet", [greeting, name], East.function([StringType, StringType], StringType, lambda b, g, n: East.str(g, ", ", n, "!")))

    def noisy_body(b, n):
        b.let(console_log(East.str("counting to ", n)))
        return n + 1

    noisy = sdk.task("noisy", [times], East.function([IntegerType], IntegerType, noisy_body))
    broken = sdk.task("broken", [times], East.function([IntegerType], IntegerType, lambda b, n: East.error(East.str("no way"))))
    copy = sdk.custom_task(
        "copy", [greet.output], StringType, lambda b, ins, out: East.str("echo copying; cp ", sdk.quote(ins.get(0)), " ", sdk.quote(out))
    )
    return sdk.package("runpkg", "1.0.0", greet, noisy, broken, copy)
