"""Python's cyclic garbage collector, held off while e3 builds large structures at once.

A run's plan, its workspace's datasets and the first evaluation of its tasks are millions
of small objects made in one go, none of them in a reference cycle. Each time the objects
made since its last full pass grow by a quarter, the collector walks every object the
process holds, so building them costs that walk again and again (`bench/dag.py`'s no-op
run of 100,000 tasks spends a large share of its time there). `paused()` defers the
collector until the outermost pause ends; a cycle made meanwhile is collected afterwards,
as usual. Pauses nest, and in a threaded process (e3-api-server) the collector runs again
once no thread is inside one.

A process that ends with its work (the `e3 start` command) may also opt in to
`freeze_what_is_built()`: once a pause ends, everything the process holds is frozen
(`gc.freeze`) and never walked again, instead of being walked once more by the first full
collection after the pause and by every one after it. A long-lived process must not: the
cycles of a frozen object are never collected.
"""
from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False
_freeze = False


def freeze_what_is_built() -> None:
    """From now on, freeze what the process holds when the outermost pause ends (see above)."""
    global _freeze
    _freeze = True


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection while the block runs (reference counting frees objects as always)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if _freeze:
                    gc.freeze()
                if _was_enabled:
                    gc.enable()
