"""e3.collector: the cyclic garbage collector held off while large structures are built."""
from __future__ import annotations

import gc
import subprocess
import sys
import threading

from e3_testing.commands import LIB

from e3 import collector


def test_a_pause_holds_the_collector_off_and_gives_back_what_it_found():
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():  # nested: the outer pause decides
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_the_collector_runs_again_once_no_thread_is_inside_a_pause():
    inside, leave = threading.Event(), threading.Event()

    def other():
        with collector.paused():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(10)
    with collector.paused():
        pass
    assert not gc.isenabled()  # the other thread is still building
    leave.set()
    t.join(10)
    assert gc.isenabled()


def test_an_exception_inside_a_pause_still_ends_it():
    try:
        with collector.paused():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()


def test_a_process_that_opts_in_freezes_what_a_pause_built_and_only_then():
    # In a process of its own: a frozen object stays frozen for the life of the process.
    code = (
        "import gc, sys; sys.path.insert(0, sys.argv[1]); from e3 import collector\n"
        "with collector.paused(): kept = [[i] for i in range(1000)]\n"
        "assert gc.get_freeze_count() == 0, 'froze without opting in'\n"
        "collector.freeze_what_is_built()\n"
        "with collector.paused():\n"
        "    more = [[i] for i in range(1000)]\n"
        "    assert gc.get_freeze_count() == 0, 'froze inside the pause'\n"
        "assert gc.get_freeze_count() >= 2000, gc.get_freeze_count()\n"
        "assert gc.isenabled()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(LIB)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
