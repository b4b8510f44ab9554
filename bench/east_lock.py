#!/usr/bin/env python3
"""What e3.east.LOCK costs: many small encodes and decodes through e3's door against the runtime bare.

e3.east holds one re-entrant lock around every call into the East runtime (the
runtime's bridge is not safe under threads; see e3.east). Measured in the same run:

1. the lock alone: an uncontended `with LOCK:` around nothing, per acquire;
2. encode, a prepared encoder: `east.encoder_for(t)(v)` (locked) vs the runtime's
   own `encode_beast2_v5_for(t, codec="none")(v)`;
3. encode, one call: `east.encode(v, t)` vs the runtime building the encoder and calling it;
4. decode, a prepared decoder: `east.decoder_for(t)(data)` vs the runtime's.

Values are small (an Integer, a struct of three fields, the size of e3's records) so
the lock's share is as large as it gets. Goal: one uncontended acquire and release
costs at most 10% of the runtime's own encode of the small struct. Figures 2-4 print
what the door adds per call in all (the lock and one Python call around the
runtime's function), as a ratio to the runtime's bare call; they are figures, not
goals: on values this small the added ~0.3 us is a large share, and an e3 operation
around one encode (an object written, a task run) takes tens of microseconds and more.
Each figure is the best of --repeat rounds (the machine is shared; the minimum is the
least disturbed).

Run alone: `python3 bench/east_lock.py [--count N] [--repeat R] [--check]`.
"""
from __future__ import annotations

import argparse
import os
import sys
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=20_000, help="calls per round (default 20000)")
    p.add_argument("--repeat", type=int, default=5, help="rounds; the best is reported (default 5)")
    add_check_option(p)
    args = p.parse_args()
    n, r = args.count, args.repeat
    print(f"bench/east_lock.py: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {n} calls x best of {r}")
    goals = Goals("the East-threads fix: the lock's cost is negligible")

    def nothing() -> None:
        pass

    def locked_nothing() -> None:
        with east.LOCK:
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
        figures = [
            ("encode, prepared", *best_pair(lambda: bare_enc(v), lambda: door_enc(v), n, r)),
            ("encode, one call", *best_pair(lambda: runtime.encode_beast2_v5_for(t, codec="none")(v), lambda: east.encode(v, t), n, r)),
            ("decode, prepared", *best_pair(lambda: bare_dec(data), lambda: door_dec(data), n, r)),
        ]
        print(f"  {label} ({len(data)} bytes):")
        for what, bare, door in figures:
            print(f"    {what}: runtime {bare * 1e6:.2f} us, e3.east {door * 1e6:.2f} us (+{(door - bare) * 1e6:.2f} us), ratio {door / bare:.2f}")
        share = acquire / figures[0][1]
        print(f"    one acquire + release is {share:.1%} of the runtime's prepared encode")
        if t is row:
            goals.check("lock's share of a small struct's encode", share <= GOAL, f"{share:.1%}", f"<= {GOAL:.0%}")
    return goals.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
