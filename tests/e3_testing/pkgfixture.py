"""A small package built with the SDK and imported with e3.repo.package.import_zip (in-process, fast).

Package `demo` (versions differ in their inputs): by default inputs a (Integer,
default 1), b (String, unassigned), c (Float, default 0.5); task `double`
reads a (a * 2), task `greet` reads b and double's output.
"""
from __future__ import annotations

from pathlib import Path

from e3 import east, sdk
from e3.repo import package
from e3.east import East
from e3.storage.repository import open_repository

INT = east.IntegerType
STR = east.StringType
FLOAT = east.FloatType

DOUBLE = East.function([INT], INT, lambda b, x: x * 2)
GREET = East.function([STR, INT], STR, lambda b, s, n: East.str(s, " ", n))


def make_package(path: Path, name: str = "demo", version: str = "1.0.0", inputs=None) -> str:
    """Import package NAME@VERSION into the repository at `path`; `inputs` maps name -> (type, default or None).

    The tasks need inputs a (Integer) and b (String); returns the package hash.
    """
    if inputs is None:
        inputs = {"a": (INT, 1), "b": (STR, None), "c": (FLOAT, 0.5)}
    declared = {n: sdk.input(n, t, d) for n, (t, d) in inputs.items()}
    items = list(declared.values())
    if "a" in declared and declared["a"].type is INT:
        double = sdk.task("double", [declared["a"]], DOUBLE)
        items.append(double)
        if "b" in declared and declared["b"].type is STR:
            items.append(sdk.task("greet", [declared["b"], double.output], GREET))
    zip_path = Path(path).parent / f"{name}-{version}.zip"
    sdk.export(sdk.package(name, version, *items), zip_path)
    return package.import_zip(open_repository(path), zip_path).package_hash
