"""Two trials of issue 20's faults, shared by tests/test_crash_integrity.py and bench/soak.py.

Both run on crash_mixed's repository (a deployed package of 50 tasks in 5 chains,
every fifth a spawned shell task).

`drain_trial`: `e3 start` killed with its workers (kill -9 of its process group,
nothing else serving the queue), between zero and `kills` times, the input
sometimes changed between kills so that what a killed run left is superseded;
then one `e3 start` to the end. Faults: entries left on the queue (`stuck`), an
execution a later `e3-run-task` finds to run (`stuck`), and crash_mixed's
checks (a task without its success or with a wrong value, an execution with
two outcomes, e3-fsck damage).

`flip_trial`: a run to the end, then one byte of one object of the store,
chosen at random, changed; `e3 start --force` (every task reads its inputs and
command again); then the flip undone and a last `e3 start`. Faults: a success
recorded after the flip for an execution that read the damaged object (its
inputs; its task or command, whose damage fails the task), a wrong value
printed by `e3 get`, a traceback or an unexpected exit, and, once the byte is
put back, a run that does not bring every task back to its expected value or
an e3-fsck that finds damage.
"""
from __future__ import annotations

import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from e3_testing.commands import command_env, run
from e3_testing.crash_harness import Verdict, fsck_into
from e3_testing.crash_mixed import CHAINS, LENGTH, _kill, _spawn, check, expected

from e3.storage import queue, records
from e3.storage.repository import open_repository

TASKS = CHAINS * LENGTH


def _set_x(repo_dir: Path, scratch: Path, x: int) -> None:
    (scratch / "x.east").write_text(str(x))
    run("e3", "set", repo_dir, "dev.inputs.x", scratch / "x.east")


def drain_trial(repo_dir: Path, scratch: Path, x: int, *, kills: int = 3, seed: int = 0) -> Verdict:
    """Kill `e3 start` (with its workers) up to `kills` times, maybe changing x between; then finish."""
    rng = random.Random(seed)
    v = Verdict(executions=TASKS)
    t0 = time.monotonic()
    value = x * 100
    _set_x(repo_dir, scratch, value)
    for _ in range(rng.randint(1, kills)):
        p = _spawn(["e3", "start", str(repo_dir), "dev", "-q"])
        time.sleep(rng.uniform(0.05, 1.2))
        if p.poll() is None:
            _kill(p)
            v.kills += 1
        else:
            p.wait()
        if rng.random() < 0.5:  # what the killed run left on the queue is now superseded
            value += 1
            _set_x(repo_dir, scratch, value)
    done = run("e3", "start", str(repo_dir), "dev", "-q", timeout=300)
    v.seconds = time.monotonic() - t0
    if "failed" in done.out or f"{TASKS} tasks" not in done.out:
        v.lost.append(f"final start: {done.out.strip()}")
    repo = open_repository(repo_dir)
    v.stuck = [f"{q.state} {q.entry.workspace}.{q.entry.task} {q.entry.execution_id}" for q in queue.list_entries(repo)]
    later = run("e3-run-task", repo_dir, "--once", timeout=300).out.split("\n")
    v.stuck += [f"run by a later worker: {line}" for line in later if line]
    check(repo_dir, value, v)
    return v


@dataclass
class FlipVerdict:
    flipped: str = ""
    """`<kind of object> <hash>` that had a byte changed."""
    detected: bool = False
    """The run after the flip named the damaged object (a task failed on it, or the run stopped)."""
    faults: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.faults


def _traceback_or_odd(r, allowed: tuple[int, ...]) -> str | None:
    if b"Traceback" in r.stderr:
        return f"traceback from {' '.join(map(str, r.args))}: {r.stderr.decode(errors='replace')[-300:]}"
    if r.returncode not in allowed:
        return f"{' '.join(map(str, r.args))} exited {r.returncode}: {r.stderr.decode(errors='replace').strip()[-300:]}"
    return None


def _run(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, env=command_env(), timeout=300)


def flip_trial(
    repo_dir: Path, scratch: Path, x: int, *, seed: int = 0, read: bool | None = None, flip: str | None = None
) -> FlipVerdict:
    """`read`: the object is one the next run reads (a task's current input, function or
    command); False: any object of the store; None: either, at random. `flip`: "last" (the
    last byte's low bit), "any" (a random byte, by a random amount) or None: either, at random."""
    rng = random.Random(seed)
    v = FlipVerdict()
    t0 = time.monotonic()
    _set_x(repo_dir, scratch, x)
    first = run("e3", "start", repo_dir, "dev", "-q", timeout=300)
    if f"{TASKS} tasks" not in first.out or "failed" in first.out:
        v.faults.append(f"the run before the flip: {first.out.strip()}")
        return v
    repo = open_repository(repo_dir)
    nodes = _nodes(repo)
    if read is None:
        read = rng.random() < 0.5
    h = rng.choice(sorted({h for _, ins, cmd in nodes for h in (*ins, cmd)} if read else set(repo.objects)))
    path = Path(repo.objects.fspath(h))
    original = path.read_bytes()
    damaged = bytearray(original)
    if not damaged:
        damaged = bytearray(b"\0")
    elif (rng.random() < 0.5) if flip is None else flip == "last":
        damaged[-1] ^= 1  # the flip: a small integer's last byte, which still decodes (15 reads as 14)
    else:
        damaged[rng.randrange(len(damaged))] ^= rng.randrange(1, 256)
    os.chmod(path, 0o644)
    path.write_bytes(bytes(damaged))
    v.flipped = f"{_kind(original)} {h}"
    flipped_at = records.now()
    try:
        r = _run("e3", "start", repo_dir, "dev", "-q", "--force")
        odd = _traceback_or_odd(r, (0, 1, 128))
        if odd:
            v.faults.append(odd)
        v.detected = f"object {h} is corrupt".encode() in r.stdout + r.stderr
        v.faults += _successes_from(repo, h, flipped_at, nodes)
        for c in range(CHAINS):
            g = _run("e3", "get", repo_dir, f"dev.tasks.c{c}-{LENGTH - 1}.output")
            odd = _traceback_or_odd(g, (0, 128))
            if odd:
                v.faults.append(odd)
            elif g.returncode == 0 and g.stdout.decode().strip() != str(expected(x)):
                v.faults.append(f"e3 get printed {g.stdout.decode().strip()} for chain {c}, not {expected(x)}")
    finally:
        path.write_bytes(original)  # the repair: the object as it was
        os.chmod(path, 0o444)
    again = _run("e3", "start", repo_dir, "dev", "-q")
    if again.returncode != 0 or f"{TASKS} tasks" not in again.stdout.decode():
        v.faults.append(f"the run after the repair: {again.stdout.decode().strip()} {again.stderr.decode().strip()}")
    for c in range(CHAINS):
        got = _run("e3", "get", repo_dir, f"dev.tasks.c{c}-{LENGTH - 1}.output").stdout.decode().strip()
        if got != str(expected(x)):
            v.faults.append(f"after the repair chain {c} ended with {got}, not {expected(x)}")
    fv = Verdict()
    fsck_into(repo_dir, fv)
    v.faults += fv.corrupt
    v.seconds = time.monotonic() - t0
    return v


def _nodes(repo) -> list[tuple[str, tuple[str, ...], str]]:  # noqa: ANN001 - a Repository
    """(task_id, input hashes, command IR hash) of every task on the workspace's current inputs."""
    from e3.storage.identity import task_id
    from e3.exec.plan import graph_of as graph
    from e3.repo.workspace import read_snapshot as view

    snap = view(repo, "dev")
    out = []
    for node in graph(repo, snap.package_hash).nodes.values():
        ins = tuple(snap.datasets[p] for p in node.task.inputs)
        out.append((task_id(node.task_hash, ins), ins, node.task.command_ir))
    return out


def _successes_from(repo, h: str, since, nodes) -> list[str]:  # noqa: ANN001 - a Repository, a datetime, _nodes()
    """Successes recorded since `since` for an execution that read object `h`: an input, or its command."""
    out = []
    commands = {tid: cmd for tid, _, cmd in nodes}
    for tid in os.listdir(repo.path("tasks")):
        s = records.summary(repo, tid)
        if s is None or s.kind != "success" or s.record_hash == h:
            continue
        rec = records.read(repo, s)
        if rec.completed_at is None or rec.completed_at < since:
            continue
        if h in rec.input_hashes or commands.get(tid) == h:
            out.append(f"execution {rec.execution_id} succeeded on the damaged object {h}")
    return out


def _kind(data: bytes) -> str:
    """What kind of object these bytes are, for the report (by their header's type)."""
    from e3 import east
    from e3.errors import E3Error
    from e3.model.types import ExecutionStatusType, PackageObjectType, TaskObjectType, WorkspaceStateType

    try:
        t = east.read_type(data)
    except E3Error:
        return "unreadable"
    for name, known in (("record", ExecutionStatusType), ("task", TaskObjectType), ("package", PackageObjectType),
                        ("workspace-state", WorkspaceStateType), ("ir", east.IR_TYPE)):
        if east.type_equal(t, known):
            return name
    return "value"
