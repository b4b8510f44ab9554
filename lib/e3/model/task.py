"""Task objects: which command IR runs, on which dataset paths, writing which path."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from e3.errors import FormatError
from e3.model.paths import TreePath, tree_path_from_east, tree_path_to_east

if TYPE_CHECKING:
    from e3.model.objects import Objects


@dataclass(frozen=True, slots=True)
class TaskObject:
    command_ir: str
    """Hash of the IR of `(input_paths: Array<String>, output_path: String) -> Array<String>`."""
    inputs: tuple[TreePath, ...]
    output: TreePath

    def to_east(self):
        from e3.east import value_struct as struct

        return struct(
            {
                "commandIr": self.command_ir,
                "inputs": [tree_path_to_east(p) for p in self.inputs],
                "output": tree_path_to_east(self.output),
            }
        )

    @classmethod
    def from_east(cls, value) -> "TaskObject":
        return cls(
            command_ir=str(value["commandIr"]),
            inputs=tuple(tree_path_from_east(p) for p in value["inputs"]),
            output=tree_path_from_east(value["output"]),
        )


def store_task(store: "Objects", task: TaskObject) -> str:
    from e3.east import encode
    from e3.model.types import TaskObjectType

    return store.write(encode(task.to_east(), TaskObjectType))


def load_task(store: "Objects", task_hash: str) -> TaskObject:
    from e3.east import decode
    from e3.model.types import TaskObjectType

    _, value = _decode_as(store.read(task_hash), TaskObjectType, f"task object {task_hash}", decode)
    return TaskObject.from_east(value)


def _decode_as(data: bytes, t, what: str, decode):
    from e3.east import type_equal

    try:
        found, value = decode(data)
    except Exception as e:  # FormatError and runtime ValueErrors alike
        raise FormatError(f"{what} is not a valid value: {e}") from None
    if not type_equal(found, t):
        raise FormatError(f"{what} has the wrong type")
    return found, value
