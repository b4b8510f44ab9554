"""Build small and large test packages in-process, fast (no subprocess, one encode per distinct object).

    from e3_testing.packages import chain_zip, fanout_zip
    zip_path = chain_zip(tmp_path, 1000)        # inputs.x -> t00000 -> t00001 -> … (each adds 1)
    zip_path = fanout_zip(tmp_path, 1000)       # inputs.x -> t00000 … t00999 (each adds its index)

    zip_path = diamond_zip(tmp_path)            # x (1) -> a (+1) -> b (+10), c (+100) -> d (b + c): 114

Each returns the zip path; `chain(n)` / `fanout(n)` / `diamond()` return the package definition
for callers that want `e3.sdk.build` without a zip. `script(text)` is a custom task's
command from a bash script with `{in0}`… `{out}` placeholders; `spin` is a CPU-bound
East body (a loop of n rounds).
"""
from __future__ import annotations

from pathlib import Path

from e3 import sdk
from e3.east import East, IntegerType

INCREMENT = East.function([IntegerType], IntegerType, lambda b, v: v + 1)
ADD = East.function([IntegerType, IntegerType], IntegerType, lambda b, x, y: x + y)


def script(text: str):
    """A custom task's command: the bash script `text` with {in0}, {in1}... and {out} replaced by the quoted paths."""

    def command(b, inputs, output):
        parts: list = []
        rest = text
        while rest:
            i = rest.find("{")
            if i < 0:
                parts.append(rest)
                break
            j = rest.index("}", i)
            key = rest[i + 1 : j]
            parts += [rest[:i], sdk.quote(output if key == "out" else inputs.get(int(key[2:])))]
            rest = rest[j + 1 :]
        return East.str(*parts)

    return command


def spin(b, n, seed):
    """An East function body that loops `n` rounds from `seed` (CPU-bound; about 0.4 µs a round here)."""
    acc = b.let(seed)
    i = b.let(East.value(0, IntegerType))

    def loop(b2):
        b2.assign(acc, East.Integer.remainder(acc * 31 + i, East.value(1000003, IntegerType)))
        b2.assign(i, i + 1)

    b.while_(i < n, loop)
    return acc


def task_name(i: int) -> str:
    return f"t{i:05d}"


def chain(n: int, name: str = "chain", version: str = "1.0.0", start: int = 0) -> sdk.PackageDef:
    """inputs.x (default `start`) and n tasks, each adding 1 to the previous output: the last is start + n."""
    x = sdk.input("x", IntegerType, start)
    prev = x
    for i in range(n):
        prev = sdk.task(task_name(i), [prev], INCREMENT).output
    return sdk.package(name, version, x, *([prev] if n else []))


def fanout(n: int, name: str = "fanout", version: str = "1.0.0", start: int = 0) -> sdk.PackageDef:
    """inputs.x and n independent tasks, each x + 1, plus (for n >= 2) a task `sum` adding the first two outputs."""
    x = sdk.input("x", IntegerType, start)
    tasks = [sdk.task(task_name(i), [x], INCREMENT) for i in range(n)]
    items: list = [x, *tasks]
    if n >= 2:
        items.append(sdk.task("sum", [tasks[0].output, tasks[1].output], ADD))
    return sdk.package(name, version, *items)


def chain_zip(directory: Path, n: int, **kw) -> Path:
    path = Path(directory) / f"chain-{n}.zip"
    sdk.export(chain(n, **kw), path)
    return path


def fanout_zip(directory: Path, n: int, **kw) -> Path:
    path = Path(directory) / f"fanout-{n}.zip"
    sdk.export(fanout(n, **kw), path)
    return path


def diamond() -> sdk.PackageDef:
    """inputs.x (1) -> a (x + 1) -> b (a + 10) and c (a + 100) -> d (b + c): d is 114."""
    x = sdk.input("x", IntegerType, 1)

    def add(n: int):
        return East.function([IntegerType], IntegerType, lambda b, v: v + n)

    a = sdk.task("a", [x], add(1))
    b = sdk.task("b", [a.output], add(10))
    c = sdk.task("c", [a.output], add(100))
    return sdk.package("diamond", "1.0.0", sdk.task("d", [b.output, c.output], ADD))


def diamond_zip(directory: Path) -> Path:
    path = Path(directory) / "diamond.zip"
    sdk.export(diamond(), path)
    return path
