#!/usr/bin/env python3
"""Soak: the kill -9 trial of tests/test_crash*.py, many times (not part of the test run).

Each trial: a fresh repository, 50 executions on the queue, 3 worker processes
(1 or 2 threads each) killed with SIGKILL at random moments (mostly while they
hold a claim) and replaced, until every execution is done. Then: executions
lost, objects corrupt (e3-fsck, beyond temporary files a kill leaves),
executions completed twice, entries stuck. Goal: 200 trials, 0, 0, 0. Executions
run again because a kill hit after their record was stored but before
`tasks/<task_id>` named it are counted apart ("run again"): such a record is no
outcome (e3-run-task(1): execution is at least once; tests/crash_harness.py
says how they are told apart).

`--mode start` runs the end-to-end trial instead (tests/e3_testing/crash_mixed.py): a
deployed package of 50 tasks in 5 chains, `e3 start` and two hand-started
`e3-run-task` workers killed at random (a start with its warm pool), the run
finished by a last `e3 start`; same counts, outputs checked against the
expected values.

`--mode drain` and `--mode flip` are issue 20's trials (tests/e3_testing/crash_integrity.py),
on the same package: `e3 start` killed with its workers and nothing else serving
the queue (1 to --kills times, the input sometimes changed between kills), then
one `e3 start` to the end: entries left on the queue, or run by a later
`e3-run-task`, are faults, beside lost, twice and corrupt. And a byte changed in
one object (half the time one the next run reads), `e3 start --force`, the byte
put back, `e3 start`: a success derived from the damaged object, a wrong value
printed, a traceback, or a repository not whole again are faults.

Run alone: `python3 bench/soak.py [--mode queue|start|drain|flip] [--trials 200] [--kills 6] [--seed 0]`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from goals import add_check_option

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))  # e3_testing: the helpers the tests use too
os.environ["PATH"] = f"{ROOT / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"

from e3_testing import crash_mixed  # noqa: E402
from e3_testing.crash_harness import trial  # noqa: E402

from e3.storage.repository import create_repository  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=("queue", "start", "drain", "flip"), default="queue")
    ap.add_argument("-v", "--verbose", action="store_true", help="a line per trial")
    add_check_option(ap)
    args = ap.parse_args()
    if args.mode == "drain":
        return soak_drain(args)
    if args.mode == "flip":
        return soak_flip(args)
    totals = dict(trials=0, executions=0, kills=0, interrupted=0, lost=0, corrupt=0, twice=0, rerun=0, stuck=0, leftovers=0)
    bad: list[str] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="e3-soak-") as tmp:
        if args.mode == "start":
            crash_mixed.setup(Path(tmp) / "repo", Path(tmp))
        for k in range(args.trials):
            if args.mode == "start":  # one repository; each trial changes the input, so every task runs again
                v = crash_mixed.trial(Path(tmp) / "repo", Path(tmp), x=k + 1, kills=args.kills, seed=args.seed + k)
                d = None
            else:
                d = Path(tmp) / f"t{k}"
                create_repository(d)
                v = trial(d, tasks=args.tasks, workers=3, max_kills=args.kills, seed=args.seed + k)
            totals["trials"] += 1
            totals["executions"] += v.executions
            totals["kills"] += v.kills
            totals["interrupted"] += v.interrupted
            totals["lost"] += len(v.lost)
            totals["corrupt"] += len(v.corrupt)
            totals["twice"] += len(v.twice)
            totals["rerun"] += len(v.rerun)
            totals["stuck"] += len(v.stuck)
            totals["leftovers"] += v.leftovers
            if not v.ok:
                bad.append(f"trial {k} (seed {args.seed + k}): lost {v.lost[:3]} twice {v.twice[:3]} corrupt {v.corrupt[:3]} stuck {v.stuck[:3]}")
            if args.verbose:
                print(f"trial {k}: kills {v.kills}, interrupted {v.interrupted}, {'ok' if v.ok else 'FAILED'}, {v.seconds:.1f}s", flush=True)
            if d is not None:
                import shutil

                shutil.rmtree(d, ignore_errors=True)
    who = "e3 start + 2 e3-run-task" if args.mode == "start" else "3 workers"
    return report(
        f"soak ({args.mode}): {totals['trials']} trials of {args.tasks} executions, {who}, up to {args.kills} kill -9 each ({time.monotonic() - t0:.0f} s)",
        [
            ("trials", totals["trials"]),
            ("executions", totals["executions"]),
            ("workers killed (kill -9)", totals["kills"]),
            ("attempts cut short by a kill", totals["interrupted"]),
            ("executions lost", totals["lost"]),
            ("objects corrupt (fsck problems)", totals["corrupt"]),
            ("executions completed twice", totals["twice"]),
            ("entries stuck on the queue", totals["stuck"]),
            ("temporary files left (gc sweeps)", totals["leftovers"]),
            ("run again: record stored, unnamed, at a kill", totals["rerun"]),
        ],
        f"{args.trials}, 0, 0, 0",
        bad,
    )


def report(title: str, rows: list[tuple[str, object]], goal: str, bad: list[str]) -> int:
    """Print a soak's table and its goal, ok or MISSED, then each failed trial; the exit status."""
    print(title)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}} {value}")
    print(f"  goal: {goal} -> {'ok' if not bad else 'MISSED'}")
    for line in bad:
        print("  " + line)
    return 0 if not bad else 1  # a fault is a failure, with --check or without


def soak_drain(args: argparse.Namespace) -> int:
    from e3_testing import crash_integrity

    totals = dict(trials=0, kills=0, stuck=0, lost=0, twice=0, corrupt=0, leftovers=0)
    bad: list[str] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="e3-soak-") as tmp:
        repo = Path(tmp) / "repo"
        crash_mixed.setup(repo, Path(tmp))
        for k in range(args.trials):
            v = crash_integrity.drain_trial(repo, Path(tmp), x=k + 1, kills=min(args.kills, 3), seed=args.seed + k)
            totals["trials"] += 1
            totals["kills"] += v.kills
            for key in ("stuck", "lost", "twice", "corrupt"):
                totals[key] += len(getattr(v, key))
            totals["leftovers"] += v.leftovers
            if not v.ok:
                bad.append(f"trial {k} (seed {args.seed + k}): stuck {v.stuck[:3]} lost {v.lost[:3]} twice {v.twice[:3]} corrupt {v.corrupt[:3]}")
            if args.verbose:
                print(f"trial {k}: kills {v.kills}, {'ok' if v.ok else 'FAILED'}, {v.seconds:.1f}s", flush=True)
    return report(
        f"soak (drain): {totals['trials']} trials of {crash_integrity.TASKS} tasks, e3 start killed with its workers"
        f" and no other worker, then one e3 start to the end ({time.monotonic() - t0:.0f} s)",
        [
            ("trials", totals["trials"]),
            ("e3 start killed (kill -9 of its group)", totals["kills"]),
            ("entries left on the queue, or run later", totals["stuck"]),
            ("tasks lost (no success, wrong value)", totals["lost"]),
            ("executions completed twice", totals["twice"]),
            ("damage found by e3-fsck", totals["corrupt"]),
            ("temporary files left (gc sweeps)", totals["leftovers"]),
        ],
        f"{args.trials} trials, 0 faults",
        bad,
    )


def soak_flip(args: argparse.Namespace) -> int:
    from e3_testing import crash_integrity

    trials = read = detected = 0
    kinds: dict[str, int] = {}
    bad: list[str] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="e3-soak-") as tmp:
        repo = Path(tmp) / "repo"
        crash_mixed.setup(repo, Path(tmp))
        for k in range(args.trials):
            reads = k % 2 == 0  # half the flips hit an object the next run reads
            v = crash_integrity.flip_trial(repo, Path(tmp), x=k + 1, seed=args.seed + k, read=reads)
            trials += 1
            read += reads
            detected += v.detected
            kind = v.flipped.split()[0] if v.flipped else "none"
            kinds[kind] = kinds.get(kind, 0) + 1
            if not v.ok:
                bad.append(f"trial {k} (seed {args.seed + k}, {v.flipped}): {v.faults[:3]}")
            if args.verbose:
                print(f"trial {k}: {v.flipped}, {'named' if v.detected else 'not read'}, {'ok' if v.ok else 'FAILED'}, {v.seconds:.1f}s", flush=True)
    return report(
        f"soak (flip): {trials} trials, one byte of one object changed between runs, then e3 start --force,"
        f" the byte put back, e3 start ({time.monotonic() - t0:.0f} s)",
        [
            ("trials", trials),
            ("objects flipped, by kind", ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))),
            ("flips in an object the next run reads", read),
            ("runs that named the damaged object", detected),
            ("faults (success from it, wrong value, ...)", len(bad)),
        ],
        f"{args.trials} trials, 0 faults",
        bad,
    )


if __name__ == "__main__":
    sys.exit(main())
