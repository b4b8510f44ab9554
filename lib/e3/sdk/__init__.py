"""Authoring e3 packages from Python, in the words of the original TypeScript SDK.

    from e3 import sdk
    from e3.east import East, StringType

    name = sdk.input("name", StringType, "World")
    greet = sdk.task("greet", [name],
                     East.function([StringType], StringType, lambda b, n: East.str("Hello, ", n, "!")))
    pkg = sdk.package("hello", "1.0.0", greet)
    sdk.export(pkg, "hello.zip")

`input`, `task`, `custom_task`, `package` and `export` are the whole surface;
`build` gives the objects in memory (for tests and benchmarks). East types and
the `East` builder come from `e3.east`. See e3-sdk(7).
"""
from __future__ import annotations

import os
from typing import BinaryIO

from e3.sdk.definitions import DEFAULT_RUNNER, Dataset, Input, PackageDef, SdkError, Task, custom_task, input, package, task
from e3.sdk.build import BuiltPackage, build
from e3.sdk.shell import quote

__all__ = [
    "DEFAULT_RUNNER",
    "BuiltPackage",
    "Dataset",
    "Input",
    "PackageDef",
    "SdkError",
    "Task",
    "build",
    "custom_task",
    "export",
    "input",
    "package",
    "quote",
    "task",
]


def export(pkg: PackageDef | BuiltPackage, zip_path: "str | os.PathLike[str] | BinaryIO") -> BuiltPackage:
    """Build `pkg` (unless already built) and write it as a package zip (to a path, or into a
    writable binary file); return what was built."""
    from e3.repo.package_zip import write_package_zip

    built = pkg if isinstance(pkg, BuiltPackage) else build(pkg)
    write_package_zip(zip_path, built.name, built.version, built.package_hash, built.sorted_objects())
    return built
