"""Verifying a repository: every object re-hashed, strays and leftovers found.

`check(repo)` runs each pass in `PASSES` and returns a `Report` listing every
`Problem` found. A pass is a function `(repo, report, options) -> None` that
adds problems (and counts what it checked); other parts of e3 add passes
(connectivity of refs, execution records) by appending to `PASSES` or by
passing their own list, without touching the object passes here.

Objects are read with plain file I/O and hashlib, never the East runtime,
unless `decode=True` asks for every value to be decoded as well.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Callable

from e3.container import PREFIX_SIZE, header_problem
from e3.repository import Repository
from e3.store import SUFFIX, TMP_PREFIX

CORRUPT = "corrupt"
"""An object whose bytes do not hash to its name, are not Beast2, or cannot be read."""
MISNAMED = "misnamed"
"""A file among the objects that is named like neither an e3 object nor a git object."""
TEMP = "temp"
"""A temporary file no live writer holds: left behind by a crash or a kill."""
MISSING = "missing"
"""An object named by a ref, commit tree, execution record, queue entry or stored value, but absent."""
DANGLING = "dangling"
"""An e3 object nothing reaches: listed, but not a problem (git's `dangling`); gc removes it once old."""
INFO_KINDS = frozenset({DANGLING})

_E3_NAME = re.compile(r"[0-9a-f]{62}" + re.escape(SUFFIX))
_GIT_NAME = re.compile(r"[0-9a-f]{38}")
_BUCKET = re.compile(r"[0-9a-f]{2}")
_GIT_DIRS = ("info", "pack")
_SMALL = 1 << 16


@dataclass(frozen=True)
class Problem:
    kind: str
    path: str
    """Relative to the repository root (the `.e3` directory)."""
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.path}: {self.detail}"


@dataclass
class Options:
    decode: bool = False
    """Also decode every value with the East runtime (slower; catches bytes that hash right but never decoded)."""
    dangling: bool = False
    """List e3 objects nothing reaches (informational: they do not make the check fail)."""


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    objects: int = 0
    """e3 objects checked."""
    counts: dict[str, int] = field(default_factory=dict)
    """Other things checked, by name (passes added later count theirs here)."""

    @property
    def ok(self) -> bool:
        return all(p.kind in INFO_KINDS for p in self.problems)

    def add(self, kind: str, path: str, detail: str) -> None:
        self.problems.append(Problem(kind, path, detail))


Pass = Callable[[Repository, Report, Options], None]


def check(repo: Repository, options: Options | None = None, passes: list[Pass] | None = None) -> Report:
    """Run every pass over `repo`; never raises for what it finds, only for what stops it."""
    report = Report()
    for run_pass in PASSES if passes is None else passes:
        run_pass(repo, report, options or Options())
    report.problems.sort(key=lambda p: (p.path, p.kind))
    return report


# ---------------------------------------------------------------- passes


def check_objects(repo: Repository, report: Report, options: Options) -> None:
    """Re-hash every e3 object; report bytes that do not match their name and stray files."""
    objects_dir = repo.objects.objects_dir
    decode = _decoder() if options.decode else None
    try:
        buckets = sorted(os.scandir(objects_dir), key=lambda e: e.name)
    except FileNotFoundError:
        report.add(CORRUPT, "objects", "objects directory is missing")
        return
    buf = bytearray(_SMALL)
    for bucket in buckets:
        if bucket.name in _GIT_DIRS and bucket.is_dir():
            continue
        if not (_BUCKET.fullmatch(bucket.name) and bucket.is_dir()):
            report.add(MISNAMED, f"objects/{bucket.name}", "not an object directory")
            continue
        for entry in sorted(os.scandir(bucket.path), key=lambda e: e.name):
            name = entry.name
            rel = f"objects/{bucket.name}/{name}"
            if _E3_NAME.fullmatch(name):
                report.objects += 1
                problem = _check_object(entry.path, bucket.name + name[:62], buf, decode)
                if problem:
                    report.add(CORRUPT, rel, problem)
            elif _GIT_NAME.fullmatch(name):
                continue  # git's loose object: git's to verify
            elif name.startswith("tmp_obj_"):
                report.add(TEMP, rel, "git temporary object left behind")
            else:
                report.add(MISNAMED, rel, "not named like an object (<2 hex>/<62 hex>.beast2)")


def check_temp_files(repo: Repository, report: Report, options: Options) -> None:
    """Report temporary files that no live writer holds (a crash or kill left them)."""
    tmp_dir = repo.objects.tmp_dir
    try:
        entries = sorted(os.scandir(tmp_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for entry in entries:
        if _held_by_a_writer(entry.path):
            continue
        kind = "partial object" if entry.name.startswith(TMP_PREFIX) else "temporary file"
        try:
            size = entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue  # finished (renamed) while we looked
        report.add(TEMP, f"tmp/{entry.name}", f"{kind} left behind ({size} bytes)")


def check_connectivity(repo: Repository, report: Report, options: Options) -> None:
    """Every hash named by refs, history, records, the queue and stored values exists; list dangling objects."""
    from e3.reachability import fsck_pass

    fsck_pass(repo, report, list_dangling=options.dangling)


PASSES: list[Pass] = [check_objects, check_temp_files, check_connectivity]


# ---------------------------------------------------------------- helpers


def _check_object(path: str, name: str, buf: bytearray, decode: Callable[[bytes], str | None] | None) -> str | None:
    """Why the object file at `path` is not sound, or None."""
    try:
        with open(path, "rb", buffering=0) as f:
            n = f.readinto(buf)
            head = bytes(buf[:PREFIX_SIZE])
            if n < len(buf):  # the usual case: a small object, read whole with one call
                data = memoryview(buf)[:n]
                actual = hashlib.sha256(data).hexdigest()
            else:
                h = hashlib.sha256(buf)
                actual = hashlib.file_digest(f, lambda: h).hexdigest()
                data = None
    except OSError as e:
        return f"cannot read: {(e.strerror or str(e)).lower()}"
    if actual != name:
        return f"bytes hash to {actual}"
    problem = header_problem(head)
    if problem:
        return problem
    if decode is not None:
        with open(path, "rb") as f:
            return decode(f.read() if data is None else bytes(data))
    return None


def _decoder() -> Callable[[bytes], str | None]:
    from e3 import east
    from e3.errors import E3Error

    def decode(data: bytes) -> str | None:
        try:
            east.decode(data)
        except E3Error as e:
            return str(e)
        return None

    return decode


def _held_by_a_writer(path: str) -> bool:
    """True if some process holds a lock on the file: the store's writers lock their temp files."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops the lock we may have taken
    return False
