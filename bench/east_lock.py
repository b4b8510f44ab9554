#!/usr/bin/env python3
"""What e3.east's thread safety costs: small encodes and decodes through e3's door against the runtime bare.

Every call e3.east makes into the East runtime holds one re-entrant lock, and a
call that returns values the runtime made (a decode) runs on the main thread or,
from any other thread, on the runtime's own thread (see e3.east). Measured in the
same run, the best of --repeat rounds each, rounds alternated:

1. the lock alone: an uncontended acquire and release around nothing;
2. on the main thread (the CLI, a worker process): `east.encoder_for(t)(v)`,
   `east.encode(v, t)` and `east.decoder_for(t)(data)` against the runtime's own
   encoder and decoder (`encode_beast2_v5_for(t, codec="none")`, `decode_beast2_with_header_for(t)`);
3. on another thread (e3-api-server's request threads, a Dask worker's): the same
   decode, which is handed to the runtime's thread and waited for.

Values are small (an Integer, a struct of three fields, the size of e3's records)
so the share of the lock and the hand-over is as large as it gets. Goal: one
uncontended acquire and release costs at most 10% of the runtime's own encode of
the small struct. The other figures are printed, not goals: on values this small
the door's fixed cost per call is a large share, and an e3 operation around one
call (an object written, a request served, a task run) takes far longer.

Run alone: `python3 bench/east_lock.py [--count N] [--repeat R] [--check]`.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from goals import Goals, add_check_option

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from east.serialization import beast2 as runtime  # noqa: E402

from e3 import east  # noqa: E402

GOAL = 0.10
"""Most an uncontended acquire and release may cost, as a share of the runtime's encode of a small struct."""


def once(fn, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - start) / count


def best_pair(bare, door, count: int, repeat: int) -> tuple[float, float]:
    """Seconds per call of `bare` and of `door`, each the best of `repeat` rounds of `count` calls,
    the rounds alternating so that a change in the machine's load falls on both."""
    bares, doors = [], []
    for _ in range(repeat):
        bares.append(once(bare, count))
        doors.append(once(door, count))
    return min(bares), min(doors)


def on_a_thread(fn, *args):
    """`fn(*args)` run on a new thread (not the main one); its result."""
    out = []
    worker = threading.Thread(target=lambda: out.append(fn(*args)))
    worker.start()
    worker.join()
    return out[0]


def line(what: str, bare: float, door: float) -> None:
    print(f"    {what}: runtime {bare * 1e6:.2f} us, e3.east {door * 1e6:.2f} us (+{(door - bare) * 1e6:.2f} us), ratio {door / bare:.2f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=20_000, help="calls per round (default 20000)")
    p.add_argument("--repeat", type=int, default=5, help="rounds; the best is reported (default 5)")
    add_check_option(p)
    args = p.parse_args()
    n, r = args.count, args.repeat
    print(f"bench/east_lock.py: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {n} calls x best of {r}")
    goals = Goals("the East-threads fix: what it adds to a call is negligible")
    lock = east._LOCK

    def nothing() -> None:
        pass

    def locked_nothing() -> None:
        with lock:
            pass

    empty, locked = best_pair(nothing, locked_nothing, n, r)
    acquire = locked - empty
    print(f"  uncontended acquire + release: {acquire * 1e9:.0f} ns")

    row = east.StructType([("id", east.IntegerType), ("name", east.StringType), ("score", east.FloatType)])
    cases = [("Integer", east.IntegerType, 42), ("Struct{id, name, score}", row, {"id": 7, "name": "seven", "score": 0.5})]
    for label, t, v in cases:
        bare_enc = runtime.encode_beast2_v5_for(t, codec="none")
        door_enc = east.encoder_for(t)
        data = bare_enc(v)
        assert door_enc(v) == data == east.encode(v, t)
        bare_dec = runtime.decode_beast2_with_header_for(t)
        door_dec = east.decoder_for(t)
        print(f"  {label} ({len(data)} bytes), main thread:")
        prepared = best_pair(lambda: bare_enc(v), lambda: door_enc(v), n, r)
        line("encode, prepared", *prepared)
        line("encode, one call", *best_pair(lambda: runtime.encode_beast2_v5_for(t, codec="none")(v), lambda: east.encode(v, t), n, r))
        line("decode, prepared", *best_pair(lambda: bare_dec(data), lambda: door_dec(data), n, r))
        share = acquire / prepared[0]
        print(f"    one acquire + release is {share:.1%} of the runtime's prepared encode")
        if t is row:
            goals.check("lock's share of a small struct's encode", share <= GOAL, f"{share:.1%}", f"<= {GOAL:.0%}")
        print(f"  {label}, another thread (decode handed to the runtime's thread):")
        line("decode, prepared", *on_a_thread(best_pair, lambda: bare_dec(data), lambda: door_dec(data), n // 4, r))
    return goals.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
