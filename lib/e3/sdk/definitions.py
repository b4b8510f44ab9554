"""What package authors declare: inputs, tasks, custom tasks and packages.

These are plain descriptions; nothing is encoded until a package is built
(e3.sdk.build). A task's inputs are datasets: an `Input`, or another task's
`.output`. `package(...)` collects everything the given items depend on, so
naming the last task of a chain is enough.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from e3.errors import UsageError
from e3.storage.refs import check_component

DEFAULT_RUNNER = ("east-py", "run", "-p", "east-py-std")
"""The argv prefix of an East task, as the original engine runs it (inputs, `-o` output and the IR file follow)."""

_UNSET: Any = object()


class SdkError(UsageError):
    """A package definition that cannot be built (bad name, type mismatch, clash)."""


@dataclass(eq=False)
class Dataset:
    """A dataset of the package's tree, with its East type and the definition that makes it."""

    path: tuple[str, ...]
    type: Any
    owner: "Input | Task"

    def __repr__(self) -> str:
        return f"Dataset({'.'.join(self.path)})"


@dataclass(eq=False)
class Input(Dataset):
    """`inputs.<name>`: a writable dataset, with a default value or unassigned."""

    name: str = ""
    default: Any = _UNSET

    def __post_init__(self) -> None:
        self.owner = self

    @property
    def has_default(self) -> bool:
        return self.default is not _UNSET and self.default is not None


@dataclass(eq=False)
class Task:
    """`tasks.<name>`: an East function (kind 'east') or a shell script (kind 'custom')."""

    name: str
    kind: str
    inputs: tuple[Dataset, ...]
    output_type: Any
    fn: Any = None
    """East tasks: the `East.function` artifact."""
    command: Callable[..., Any] | None = None
    """Custom tasks: `(b, input_paths, output_path) -> String expression` building the bash script."""
    runner: tuple[str, ...] = DEFAULT_RUNNER
    output: Dataset = field(init=False)

    def __post_init__(self) -> None:
        self.output = Dataset(("tasks", self.name, "output"), self.output_type, self)

    def __repr__(self) -> str:
        return f"Task({self.name!r}, {self.kind})"


@dataclass(eq=False)
class PackageDef:
    name: str
    version: str
    inputs: dict[str, Input]
    tasks: dict[str, Task]

    def __repr__(self) -> str:
        return f"PackageDef({self.name}@{self.version}, {len(self.inputs)} inputs, {len(self.tasks)} tasks)"


def check_name(kind: str, name: str) -> str:
    """A name that becomes one segment of a dataset path and of git tree paths."""
    if not isinstance(name, str):
        raise SdkError(f"{kind} name must be a string, not {type(name).__name__}")
    try:
        return check_component(kind, name)
    except Exception:
        raise SdkError(f"invalid {kind} name {name!r} (no '/', spaces, control characters, leading '.' or '..')") from None


def input(name: str, type: Any, default: Any = _UNSET) -> Input:  # noqa: A001 - the SDK's own word
    """Declare `inputs.<name>` of East type `type`; without a default (or with None) it starts unassigned."""
    check_name("input", name)
    return Input(("inputs", name), type, None, name=name, default=default)  # type: ignore[arg-type]


def task(name: str, inputs: Sequence[Dataset | Input], fn: Any, runner: Sequence[str] | None = None) -> Task:
    """Declare an East task: `fn` is an `East.function` whose parameters match `inputs` in order.

    `runner` replaces the argv prefix `east-py run -p east-py-std` (for example
    `["uv", "run", "east-py", "run", "-p", "east-py-std"]`).
    """
    from e3 import east

    check_name("task", name)
    ins = _datasets(name, inputs)
    try:
        params, out = east.function_signature(fn)
    except (TypeError, AttributeError, KeyError):
        raise SdkError(f"task {name!r}: fn must be an East.function (got {type(fn).__name__})") from None
    if len(params) != len(ins):
        raise SdkError(f"task {name!r}: the function takes {len(params)} parameters but the task has {len(ins)} inputs")
    for i, (param, ds) in enumerate(zip(params, ins)):
        if not east.type_equal(param, ds.type):
            raise SdkError(
                f"task {name!r}: parameter {i} has type {east.format_type(param)} "
                f"but input {'.'.join(ds.path)} has type {east.format_type(ds.type)}"
            )
    prefix = DEFAULT_RUNNER if runner is None else tuple(runner)
    if not prefix or not all(isinstance(a, str) for a in prefix):
        raise SdkError(f"task {name!r}: runner must be a non-empty list of strings")
    return Task(name, "east", ins, out, fn=fn, runner=prefix)


def custom_task(name: str, inputs: Sequence[Dataset | Input], output_type: Any, command: Callable[..., Any]) -> Task:
    """Declare a task that runs a bash script.

    `command(b, input_paths, output_path)` gets East expressions (an
    Array<String> of the input files, in order, and the String path where the
    script must write its output as Beast2) and returns a String expression: the
    script. The task's command IR returns `["bash", "-c", script]`.
    """
    check_name("task", name)
    if not callable(command):
        raise SdkError(f"custom task {name!r}: command must be a function (b, input_paths, output_path) -> script")
    return Task(name, "custom", _datasets(name, inputs), output_type, command=command)


def package(name: str, version: str, *items: Input | Task | Dataset) -> PackageDef:
    """A package holding `items` and everything they depend on (inputs, upstream tasks)."""
    check_name("package", name)
    check_name("version", version)
    if "@" in name:
        raise SdkError(f"invalid package name {name!r}: '@' separates name and version")
    inputs: dict[str, Input] = {}
    tasks: dict[str, Task] = {}
    # Iterative walk: a 10,000-task chain must not hit the recursion limit.
    stack: list[Any] = list(reversed(items))
    while stack:
        item = stack.pop()
        if isinstance(item, Input):
            _add(inputs, "input", item.name, item)
        elif isinstance(item, Task):
            if _add(tasks, "task", item.name, item):
                stack.extend(reversed(item.inputs))
        elif isinstance(item, Dataset):
            stack.append(item.owner)
        else:
            raise SdkError(f"package {name!r}: cannot include {type(item).__name__} (expected input, task or dataset)")
    return PackageDef(name, version, dict(sorted(inputs.items())), dict(sorted(tasks.items())))


def _add(table: dict[str, Any], kind: str, name: str, item: Any) -> bool:
    """Add `item` under `name`; False if it is already there; an error if another item has the name."""
    have = table.get(name)
    if have is item:
        return False
    if have is not None:
        raise SdkError(f"two different {kind}s are named {name!r}")
    table[name] = item
    return True


def _datasets(task_name: str, inputs: Iterable[Any]) -> tuple[Dataset, ...]:
    out = []
    for ds in inputs:
        if isinstance(ds, Task):
            raise SdkError(f"task {task_name!r}: use {ds.name}.output, not the task itself, as an input")
        if not isinstance(ds, Dataset):
            raise SdkError(f"task {task_name!r}: inputs must be inputs or task outputs, not {type(ds).__name__}")
        out.append(ds)
    return tuple(out)
