"""The names users type for things in a repository, split as the interface takes them.

`NAME[@VERSION]` for a package, `PKG[@VERSION]/TASK` for a package's task,
a repository's name in a directory of repositories.
The rules are the library's (a name is one ref component); splitting them here
lets a command check what was typed before it opens anything, the same way
whichever implementation it then talks to. Dataset paths (`WS.a.b`) are
e3.model.paths'.
"""
from __future__ import annotations

import re

REPOSITORY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+=-]{0,127}")
"""A repository's name in a directory of them (`e3-api-server --repos DIR`, `e3 repo list DIR`):
a plain directory name, never hidden, never `..`."""


def package_spec(text: str) -> tuple[str, str | None]:
    """'name@1.0.0' -> ('name', '1.0.0'); 'name' -> ('name', None). Raises UsageError / BadRefName."""
    from e3.repo.package import parse_spec

    return parse_spec(text)


def task_spec(text: str) -> tuple[str, str | None, str]:
    """'pkg/task' or 'pkg@1.0.0/task' -> (pkg, version or None, task). Raises UsageError / BadRefName."""
    from e3.exec.adhoc import parse_task_spec

    return parse_task_spec(text)
