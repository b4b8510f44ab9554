"""Which repository a command line names: the frame's (e3.cli._command) and completion's (e3.cli._complete).

Both need these two, and the frame loads completion only when the shell asks; so
they live below both, and neither of the two imports the other back.
"""
from __future__ import annotations


def names_repository(target: str) -> bool:
    """Does this word name a repository (rather than what the command takes after one)?"""
    if target == "." or "://" in target:
        return True
    from e3 import api

    return api.names_repository(target)


def open_repository(target: str | None):  # noqa: ANN201 - an e3.api.Repository
    """The repository a command named (see e3.cli._command.add_repository), opened through the interface."""
    from e3 import api

    return api.discover(target)
