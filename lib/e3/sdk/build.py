"""Turn a package definition into objects: values, function IR, command IR, task and package objects.

The object model is the original engine's (../../../man/e3-package.1.rst):

- `inputs.<name>`: writable, initial ref = its default value or unassigned;
- `tasks.<name>.output`: not writable, unassigned;
- `tasks.<name>.function_ir` (East tasks only): not writable, type IR_TYPE,
  holding the task's function IR;
- a task object per task: `commandIr` = hash of the IR of
  `(input_paths: Array<String>, output_path: String) -> Array<String>`.
  East tasks return `[*runner, "-i", <input 1>, …, "-o", <output>, <input 0>]`
  (input 0 is the task's own function_ir); custom tasks return
  `["bash", "-c", <script>]`.

Building is linear in the number of tasks: each distinct function, command
and value is encoded once (a 10,000-task chain of one function encodes one
function IR and one command IR), and the package object once at the end.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from e3 import east
from e3.errors import TypeMismatch
from e3.model.package import UNASSIGNED, DatasetRef, DatasetSpec, Package
from e3.model.task import TaskObject
from e3.model.types import PackageObjectType, TaskObjectType
from e3.sdk.definitions import PackageDef, SdkError, Task
from e3.storage.objects import hash_bytes

PATHS = east.ArrayType(east.StringType)


@dataclass
class BuiltPackage:
    name: str
    version: str
    package_hash: str
    package: Package
    objects: dict[str, bytes] = field(default_factory=dict)
    """Every object the package reaches, by hash (the package object included)."""

    def sorted_objects(self):
        return ((h, self.objects[h]) for h in sorted(self.objects))


class _Builder:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._ir_by_fn: dict[int, tuple[Any, str]] = {}  # id(fn) -> (fn kept alive, hash of its IR value)
        self._east_commands: dict[tuple[str, ...], str] = {}
        self._task_encoder = east.encoder_for(TaskObjectType)
        self._ir_encoder = east.encoder_for(east.IR_TYPE)

    def put(self, data: bytes) -> str:
        h = hash_bytes(data)
        self.objects.setdefault(h, data)
        return h

    def function_ir(self, fn: Any) -> str:
        hit = self._ir_by_fn.get(id(fn))
        if hit is not None and hit[0] is fn:
            return hit[1]
        h = self.put(self._ir_encoder(east.function_ir(fn)))
        self._ir_by_fn[id(fn)] = (fn, h)
        return h

    def east_command(self, runner: tuple[str, ...]) -> str:
        h = self._east_commands.get(runner)
        if h is None:
            h = self.function_ir(east_command_function(runner))
            self._east_commands[runner] = h
        return h

    def custom_command(self, task: Task) -> str:
        try:
            fn = custom_command_function(task.command)
        except SdkError:
            raise
        except Exception as e:  # the author's builder code failed: say which task
            raise SdkError(f"custom task {task.name!r}: command does not build: {_one_line(e)}") from None
        return self.function_ir(fn)

    def task_object(self, task: TaskObject) -> str:
        return self.put(self._task_encoder(task.to_east()))


def east_command_function(runner: tuple[str, ...]) -> Any:
    """The command function of East tasks with argv prefix `runner` (one per runner, shared by every task)."""
    E = east.East

    def command(b, inputs, output):
        rest = inputs.slice(1, inputs.size()).flat_map(lambda b2, p: E.new_array(east.StringType, ["-i", p]))
        return E.new_array(east.StringType, list(runner)).concat(rest).concat(
            E.new_array(east.StringType, ["-o", output, inputs.get(0)])
        )

    return E.function([PATHS, east.StringType], PATHS, command)


def custom_command_function(script: Any) -> Any:
    """The command function of a custom task: `["bash", "-c", script(b, input_paths, output_path)]`."""
    E = east.East
    return E.function(
        [PATHS, east.StringType],
        PATHS,
        lambda b, inputs, output: E.new_array(east.StringType, ["bash", "-c", script(b, inputs, output)]),
    )


def build(pkg: PackageDef) -> BuiltPackage:
    """Encode every object of `pkg`; nothing is written anywhere."""
    b = _Builder()
    inputs_tree: dict[str, Any] = {}
    tasks_tree: dict[str, Any] = {}
    refs: dict[tuple[str, ...], DatasetRef] = {}
    task_hashes: dict[str, str] = {}
    for name, inp in pkg.inputs.items():
        inputs_tree[name] = DatasetSpec(inp.type, True)
        if inp.has_default:
            try:
                data = east.encode(east.coerce(inp.default, inp.type), inp.type)
            except TypeMismatch as e:
                raise SdkError(f"input {name!r}: default {e}") from None
            refs[inp.path] = DatasetRef("value", b.put(data), {})
        else:
            refs[inp.path] = UNASSIGNED
    for name, task in pkg.tasks.items():
        node: dict[str, Any] = {"output": DatasetSpec(task.output_type, False)}
        refs[task.output.path] = UNASSIGNED
        in_paths = tuple(ds.path for ds in task.inputs)
        if task.kind == "east":
            ir_path = ("tasks", name, "function_ir")
            node["function_ir"] = DatasetSpec(east.IR_TYPE, False)
            refs[ir_path] = DatasetRef("value", b.function_ir(task.fn), {})
            command = b.east_command(task.runner)
            in_paths = (ir_path,) + in_paths
        else:
            command = b.custom_command(task)
        tasks_tree[name] = node
        task_hashes[name] = b.task_object(TaskObject(command, in_paths, task.output.path))
    package = Package(task_hashes, {"inputs": inputs_tree, "tasks": tasks_tree}, refs)
    package_hash = b.put(east.encode(package.to_east(), PackageObjectType))
    return BuiltPackage(pkg.name, pkg.version, package_hash, package, b.objects)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
