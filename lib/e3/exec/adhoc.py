"""Ad-hoc executions (`e3 run`): one task of an imported package, on input values, outside any workspace.

Outside any workspace, but memoized like every execution: the inputs are
stored (canonical encoding, as `e3 set` stores them), the task_id is the task
object's hash with the input hashes, and a success recorded for that task_id
is reused unless forced. The run itself goes through e3.exec.invocation in this
process (an East task never spawns `east-py run` unless asked), with its output
in `logs/<TASK_ID>.eastl` and, live, on `echo`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Sequence

from e3.errors import NotFound, TaskNotFound, UsageError

if TYPE_CHECKING:
    from e3.exec.invocation import Outcome
    from e3.storage.repository import Repository

FUNCTION_IR = "function_ir"


@dataclass(frozen=True)
class AdhocResult:
    name: str
    """`pkg@version/task`."""
    task_id: str
    outcome: "Outcome"
    cached: bool


def parse_task_spec(spec: str) -> tuple[str, str | None, str]:
    """`pkg/task` or `pkg@ver/task` -> (pkg, ver or None, task)."""
    from e3.repo.package import parse_spec

    pkg, sep, task = spec.partition("/")
    if not sep or not pkg or not task:
        raise UsageError(f"invalid task {spec!r} (expected PKG/TASK or PKG@VERSION/TASK)")
    name, version = parse_spec(pkg)
    return name, version, task


def run_adhoc(
    repo: "Repository",
    package_name: str,
    version: str | None,
    task_name: str,
    inputs: Sequence[tuple[BinaryIO, str | None, str]],
    *,
    force: bool = False,
    force_spawn: bool = False,
    timeout: float | None = None,
    echo: BinaryIO | None = None,
) -> AdhocResult:
    """Run one task of an imported package on input values: (stream, format, name) each, in the
    task's input order (an East task's own function may be left out: the package has it).
    A format of None is refused, naming the input. The output stays in the store."""
    from e3 import east, formats
    from e3.repo.package import read_package
    from e3.storage import identity, records
    from e3.exec import invocation
    from e3.model.paths import format_tree_path
    from e3.model.task import load_task

    found, package = read_package(repo, package_name, version)
    label = f"{found.spec}/{task_name}"
    task_hash = package.tasks.get(task_name)
    if task_hash is None:
        known = ", ".join(sorted(package.tasks)) or "none"
        raise TaskNotFound(f"task {task_name!r} not found in {found.spec} (tasks: {known})", task=task_name)
    task = load_task(repo.objects, task_hash)
    datasets = package.datasets()

    paths = list(task.inputs)
    given = list(inputs)
    implicit: list[str] = []
    own_function = None
    if paths and paths[0][-1:] == (FUNCTION_IR,):
        ref = package.refs.get(paths[0])
        if ref is not None and ref.kind == "value" and ref.hash:
            own_function = ref.hash  # an East task's own function, taken from the package
    if own_function is not None and len(given) == len(paths) - 1:
        implicit, paths = [own_function], paths[1:]
    elif len(given) != len(paths):
        shown = paths[1:] if own_function is not None else paths
        names = ", ".join(format_tree_path(p) for p in shown) or "none"
        raise UsageError(f"task {label} takes {len(shown)} input file(s) ({names}), got {len(given)}")

    input_hashes = list(implicit)
    for (stream, fmt, name), path in zip(given, paths):
        spec_ = datasets.get(path)
        if spec_ is None:
            raise NotFound(f"task {label} reads {format_tree_path(path)}, which the package does not declare")
        if fmt is None:
            raise UsageError(f"cannot tell the format of {name!r} from its name (expected .beast2, .east or .json)")
        data = stream.read()
        try:
            _, value = formats.load(data, fmt, spec_.type)
        except Exception as e:  # FormatError / TypeMismatch: name the file
            raise type(e)(f"input {name} ({format_tree_path(path)}): {e}") from None
        input_hashes.append(repo.objects.write(east.encode(value, spec_.type)))

    tid = identity.task_id(task_hash, input_hashes)
    outcome = None
    cached = False
    if not force:
        reused = records.reusable_output(repo, records.summary(repo, tid))
        if reused is not None:
            outcome = invocation.Outcome("success", output_hash=reused, exit_code=0)
            cached = True
    if outcome is None:
        outcome = _execute(repo, tid, task_hash, input_hashes, force_spawn, timeout, echo)
    return AdhocResult(label, tid, outcome, cached)


def _execute(repo, tid, task_hash, input_hashes, force_spawn, timeout, echo) -> "Outcome":
    from e3.storage import logs, records
    from e3.exec import invocation

    execution_id = uuid.uuid4().hex
    started = records.now()
    with logs.open_log(repo, tid, execution_id) as log:
        sink = logs.Tee(log, echo) if echo is not None else log
        outcome = invocation.execute(repo, task_hash, input_hashes, force_spawn=force_spawn, timeout=timeout, log=sink)
        log.end(outcome.status)
    done = records.now()
    hashes = tuple(input_hashes)
    if outcome.status == "success":
        rec = records.Record("success", execution_id, hashes, started, done, output_hash=outcome.output_hash)
    elif outcome.status == "failed":
        rec = records.Record("failed", execution_id, hashes, started, done, exit_code=outcome.exit_code if outcome.exit_code is not None else 1)
    else:
        rec = records.Record("error", execution_id, hashes, started, done, message=outcome.message or outcome.status)
    records.write(repo, tid, rec)
    return outcome
