"""Running one task execution: evaluate its command, then run the argv in-process or spawn it.

The original engine runs every task by spawning the argv its command IR gives
(../shared/spec/upstream-e3.md, "Execution"). Spawning `east-py run` costs
~150-250 ms per task; running the same function in this process costs
microseconds. So when the argv is the standard East runner form

    [PREFIX...] east-py run [-p PKG]... [-i INPUT]... -o OUTPUT FUNCTION_IR

(PREFIX empty or `uv run`; the files all being this execution's own input and
output paths) the function is run in-process with the same platform packages,
inputs decoded and output encoded exactly as `east-py run` does, so the output
bytes and hash are the same. Anything else, or `force_spawn`, or
`E3_SPAWN_ALL=1`, is spawned as given, in its own process group, with its inputs
as `input-<i>.beast2` files in a scratch directory under `.e3/tmp` and its
output read back from `output.beast2`.

Outcomes: 'success' (output stored), 'failed' (the task ran and said no: a
non-zero exit, or an East runtime error, exit code 1 as `east-py run` gives),
'error' (it could not be run: bad command IR, missing object, no output file,
timeout).
"""
from __future__ import annotations

import io
import itertools
import os
import selectors
import shutil
import signal
import subprocess
import sys
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from e3.errors import CorruptObject, E3Error, ObjectNotFound
from e3.storage.objects import ObjectStore

if TYPE_CHECKING:
    from e3.storage.repository import Repository

SPAWN_ALL_ENV = "E3_SPAWN_ALL"
KILL_GRACE = 1.0
"""Seconds between SIGTERM and SIGKILL for a spawned task's process group."""
EAST_RUNNER = "east-py"
PREFIXES = ((), ("uv", "run"))
"""Prefixes before `east-py run` that still mean "this Python's East runtime" and may run in-process."""


@dataclass(frozen=True)
class Outcome:
    status: str  # 'success' | 'failed' | 'error' | 'cancelled'
    output_hash: str | None = None
    exit_code: int | None = None
    message: str | None = None


class Log(Protocol):
    def write(self, stream: str, data: bytes) -> None: ...


class _NoLog:
    def write(self, stream: str, data: bytes) -> None:
        pass


# ---------------------------------------------------------------- recognising east-py run


@dataclass(frozen=True)
class EastRun:
    """A parsed `east-py run` argv: which inputs feed the function, in order, and its platform."""

    packages: tuple[str, ...]
    ir_input: int
    arg_inputs: tuple[int, ...]


def parse_east_run(argv: Sequence[str], input_paths: Sequence[str], output_path: str) -> EastRun | None:
    """The in-process equivalent of `argv`, or None if it must be spawned as given."""
    argv = list(argv)
    for prefix in PREFIXES:
        n = len(prefix)
        if tuple(argv[:n]) == prefix and len(argv) > n + 1 and os.path.basename(argv[n]) == EAST_RUNNER and argv[n + 1] == "run":
            rest = argv[n + 2 :]
            break
    else:
        return None
    index = {p: i for i, p in enumerate(input_paths)}
    packages: list[str] = []
    inputs: list[int] = []
    output = ir = None
    i = 0
    while i < len(rest):
        a = rest[i]
        if a in ("-p", "--package", "-i", "--input", "-o", "--output"):
            if i + 1 >= len(rest):
                return None
            value = rest[i + 1]
            i += 2
        elif a.startswith(("--package=", "--input=", "--output=")):
            a, value = a.split("=", 1)
            i += 1
        elif a == "--decode=whole" or a == "--exit-with-parent":
            i += 1  # same result in-process
            continue
        elif a.startswith("-"):
            return None  # an option we do not emulate (-v, --profile, ...): spawn it
        else:
            if ir is not None:
                return None
            ir = a
            i += 1
            continue
        if a in ("-p", "--package"):
            packages.append(value)
        elif a in ("-i", "--input"):
            if value not in index:
                return None
            inputs.append(index[value])
        else:
            if output is not None:
                return None
            output = value
    if output != output_path or ir is None or ir not in index:
        return None
    return EastRun(tuple(packages), index[ir], tuple(inputs))


# ---------------------------------------------------------------- output capture


class _Dispatch(io.TextIOBase):
    """sys.stdout/sys.stderr while tasks run: text goes to the current thread's task log.

    Platform functions (console_log...) print through sys.stdout; in a thread
    that runs no task, text goes where it always went.
    """

    def __init__(self, stream: str, fallback):
        self.stream = stream
        self.fallback = fallback
        self.local = threading.local()

    def _target(self):
        return getattr(self.local, "buffer", None)

    def write(self, text: str) -> int:
        buf = self._target()
        if buf is None:
            return self.fallback.write(text)
        buf.append(text)
        if "\n" in text:
            self.flush()
        return len(text)

    def flush(self) -> None:
        buf = self._target()
        if buf is None:
            self.fallback.flush()
            return
        if buf:
            data = "".join(buf).encode("utf-8", "replace")
            buf.clear()
            self.local.log.write(self.stream, data)

    @property
    def encoding(self):  # noqa: D102 - file protocol
        return "utf-8"

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.fallback.fileno()

    @property
    def buffer(self):  # binary writes bypass capture: only e3's own output uses them
        return self.fallback.buffer


_install_lock = threading.Lock()


def _dispatchers() -> tuple[_Dispatch, _Dispatch]:
    out, err = sys.stdout, sys.stderr
    if type(out) is _Dispatch and type(err) is _Dispatch:  # installed: no lock to take (nor an ABC's isinstance)
        return out, err
    with _install_lock:
        if not isinstance(sys.stdout, _Dispatch):
            sys.stdout = _Dispatch("stdout", sys.stdout)
        if not isinstance(sys.stderr, _Dispatch):
            sys.stderr = _Dispatch("stderr", sys.stderr)
        return sys.stdout, sys.stderr  # type: ignore[return-value]


class Capture:
    """Route this thread's Python-level stdout/stderr into `log` (one record per line or flush)
    while in the `with` block (a class, not a generator: it is entered once per task)."""

    __slots__ = ("log", "outs")

    def __init__(self, log: Log):
        self.log = log

    def __enter__(self) -> None:
        outs = self.outs = _dispatchers()
        for d in outs:
            d.local.buffer = []
            d.local.log = self.log

    def __exit__(self, *exc: object) -> None:
        for d in self.outs:
            d.flush()
            d.local.buffer = None
            d.local.log = None


# ---------------------------------------------------------------- execute


_tasks: dict[str, Any] = {}
_functions: dict[tuple[str, tuple[str, ...]], Any] = {}
_platforms: dict[str, list] = {}
_platform_lists: dict[tuple[str, ...], list] = {}
_plans: dict[tuple[str, int], "EastRun | None"] = {}
COMPILED_KEPT = 4096
"""Compiled functions a worker keeps (the oldest goes first), so a long run's memory stays bounded."""
_counter = itertools.count()
PLACEHOLDER_DIR = "/e3-task"
"""Where a command's paths point when it is evaluated only to recognise `east-py run`."""


def spawn_all() -> bool:
    return os.environ.get(SPAWN_ALL_ENV, "") not in ("", "0")


def execute(
    repo: "Repository",
    task_hash: str,
    input_hashes: Sequence[str],
    *,
    force_spawn: bool = False,
    timeout: float | None = None,
    log: Log | None = None,
    on_spawn: Callable[[int], None] | None = None,
    durable: bool = True,
    command_ir: str | None = None,
) -> Outcome:
    """Run one execution of a task on these inputs; store its output; never raise for the task's faults.

    `timeout` bounds spawned tasks (their process group is killed); an
    in-process run is bounded by the pool that hosts it. `on_spawn(pgid)` is
    told the process group of a spawned task, so its owner can kill it.
    `command_ir` is the task's command (the hash of its IR) when the caller has
    the task object decoded already (e3 start's plan); else the task is loaded.
    """
    log = log or _NoLog()
    if command_ir is None:
        try:
            task = _load_task(repo, task_hash)
            if len(input_hashes) != len(task.inputs):
                return Outcome("error", message=f"task {task_hash[:12]} takes {len(task.inputs)} inputs, got {len(input_hashes)}")
        except E3Error as e:
            return _error(log, str(e))
        command_ir = task.command_ir
    if not (force_spawn or spawn_all()):
        try:
            plan = _plan(repo, command_ir, len(input_hashes))
        except E3Error as e:
            return _error(log, str(e))
        platform = None if plan is None else _platform(plan.packages)
        if platform is not None:
            return _run_in_process(repo, plan, platform, input_hashes, log, durable)
    scratch = os.path.join(str(repo.root), "tmp", f"run-{os.getpid()}-{next(_counter)}-{secrets.token_hex(4)}")
    input_paths = [os.path.join(scratch, f"input-{i}.beast2") for i in range(len(input_hashes))]
    output_path = os.path.join(scratch, "output.beast2")
    from e3.exec import command

    try:
        argv = command.evaluate(repo.objects, command_ir, input_paths, output_path)
    except E3Error as e:
        return _error(log, str(e))
    try:
        return _spawn(repo, argv, Path(scratch), input_hashes, log, timeout, on_spawn, durable)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _plan(repo: "Repository", command_ir: str, n_inputs: int) -> EastRun | None:
    """The in-process form of a command for `n_inputs` inputs, or None if it must be spawned.

    The plan names inputs by position, so the command is evaluated once per worker on
    placeholder paths and its plan reused: a task's command is a pure East function
    of the paths, and only a command that inspected their text could tell them apart.
    """
    key = (command_ir, n_inputs)
    if key not in _plans:
        from e3.exec import command

        input_paths = [f"{PLACEHOLDER_DIR}/input-{i}.beast2" for i in range(n_inputs)]
        output_path = f"{PLACEHOLDER_DIR}/output.beast2"
        argv = command.evaluate(repo.objects, command_ir, input_paths, output_path)
        _plans[key] = parse_east_run(argv, input_paths, output_path)
    return _plans[key]


def _error(log: Log, message: str) -> Outcome:
    log.write("stderr", f"e3: {message}\n".encode())
    return Outcome("error", message=message)


def _load_task(repo: "Repository", task_hash: str):
    task = _tasks.get(task_hash)
    if task is None:
        from e3.model.task import load_task

        task = _tasks[task_hash] = load_task(repo.objects, task_hash)
    return task


def _platform(packages: tuple[str, ...]) -> list | None:
    """The platform functions of these packages, or None if one is not importable here (then spawn)."""
    fns = _platform_lists.get(packages)
    if fns is not None:
        return fns
    from e3 import east

    fns = []
    for name in packages:
        found = _platforms.get(name)
        if found is None:
            try:
                found = _platforms[name] = east.load_platform(name)
            except (ImportError, ValueError):
                return None
        fns.extend(found)
    _platform_lists[packages] = fns
    return fns


def preload(packages: Sequence[str]) -> None:
    """Import platform packages now (a warm worker does this before its first task)."""
    _platform(tuple(packages))


def _run_in_process(repo: "Repository", plan: EastRun, platform: list, input_hashes: Sequence[str], log: Log, durable: bool) -> Outcome:
    from e3 import east

    store = repo.objects
    root = store.root if type(store) is ObjectStore else None  # values are kept for the repository's own store
    try:
        ir_hash = input_hashes[plan.ir_input]
        inputs = [_read_value(store, root, input_hashes[i]) for i in plan.arg_inputs]
        key = (ir_hash, plan.packages)
        runner = _functions.get(key)
        ir = None if runner is not None else store.read(ir_hash)
    except E3Error as e:
        return _error(log, str(e))

    # From here on, what `east-py run` would report as "Error: ..." with exit 1 is the task's failure.
    try:
        # With the runtime to itself, from compiling to the output's bytes: a Dask worker and
        # `e3-run-task` evaluate in several threads of one process, and the runtime is not safe
        # under threads (e3.east); the GIL ran them one at a time anyway.
        data = east.serially(_evaluate, key, runner, ir, platform, inputs, log)
    except Exception as e:  # EastError, or what east-py run would also fail on (bad IR, input types)
        text = str(e).rstrip("\n")
        log.write("stderr", f"Error: {text}\n".encode())
        first = text.splitlines()[0] if text else type(e).__name__
        return Outcome("failed", exit_code=1, message=first)
    try:
        if root is None:
            output_hash = store.write(data, durable=durable)
        else:
            output_hash, made = store.put(data, durable=durable)
            if made:  # not a name already there: a damaged object must still be found by its next reader
                _keep_value(root, output_hash, data)
    except E3Error as e:
        return _error(log, str(e))
    return Outcome("success", output_hash=output_hash, exit_code=0)


_values: dict[tuple[object, str], bytes] = {}
"""Small values a worker read or wrote lately, by repository and hash: a fan-out's leaves share
their input, and a chain's next task reads the output just written. An object's bytes never
change, and these were hashed to their name when read, or made its file when written (an
output whose name was there already is not kept: its file's bytes are unverified)."""
VALUES_KEPT = 256
VALUE_KEPT_BYTES = 4096


def _read_value(store, root: object, obj: str) -> bytes:
    if root is None:
        return store.read(obj)
    data = _values.get((root, obj))
    if data is None:
        data = store.read(obj)
        _keep_value(root, obj, data)
    return data


def _keep_value(root: object, obj: str, data: bytes) -> None:
    if len(data) <= VALUE_KEPT_BYTES:
        if len(_values) >= VALUES_KEPT:
            try:
                del _values[next(iter(_values))]
            except (RuntimeError, KeyError, StopIteration):  # another thread's task changed it meanwhile
                pass
        _values[(root, obj)] = data


PLATFORM_CHECK_LIMIT = 128
"""IR up to this many bytes is checked for platform calls before it is compiled (see `_evaluate`)."""


def _evaluate(key: tuple, runner: Any, ir: bytes | None, platform: list, inputs: list[bytes], log: Log) -> bytes:
    """The output bytes of the function `key` names (compiled from `ir` unless `runner` is given)."""
    from e3 import east

    with Capture(log):
        if runner is None:
            if len(_functions) >= COMPILED_KEPT:  # each task of a pipeline is often a function of its own
                del _functions[next(iter(_functions))]
            # East registers every platform function on each compile, which costs more than
            # compiling a small function; the check that spares it costs more than that
            # beyond small IR (it prints the IR as text).
            if len(ir) <= PLATFORM_CHECK_LIMIT and east.calls_no_platform(ir):
                platform = ()
            runner = _functions[key] = east.compile_runner(ir, platform)
        return east.run_encoded(runner, inputs)


def _spawn(
    repo: "Repository",
    argv: list[str],
    scratch: Path,
    input_hashes: Sequence[str],
    log: Log,
    timeout: float | None,
    on_spawn: Callable[[int], None] | None,
    durable: bool,
) -> Outcome:
    store = repo.objects
    make = getattr(log, "make", None)
    if make is not None:
        # A deferred log (e3.storage.logs.LogWriter) gets its file before the process runs,
        # not at its first output, which may come when the task itself has filled the disk.
        try:
            make()
        except OSError as e:
            from e3.storage.files import storage_error

            return Outcome("error", message=str(storage_error(e, getattr(log, "path", "the task's log"))))
    try:
        scratch.mkdir(parents=True)
    except OSError as e:
        return _error(log, f"cannot make scratch directory {scratch}: {(e.strerror or str(e)).lower()}")
    try:
        for i, h in enumerate(input_hashes):
            store.copy(h, scratch / f"input-{i}.beast2")  # verified while copied
    except ObjectNotFound:
        return _error(log, f"input {i} (object {h}) not found")
    except CorruptObject as e:
        return _error(log, str(e))
    except (OSError, E3Error) as e:
        return _error(log, f"cannot stage input {i}: {e}")
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout or cancel kills all of it
            env=_task_env(),
        )
    except OSError as e:
        return _error(log, f"cannot run {argv[0]!r}: {(e.strerror or str(e)).lower()}")
    if on_spawn is not None:
        on_spawn(proc.pid)
    timed_out = _pump(proc, log, timeout)
    code = proc.wait()
    if timed_out:
        return _error(log, f"timed out after {timeout:g}s (process group killed)")
    if code != 0:
        if code < 0:
            name = _signal_name(-code)
            message = f"killed by {name}"
            code = 128 - code
        else:
            message = f"exited with status {code}"
        if _no_space_left(scratch):
            # Its writes failed for the machine's sake, not its own: say so, and the worker then
            # records nothing and stops, so the task runs again once there is space.
            return _error(log, f"{message}: no space left on device in {scratch.parent}")
        return Outcome("failed", exit_code=code, message=message)
    output = scratch / "output.beast2"
    if not output.is_file():
        return _error(log, "command exited 0 but wrote no output file")
    try:
        with open(output, "rb") as f:
            output_hash = store.write_stream(f, durable=durable)
    except E3Error as e:
        return _error(log, str(e))
    return Outcome("success", output_hash=output_hash, exit_code=0)


def _no_space_left(directory: Path) -> bool:
    """Whether the file system holding `directory` has no block left for this process."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return (st.f_bfree if os.geteuid() == 0 else st.f_bavail) == 0


def sweep_scratch(repo: "Repository") -> int:
    """Remove scratch directories (`tmp/run-<pid>-…`) whose process is gone; return how many."""
    removed = 0
    try:
        names = os.listdir(repo.path("tmp"))
    except FileNotFoundError:
        return 0
    for name in names:
        parts = name.split("-")
        if parts[0] != "run" or len(parts) < 2 or not parts[1].isdigit():
            continue
        try:
            os.kill(int(parts[1]), 0)
            continue  # its process lives (or the pid was reused: then it waits for the next sweep)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(repo.path("tmp", name), ignore_errors=True)
        removed += 1
    return removed


def exec_path() -> str:
    """Where this e3's own executables are: a source checkout's bin/, else the install's scripts dir."""
    checkout_bin = Path(__file__).resolve().parents[3] / "bin"
    if (checkout_bin / "e3").is_file():
        return str(checkout_bin)
    import sysconfig

    return sysconfig.get_path("scripts")


def _task_env() -> dict[str, str]:
    """A spawned task's environment: ours, with this e3's executables first on PATH.

    Like git's exec-path: a script that calls `e3 convert` gets the e3 that runs
    it, not whichever one a wrapper (pyenv, a venv) happens to put first.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([exec_path(), env.get("PATH", "")])
    return env


def _pump(proc: subprocess.Popen, log: Log, timeout: float | None) -> bool:
    """Stream the child's output into the log as it comes; kill its group at the deadline. True if timed out."""
    deadline = None if timeout is None else time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    try:
        while sel.get_map():
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            events = sel.select(wait)
            if not events and deadline is not None and time.monotonic() >= deadline:
                kill_group(proc.pid, proc)
                return True
            for key, _ in events:
                data = os.read(key.fileobj.fileno(), 1 << 16)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                log.write(key.data, data)
        if deadline is not None:
            left = deadline - time.monotonic()
            try:
                proc.wait(max(0.0, left))
            except subprocess.TimeoutExpired:
                kill_group(proc.pid, proc)
                return True
        return False
    finally:
        sel.close()
        proc.stdout.close()
        proc.stderr.close()


def kill_group(pgid: int, proc: subprocess.Popen | None = None, grace: float = KILL_GRACE) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after `grace` seconds.

    With `proc` (the group's leader, our child), it is reaped meanwhile: an
    unreaped leader would keep the group "alive" as a zombie.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + grace
    while time.monotonic() < end:
        if proc is not None:
            proc.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
