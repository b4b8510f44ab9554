"""The repository interface, and the one opener every command uses.

`open(target)` takes what the user typed (a directory holding `.e3`, or `.e3`
itself, or an `http(s)://host[:port]/repos/NAME` URL) and returns an
implementation of `Repository` (e3.api.interface). `create(target)` makes a
new repository first. `discover(explicit)` is the plumbing's way to find one:
`--repo`, then `$E3_DIR`, then upward from the current directory. `list_repositories(where)`
names those a server serves, or a directory holds.

The values the operations take and return (e3.api.values) are importable from
here too (`from e3.api import WorkspaceInfo`); they load on first use, so
importing e3.api stays cheap.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from e3.api.interface import DataflowRun, ObjectWriter, Repository

if TYPE_CHECKING:
    from e3.api.local import LocalRepository

__all__ = ["DataflowRun", "ObjectWriter", "Repository", "create", "discover", "is_remote", "list_repositories",
           "names_repository", "open"]


def is_remote(target: str | os.PathLike[str]) -> bool:
    """True if `target` names a repository behind a server (an http:// or https:// URL)."""
    from e3.storage.repository import URL_SCHEMES

    return isinstance(target, str) and target[:8].lower().startswith(URL_SCHEMES)


def open(target: str | os.PathLike[str]) -> Repository:  # noqa: A001 - e3.api.open(target) reads as meant
    """The repository `target` names: a local directory, or a server's `http(s)://HOST[:PORT]/repos/NAME`.
    Raises NotARepository (nothing there; for a URL, on the first operation)."""
    if is_remote(target):
        from e3.api.remote import RemoteRepository

        return RemoteRepository.open(str(target))
    from e3.api.local import LocalRepository

    return LocalRepository.open(target)


def create(target: str | os.PathLike[str]) -> Repository:
    """Make a new repository at `target` (a directory: `.e3` is made inside it) and open it.
    Raises RepositoryExists."""
    if is_remote(target):
        from e3.api.remote import RemoteRepository

        return RemoteRepository.create(str(target))
    from e3.api.local import LocalRepository

    return LocalRepository.create(target)


def list_repositories(where: str | os.PathLike[str]) -> list[str]:
    """The names of the repositories a server serves (`http(s)://HOST[:PORT]`) or a directory holds
    (each `DIR/NAME/.e3`), sorted; `open` takes `SERVER/repos/NAME` or `DIR/NAME`. Raises UsageError
    (a repository's URL, not a server's; not a directory), RemoteError."""
    if is_remote(where):
        from e3.api.remote import Server, parse_server_url

        server = Server(parse_server_url(str(where)))
        try:
            return server.repositories()
        finally:
            server.close()
    from e3.api.local import repositories_in

    return repositories_in(where)


def discover(explicit: str | None = None) -> Repository:
    """The repository a command names: `explicit` (its REPO or --repo), else `$E3_REPO`, else
    `$E3_DIR`, else the nearest directory upward from the current one that holds `.e3`.
    `explicit` "." searches upward from here too (a subdirectory of a repository is in it)."""
    target = explicit if explicit != "." else None
    if target is None and explicit is None:
        target = os.environ.get("E3_REPO") or os.environ.get("E3_DIR")
    if target is not None and is_remote(target):
        return open(target)
    from e3.api.local import LocalRepository

    return LocalRepository.discover(explicit)


def names_repository(target: str | os.PathLike[str]) -> bool:
    """Does `target` name a repository: a server's URL, or a directory holding `.e3` (or `.e3` itself)?
    Nothing is opened or asked: commands use it to tell a REPO argument from what follows it."""
    if is_remote(target):
        return True
    from e3.api.local import LocalRepository

    return LocalRepository.exists(target)


def __getattr__(name: str) -> Any:
    # The values (dataclasses) load on first use: plumbing that never builds one never pays for them.
    import importlib

    values = importlib.import_module("e3.api.values")
    if name.startswith("_") or not hasattr(values, name):
        raise AttributeError(f"module 'e3.api' has no attribute {name!r}")
    return getattr(values, name)
