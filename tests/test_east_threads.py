"""Several Python threads using the East runtime through e3's door at once (e3-api-server, a Dask worker).

The runtime's Cython bridge keeps module-wide state while it turns a Python
East type into its C type (`_rec_id_ctx`, the scope of a recursive type being
converted, keyed by the type's id) and runs Python code in the middle of that
conversion, where the interpreter may switch threads. Two threads converting
copies of one recursive type -- a package's `function_ir` datasets have the IR
type, decoded afresh with every package -- then bind each other's recursive
references: wrong bytes, spurious errors, and sooner or later a segmentation
fault or "malloc(): unaligned tcache chunk detected". And the runtime's C library
keeps the container values a thread makes on a list in that thread's
thread-local storage: released after that thread has ended, a value writes into
freed memory. e3.east runs every call under one lock, on the main thread or on
one thread of its own that lives as long as the process.

Each check runs in a child process, so a crash fails the test with its signal
instead of taking pytest down. The package check switches threads as often as
the interpreter allows (`sys.setswitchinterval`), so its race shows in a second;
the other needs no race: its threads have ended before their values are released.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from e3_testing.commands import LIB

PACKAGE = textwrap.dedent(
    r"""
    import io, sys, threading
    sys.path.insert(0, sys.argv[1])
    threads, rounds = int(sys.argv[2]), int(sys.argv[3])
    from e3 import beast2_stream, east
    from e3.model.package import DatasetSpec, structure_from_east, structure_to_east
    from e3.model.types import StructureType

    # A package's structure as e3 stores it: a task's function IR (of the IR type, recursive) and
    # an output of a recursive type of the author's; every load decodes fresh type objects.
    Tree = east.recursive_type(lambda self: east.VariantType(
        [("leaf", east.StructType([("n", east.IntegerType)])), ("node", east.ArrayType(self))]))
    ir = east.function_ir(east.East.function([east.IntegerType], east.IntegerType, lambda b, v: v + 1))
    tree = east.value_variant("node", [east.value_variant("leaf", {"n": 1}), east.value_variant("node", [])])
    structure = {
        "inputs": {"x": DatasetSpec(east.IntegerType, True)},
        "tasks": {"t": {"function_ir": DatasetSpec(east.IR_TYPE, False), "output": DatasetSpec(Tree, False)}},
    }
    package = east.encode(structure_to_east(structure), StructureType)
    values = {("inputs", "x"): (5, east.IntegerType), ("tasks", "t", "function_ir"): (ir, east.IR_TYPE),
              ("tasks", "t", "output"): (tree, Tree)}
    expected = {path: east.encode(v, t) for path, (v, t) in values.items()}

    sys.setswitchinterval(1e-6)
    problems = []

    def work():
        for _ in range(rounds):
            try:
                _, value = east.decode(package, StructureType)
                loaded = structure_from_east(value)
                for path, (v, _t) in values.items():
                    t = loaded
                    for name in path:
                        t = t[name]
                    t = t.type
                    data = east.encode(v, t)
                    if data != expected[path] or east.encoder_for(t)(v) != data:
                        problems.append(f"{path[-1]}: wrong bytes")
                    found, _ = east.decode(data, t)
                    east.decoder_for(t)(data)
                    beast2_stream.check(io.BytesIO(data), t)
                    if not east.type_equal(east.read_type(data), t):
                        problems.append(f"{path[-1]}: header names another type")
            except Exception as e:
                problems.append(f"{type(e).__name__}: {str(e)[:80]}")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(len(problems), "problems", sorted(set(problems))[:5])
    """
)


OUTLIVED = textwrap.dedent(
    r"""
    import sys, threading
    sys.path.insert(0, sys.argv[1])
    threads, rounds = int(sys.argv[2]), int(sys.argv[3])
    from e3 import east

    # Values that hold containers, as a package's structure and a task's IR do.
    T = east.ArrayType(east.ArrayType(east.IntegerType))
    data = east.encode([[i] for i in range(50)], T)
    decode = east.decoder_for(T)
    kept = []

    def work():
        for _ in range(200):
            kept.append(decode(data))

    for _ in range(rounds):
        # Threads that come and go (a server's job and stream threads) decode; their values outlive them.
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert len(kept) == threads * 200 and all(len(v) == 50 for v in kept[::97])
        kept.clear()  # released here, after the threads that made them have ended
        for _ in range(100):
            decode(data)
    print("0 problems")
    """
)


def _run(script: str, *argv: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, str(LIB), *map(str, argv)], capture_output=True, text=True, timeout=300)


def _clean(proc: subprocess.CompletedProcess) -> None:
    died = f" (killed by {signal.Signals(-proc.returncode).name})" if proc.returncode < 0 else ""
    assert proc.returncode == 0, f"child exited {proc.returncode}{died}\nstdout: {proc.stdout}\nstderr: {proc.stderr[-3000:]}"
    assert proc.stdout.startswith("0 problems"), proc.stdout


def test_one_thread_alone_is_clean():
    """The check itself: with no other thread, every round gives the expected bytes."""
    _clean(_run(PACKAGE, 1, 30))


def test_package_types_used_by_several_threads_at_once():
    """Four threads load one package and encode, decode and check values of its recursive types."""
    _clean(_run(PACKAGE, 4, 30))


def test_values_outlive_the_threads_that_decoded_them():
    """Values decoded by threads that have ended are read and released by another thread."""
    _clean(_run(OUTLIVED, 2, 30))
