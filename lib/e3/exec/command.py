"""A task's command: its East function (input paths, output path) -> argv, evaluated in-process.

Every task object names the hash of a command IR object: the IR of a function
`(Array<String>, String) -> Array<String>` that, given where the inputs are and
where the output should go, returns the argv to run (the original engine's
model). Evaluating it costs microseconds once compiled, so compiled functions
are cached per process by object hash (objects never change).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from e3.errors import E3Error

if TYPE_CHECKING:
    from e3.storage.objects import ObjectStore

_compiled: dict[str, Any] = {}


class CommandError(E3Error):
    """The command IR could not produce an argv: the execution is an 'error', not a task failure."""


def compile_command(store: "ObjectStore", command_ir: str) -> Any:
    """The compiled command function for a command IR object (cached by hash)."""
    fn = _compiled.get(command_ir)
    if fn is not None:
        return fn
    from e3 import east

    try:
        ir = store.read(command_ir)
    except E3Error as e:
        raise CommandError(f"cannot read command ir {command_ir}: {e}") from None
    try:
        fn = east.compile_function(ir)
    except Exception as e:  # the compiler raises several kinds; all mean "not a usable command"
        raise CommandError(f"command ir {command_ir} does not compile: {_one_line(e)}") from None
    ins, out = east.function_signature(fn)
    want = (east.ArrayType(east.StringType), east.StringType)
    if len(ins) != 2 or not all(east.type_equal(a, b) for a, b in zip(ins, want)) or not east.type_equal(out, want[0]):
        raise CommandError(f"command ir {command_ir} is not a function (Array<String>, String) -> Array<String>")
    _compiled[command_ir] = fn
    return fn


def evaluate(store: "ObjectStore", command_ir: str, input_paths: Sequence[str], output_path: str) -> list[str]:
    """The argv a task's command gives for these paths; CommandError if it fails or gives nothing."""
    from e3 import east

    fn = compile_command(store, command_ir)
    try:
        # The call, and the array it returns, are the runtime's: read it whole with the runtime to itself.
        argv = east.serially(lambda: list(fn(list(input_paths), output_path)))
    except Exception as e:  # EastError from the program, or a signature that does not fit
        raise CommandError(f"command ir {command_ir} failed: {_one_line(e)}") from None
    if not all(isinstance(a, str) for a in argv):
        raise CommandError(f"command ir {command_ir} did not return an array of strings")
    if not argv:
        raise CommandError(f"command ir {command_ir} returned an empty argv")
    return list(argv)


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
