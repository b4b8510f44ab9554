"""A small package written straight into a repository (store_package + a refs/packages ref).

Package `demo` (versions differ in their inputs): inputs a (Integer, default
1), b (String, unassigned), c (Float, default 0.5); task `double` reads a,
task `greet` reads b and double's output. Command IR objects are stand-ins:
these tests never run tasks.
"""
from __future__ import annotations

import sys
from pathlib import Path

from conftest import LIB

sys.path.insert(0, str(LIB))

from e3 import east, refs  # noqa: E402
from e3.model.package import UNASSIGNED, DatasetRef, DatasetSpec, Package, store_package  # noqa: E402
from e3.model.task import TaskObject, store_task  # noqa: E402
from e3.repository import open_repository  # noqa: E402

INT = east.IntegerType
STR = east.StringType
FLOAT = east.FloatType


def value(repo, v, t) -> str:
    return repo.objects.write(east.encode(v, t))


def make_package(path: Path, name: str = "demo", version: str = "1.0.0", inputs=None) -> str:
    """Write package NAME@VERSION; `inputs` maps input name -> (type, default or None). Returns its hash."""
    repo = open_repository(path)
    if inputs is None:
        inputs = {"a": (INT, 1), "b": (STR, None), "c": (FLOAT, 0.5)}
    ir = value(repo, "stand-in command ir", STR)
    double = store_task(repo.objects, TaskObject(ir, (("inputs", "a"),), ("tasks", "double", "output")))
    greet = store_task(
        repo.objects, TaskObject(ir, (("inputs", "b"), ("tasks", "double", "output")), ("tasks", "greet", "output"))
    )
    structure = {
        "inputs": {n: DatasetSpec(t, True) for n, (t, _) in inputs.items()},
        "tasks": {
            "double": {"output": DatasetSpec(INT, False)},
            "greet": {"output": DatasetSpec(STR, False)},
        },
    }
    initial = {("inputs", n): (UNASSIGNED if d is None else DatasetRef("value", value(repo, d, t))) for n, (t, d) in inputs.items()}
    initial[("tasks", "double", "output")] = UNASSIGNED
    initial[("tasks", "greet", "output")] = UNASSIGNED
    pkg = Package({"double": double, "greet": greet}, structure, initial)
    h = store_package(repo.objects, pkg)
    commit = refs.write_state(repo, {("package",): h}, None, f"import {name}@{version}")
    refs.update(repo, f"refs/packages/{name}/{version}", commit, message=f"import {name}@{version}")
    return h
