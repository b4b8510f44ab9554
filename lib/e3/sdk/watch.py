"""Live development: a Python file that defines a package, deployed again whenever it changes.

The Python counterpart of the original engine's `e3 watch` (which bundles a
TypeScript file): the source is run as a script (not as `__main__`, so its
own command-line entry point stays quiet) and must leave one package
definition (`e3.sdk.package(...)`) in a global, preferably named `package`.
`e3 watch` builds it after each load, imports it through the repository
interface (replacing the same name@version if its content changed, which is
what editing a file in place means) and deploys it.
"""
from __future__ import annotations

import os
import runpy
import sys
import traceback

from e3.errors import E3Error, UsageError


class SourceError(E3Error):
    """The package source could not be loaded (syntax error, exception, no package in it)."""


def load_definition(source: str):
    """Run `source` and return the package definition it leaves behind."""
    from e3 import sdk

    path = os.path.abspath(source)
    if not os.path.isfile(path):
        raise UsageError(f"no such source file: {source}")
    added = os.path.dirname(path)
    sys.path.insert(0, added)
    try:
        scope = runpy.run_path(path, run_name="__e3_watch__")
    except SystemExit as e:
        raise SourceError(f"{source}: exited with status {e.code} while loading") from None
    except BaseException as e:  # the user's code: report where it broke, in one line
        if isinstance(e, KeyboardInterrupt):
            raise
        where = _user_frame(e, path)
        raise SourceError(f"{source}{where}: {type(e).__name__}: {e}") from None
    finally:
        try:
            sys.path.remove(added)
        except ValueError:
            pass
    candidates = [v for v in scope.values() if isinstance(v, sdk.PackageDef)]
    chosen = scope.get("package")
    if not isinstance(chosen, sdk.PackageDef):
        if len(candidates) != 1:
            what = "no package definition" if not candidates else f"{len(candidates)} package definitions"
            raise SourceError(f"{source}: found {what}; assign one to a global named `package`")
        chosen = candidates[0]
    return chosen


def _user_frame(e: BaseException, path: str) -> str:
    if isinstance(e, SyntaxError) and e.lineno:
        return f":{e.lineno}"
    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        if os.path.abspath(frame.filename) == path:
            return f":{frame.lineno}"
    return ""


def mtimes(paths: list[str]) -> tuple:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)
