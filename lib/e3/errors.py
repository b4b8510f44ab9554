"""Errors the library raises, each carrying the exit code the CLI reports.

Exit codes (listed in e3(1)): 0 ok; 1 a "no" from a yes/no question; 2 usage;
128 fatal; 130 interrupted. Library code raises these; e3.cli.command turns
them into one line on stderr.
"""

EXIT_OK = 0
EXIT_NO = 1
EXIT_USAGE = 2
EXIT_FATAL = 128
EXIT_INTERRUPTED = 130


class E3Error(Exception):
    """Base of every error a user may see; its message is one line, lower-case."""

    exit_code = EXIT_FATAL


class UsageError(E3Error):
    exit_code = EXIT_USAGE


class NotARepository(E3Error):
    pass


class RepositoryExists(E3Error):
    pass


class ObjectNotFound(E3Error):
    pass


class AmbiguousObject(E3Error):
    pass


class InvalidHash(E3Error):
    pass


class CorruptObject(E3Error):
    pass


class FormatError(E3Error):
    """Bytes or text that are not a valid encoding of a value of the given type."""


class TypeMismatch(E3Error):
    pass


class StorageError(E3Error):
    """The disk refused: permission, ENOSPC, a read-only filesystem."""


class RefError(E3Error):
    pass


class RefMoved(RefError):
    """A compare-and-swap found the ref somewhere other than expected."""


class BadRefName(RefError):
    pass


class NotFound(E3Error):
    """A named thing (package, workspace, dataset, task, execution) does not exist."""


class Conflict(E3Error):
    """The operation cannot proceed now: a lock is held, a run is going."""
