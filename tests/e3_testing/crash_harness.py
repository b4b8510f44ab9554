"""Kill -9 trials shared by tests/test_crash*.py and bench/soak.py.

A trial queues a set of executions, serves them with several worker
processes, SIGKILLs workers at random moments (starting replacements) until
the work is done, and then checks what a crash must never cause:

- lost: an execution whose task has no success record at the end;
- completed twice: an execution with two terminal records (success, failed or
  error) in the object store: its outcome was recorded, and it was run and
  recorded again. A record lives in its task's pointer, replaced by the next;
  the trials set `e3.recordObjects` (`keep_record_objects`) so that every record
  is also kept as an object, the history these checks read. (A log `end` is no measure: a warm pool writes it before its
  process records the outcome, and a kill in between rightly runs it again.)
  A record counts once `tasks/<task_id>` names it (e3-run-task(1)): a record
  object that a worker stored just before it was killed, and that its pointer
  did not name at that moment, is no outcome, and the execution rightly runs
  again. `trial` looks at the claims of each worker it kills right after the
  kill; an execution whose records beyond such unnamed ones are exactly one is
  counted as `rerun` (the at-least-once window), not as completed twice.
- corrupt: anything `e3-fsck` reports other than temporary files a kill left
  behind (those are counted as `leftovers`; `e3 repo gc` removes them);
- stuck: entries still on the queue.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from e3_testing.commands import command_env

from e3.storage import logs, queue, records
from e3.storage.identity import task_id
from e3.storage.repository import open_repository

WORKER = """
import sys
from e3.storage.repository import open_repository
from e3.exec.queue_worker import Worker
Worker(open_repository(sys.argv[1]), workers=int(sys.argv[2]), write_output=False, poll=0.01).run()
"""


@dataclass
class Verdict:
    executions: int = 0
    lost: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    rerun: list[str] = field(default_factory=list)
    """Run again after a kill that left its record stored but unnamed (not a fault: at least once)."""
    unnamed: dict[str, set[str]] = field(default_factory=dict)
    """Execution id -> its record objects that no pointer named when its worker was killed."""
    corrupt: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    leftovers: int = 0
    kills: int = 0
    interrupted: int = 0
    """Attempts cut short by a kill (a `start` in a log with no `end`)."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.twice or self.corrupt or self.stuck)


def make_entries(repo, n: int, seed: int) -> list[queue.Entry]:
    """`n` executions: two thirds East functions run in-process, one third spawned shell tasks."""
    from e3_testing.runner_tasks import Integer, bash_command, east_task, function, make_task, value

    from east import East

    fn = function([Integer], Integer, lambda b, a: a.add(East.value(1, Integer)))
    shell = make_task(repo.objects, bash_command('sleep 0.03; cp "$1" "${@: -1}"'), 1)
    out = []
    for i in range(n):
        x = value(seed * 1000 + i, Integer)
        if i % 3 == 2:
            th, ins = shell, [repo.objects.write(x)]
        else:
            th, ins = east_task(repo.objects, fn, [x])
        out.append(queue.Entry(queue.new_execution_id(), "dev", f"t{i}", th, task_id(th, ins), tuple(ins), ("tasks", f"t{i}", "output")))
    return out


def start_worker(repo_dir: Path, threads: int = 1) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(repo_dir), str(threads)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=command_env(),
    )


def all_done(repo, entries) -> bool:
    if any(True for _ in queue.list_entries(repo)):
        return False
    return all((s := records.summary(repo, e.task_id)) is not None and s.kind == "success" for e in entries)


def keep_record_objects(repo_dir: Path) -> None:
    """Set `e3.recordObjects` in the repository's config: every record is also stored as an
    object, so `recorded_outcomes` sees each one, not only the newest per task."""
    subprocess.run(["git", "--git-dir", str(Path(repo_dir) / ".e3"), "config", "e3.recordObjects", "true"], check=True)


def trial(repo_dir: Path, *, tasks: int = 50, workers: int = 3, max_kills: int = 6, seed: int = 0, deadline: float = 120.0) -> Verdict:
    rng = random.Random(seed)
    keep_record_objects(repo_dir)
    repo = open_repository(repo_dir)
    entries = make_entries(repo, tasks, seed)
    queue.enqueue_many(repo, "local", entries)
    t0 = time.monotonic()
    procs = [start_worker(repo_dir, rng.choice((1, 2))) for _ in range(workers)]
    v = Verdict(executions=len(entries))
    try:
        while not all_done(repo, entries):
            if time.monotonic() - t0 > deadline:
                break
            time.sleep(rng.uniform(0.02, 0.4))
            if v.kills < max_kills:
                # Mostly a worker in the middle of an execution (it holds a claim), sometimes any.
                claimed = [q for q in queue.list_entries(repo) if q.state == "claimed" and q.holder]
                busy = {q.holder.pid for q in claimed}
                choices = [i for i, p in enumerate(procs) if p.pid in busy]
                if not choices or rng.random() < 0.2:
                    choices = list(range(len(procs)))
                i = rng.choice(choices)
                procs[i].send_signal(signal.SIGKILL)
                procs[i].wait()
                note_unnamed(repo, [q.entry for q in claimed if q.holder.pid == procs[i].pid], v)
                v.kills += 1
                procs[i] = start_worker(repo_dir, rng.choice((1, 2)))
            for i, p in enumerate(procs):  # a worker that stopped on its own is a failure of ours
                if p.poll() is not None:
                    err = p.stderr.read().decode(errors="replace")
                    raise AssertionError(f"worker exited {p.returncode}: {err}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()
            p.stderr.close()
    v.seconds = time.monotonic() - t0
    check(repo_dir, entries, v)
    return v


def check(repo_dir: Path, entries: list[queue.Entry], v: Verdict) -> Verdict:
    repo = open_repository(repo_dir)
    for e in entries:
        s = records.summary(repo, e.task_id)
        if s is None or s.kind != "success":
            v.lost.append(e.execution_id)
        started, finished = attempts(repo, e)
        v.interrupted += started - finished
    for eid, recs in outcomes_by_hash(repo).items():
        if len(recs) > 1:
            (v.rerun if len(set(recs) - v.unnamed.get(eid, set())) == 1 else v.twice).append(eid)
    v.stuck = [q.entry.execution_id for q in queue.list_entries(repo)]
    fsck_into(repo_dir, v)
    return v


def fsck_into(repo_dir: Path, v) -> None:
    """e3-fsck's findings: temporary files a kill left are leftovers, anything else is corruption."""
    fsck = subprocess.run(["e3-fsck", "--repo", str(repo_dir)], capture_output=True, env=command_env())
    if b"Traceback" in fsck.stderr or fsck.returncode not in (0, 1):
        v.corrupt.append(fsck.stderr.decode(errors="replace"))
    for line in fsck.stdout.decode().splitlines():
        if line.startswith("temp "):
            v.leftovers += 1
        else:
            v.corrupt.append(line)


_RECORD_HEADER: bytes | None = None


def note_unnamed(repo, held: list[queue.Entry], v: Verdict) -> None:
    """Right after a worker holding `held` was killed: note the record objects of those
    executions that their task's pointer does not name (stored, not yet counted)."""
    if not held:
        return
    stored = outcomes_by_hash(repo)
    for e in held:
        s = records.summary(repo, e.task_id)
        unnamed = set(stored.get(e.execution_id, {})) - {s.record_hash if s else None}
        if unnamed:
            v.unnamed.setdefault(e.execution_id, set()).update(unnamed)


def recorded_outcomes(repo) -> dict[str, list[str]]:
    """Execution id -> kinds of the terminal records stored for it (every record object in the store)."""
    return {eid: list(recs.values()) for eid, recs in outcomes_by_hash(repo).items()}


def outcomes_by_hash(repo) -> dict[str, dict[str, str]]:
    """Execution id -> {record hash: kind} of the terminal records stored for it."""
    global _RECORD_HEADER
    from e3 import east
    from e3.model.types import ExecutionStatusType

    assert records.keeps_objects(repo), "without e3.recordObjects only the newest record of each task is kept (keep_record_objects)"

    if _RECORD_HEADER is None:
        # The type header every record shares: the common prefix of records of every kind and of
        # other sizes (two alike in size would share the first bytes of their values too, and a
        # header that long would miss the records of other sizes).
        now = records.now()
        samples = [
            records.Record("error", "a", (), now, now, message="a"),
            records.Record("running", "bb", ("c",), now, pid=1, pid_start_time=1, boot_id="d"),
            records.Record("success", "e" * 40, ("f" * 64,) * 3, now, now, output_hash="0" * 64),
            records.Record("failed", "g" * 7, ("h" * 64,), now, now, exit_code=3),
        ]
        encoded = [east.encode(r.to_east(), ExecutionStatusType) for r in samples]
        n = 0
        while all(e[n] == encoded[0][n] for e in encoded):
            n += 1
        _RECORD_HEADER = encoded[0][:n]
    out: dict[str, dict[str, str]] = {}
    for h in repo.objects:
        with repo.objects.open(h) as f:
            if f.read(len(_RECORD_HEADER)) != _RECORD_HEADER:
                continue
        rec = records.load(repo, h)
        if rec.kind != "running":
            out.setdefault(rec.execution_id, {})[h] = rec.kind
    return out


def attempts(repo, e: queue.Entry) -> tuple[int, int]:
    """(attempts started, attempts finished) of execution `e`, from its task's log."""
    path = logs.log_path(repo, e.task_id)
    if not os.path.exists(path):
        return 0, 0
    started = finished = 0
    current = None
    for rec in logs.read_records(path):
        if rec.get("stream") == "start":
            current = rec.get("executionId")
            started += current == e.execution_id
        elif rec.get("stream") == "end":
            finished += current == e.execution_id
            current = None
    return started, finished
