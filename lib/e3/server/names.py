"""Checks on what a URL names, made before anything touches the disk.

A repository name becomes a directory under `--repos DIR`, and a dataset path a
walk through a workspace's tree: both come from the request line, so both are
checked here first. Rejected: `..` and `.` segments, absolute paths, encoded
slashes and backslashes (`%2F`, `%5C`, which a decoded path can no longer tell
from a separator), NULs and other control characters. A name that fails is a
400 with one line; nothing is created, read or written for it.
"""
from __future__ import annotations

import re

from e3.api.names import REPOSITORY_NAME
from e3.errors import UsageError

REPO_NAME = REPOSITORY_NAME
"""A served repository's name (e3.api.names): a plain directory name, never hidden, never `..`."""

_ENCODED_BAD = re.compile(rb"%(2f|5c|00)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadName(UsageError):
    """A repository name or dataset path from a URL that must not reach the disk."""


def check_raw_path(raw: bytes) -> None:
    """Refuse a request path carrying an encoded slash, backslash or NUL, or a dot segment."""
    if _ENCODED_BAD.search(raw):
        raise BadName("encoded '/', '\\' or NUL in the request path")
    for seg in raw.split(b"/"):
        if seg in (b".", b"..") or seg.lower() in (b"%2e", b"%2e%2e", b".%2e", b"%2e."):
            raise BadName("'.' or '..' in the request path")


def check_repo_name(name: str) -> str:
    """The name of a repository under `--repos`; refuses anything that is not one plain name."""
    if not REPO_NAME.fullmatch(name) or ".." in name:
        raise BadName(f"invalid repository name {name!r}")
    return name


def check_segment(seg: str) -> str:
    """One field name of a dataset path, as decoded from the URL."""
    if seg in ("", ".", "..") or "/" in seg or "\\" in seg or _CONTROL.search(seg):
        raise BadName(f"invalid dataset path segment {seg!r}")
    return seg


def dataset_path(text: str) -> tuple[str, ...]:
    """`inputs/x` (a URL's path after `datasets/`) -> ('inputs', 'x'), each segment checked."""
    if text.startswith("/"):
        raise BadName("absolute dataset path")
    parts = tuple(text.split("/"))
    if parts and parts[-1] == "":  # one trailing slash is harmless
        parts = parts[:-1]
    for p in parts:
        check_segment(p)
    return parts
