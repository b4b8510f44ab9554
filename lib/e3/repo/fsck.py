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

import hashlib
import os
import re
from typing import Callable, NamedTuple

from e3.container import header_problem
from e3.storage.repository import Repository
from e3.storage.objects import CHUNK, GIT_TMP_PREFIX, PACK_TMP_PREFIXES, SUFFIX, TMP_PREFIX
from e3.storage.files import held_by_a_writer

CORRUPT = "corrupt"
"""An object whose bytes do not hash to its name or cannot be read (with `decode`: or do not decode)."""
MISNAMED = "misnamed"
"""A file among the objects that is named like neither an e3 object nor a git object."""
TEMP = "temp"
"""A temporary file no live writer holds: left behind by a crash or a kill."""
MISSING = "missing"
"""An object named by a ref, commit tree, execution record, queue entry or stored value, but absent."""
DANGLING = "dangling"
"""An e3 object nothing reaches: listed, but not a problem (git's `dangling`); gc removes it once old."""
CACHE = "cache"
"""An entry of `.e3/cache/` (derived data, e3.repo.snapshot) whose checksum fails: never used; the
next run that needs it rebuilds it from the repository."""
INFO_KINDS = frozenset({DANGLING})
WARNING_KINDS = frozenset({TEMP, CACHE})
"""Listed, but not damage: leftovers of a writer that was killed (the next run or gc removes them),
and cache entries that are rebuilt rather than used."""

_E3_NAME = re.compile(r"[0-9a-f]{62}" + re.escape(SUFFIX))
_GIT_NAME = re.compile(r"[0-9a-f]{38}")
_BUCKET = re.compile(r"[0-9a-f]{2}")
_GIT_DIRS = ("info", "pack")
_SMALL = 1 << 16
PARALLEL_FROM = 4000
"""Objects from which checking in several processes repays starting them."""


# NamedTuples and a plain class, not dataclasses: importing dataclasses (and inspect) costs
# e3-fsck about a tenth of its time on a 10,000-object repository.


class Problem(NamedTuple):
    kind: str
    path: str
    """Relative to the repository root (the `.e3` directory)."""
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.path}: {self.detail}"


class Options(NamedTuple):
    decode: bool = False
    """Also decode every value with the East runtime (slower; catches bytes that hash right but never decoded)."""
    dangling: bool = False
    """List e3 objects nothing reaches (informational: they do not make the check fail)."""
    jobs: int = 0
    """Processes that check objects; 0: one per CPU (up to 8) from `PARALLEL_FROM` objects on, else one."""


class Report:
    """What `check` found, and what it checked."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.objects = 0
        """e3 objects checked."""
        self.counts: dict[str, int] = {}
        """Other things checked, by name (passes added later count theirs here)."""
        self.listed: set[str] | None = None
        """The e3 objects the object pass checked, so later passes need not list the store again."""

    @property
    def ok(self) -> bool:
        """No damage found: nothing but dangling objects and leftovers."""
        return all(p.kind in INFO_KINDS or p.kind in WARNING_KINDS for p in self.problems)

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.kind not in INFO_KINDS and p.kind not in WARNING_KINDS)

    @property
    def leftovers(self) -> int:
        return sum(1 for p in self.problems if p.kind == TEMP)

    @property
    def damaged_cache(self) -> int:
        return sum(1 for p in self.problems if p.kind == CACHE)

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
    try:
        buckets = list(os.scandir(objects_dir))
    except FileNotFoundError:
        report.add(CORRUPT, "objects", "objects directory is missing")
        return
    work: list[tuple[str, list[str]]] = []
    for bucket in buckets:
        if bucket.name in _GIT_DIRS and bucket.is_dir():
            continue
        if not (_BUCKET.fullmatch(bucket.name) and bucket.is_dir()):
            if bucket.name.startswith(GIT_TMP_PREFIX) and bucket.is_file():
                # libgit2 writes a loose object to objects/tmp_object_git2_* and renames it: a kill leaves it.
                report.add(TEMP, f"objects/{bucket.name}", "git temporary object left behind")
            else:
                report.add(MISNAMED, f"objects/{bucket.name}", "not an object directory")
            continue
        work.append((bucket.path, os.listdir(bucket.path)))
    total = sum(len(names) for _, names in work)
    jobs = options.jobs or (min(os.cpu_count() or 1, 8) if total >= PARALLEL_FROM else 1)
    if jobs > 1 and total > 1:
        shares: list[list[tuple[str, list[str]]]] = [[] for _ in range(jobs)]
        for i, item in enumerate(sorted(work, key=lambda w: -len(w[1]))):
            shares[i % jobs].append(item)
        results = _forked(_check_buckets, [(share, options.decode) for share in shares])
    else:
        results = [_check_buckets(work, options.decode)]
    report.listed = set()
    for checked, problems in results:
        report.objects += len(checked)
        report.listed.update(checked)
        report.problems.extend(Problem(*p) for p in problems)


def check_temp_files(repo: Repository, report: Report, options: Options) -> None:
    """Report temporary files that no live writer holds (a crash or kill left them)."""
    tmp_dir = repo.objects.tmp_dir
    try:
        entries = sorted(os.scandir(tmp_dir), key=lambda e: e.name)
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if held_by_a_writer(entry.path):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if _live_scratch(entry.name):
                    continue
                report.add(TEMP, f"tmp/{entry.name}", "scratch directory of a spawned task left behind")
                continue
            size = entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue  # finished (renamed) while we looked
        kind = "partial object" if entry.name.startswith(TMP_PREFIX) else "temporary file"
        report.add(TEMP, f"tmp/{entry.name}", f"{kind} left behind ({size} bytes)")
    _check_pack_temp_files(repo, report)


def _live_scratch(name: str) -> bool:
    """A `run-<pid>-…` scratch directory whose process lives (e3.exec.invocation.sweep_scratch's rule)."""
    parts = name.split("-")
    if parts[0] != "run" or len(parts) < 2 or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def check_cache(repo: Repository, report: Report, options: Options) -> None:
    """Report cache entries whose checksum fails (a power loss may leave one empty; a disk may flip a bit)."""
    from e3.repo.snapshot import decode_entry

    top = repo.path("cache")
    try:
        kinds = sorted(e.name for e in os.scandir(top) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return
    checked = 0
    for kind in kinds:
        try:
            names = sorted(n for n in os.listdir(os.path.join(top, kind)) if n.endswith(".cbor"))
        except FileNotFoundError:
            continue
        for n in names:
            try:
                with open(os.path.join(top, kind, n), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            checked += 1
            if decode_entry(data) is None:
                report.add(CACHE, f"cache/{kind}/{n}", "damaged: its checksum does not match (never used; rebuilt when next needed)")
    report.counts["cache entries"] = report.counts.get("cache entries", 0) + checked


PACK_TMP_AGE = 60.0
"""Seconds after which a temporary file in objects/pack/ that no e3 writer holds counts as left behind:
git repack (run by e3 repo gc) writes its own there without flock."""


def _check_pack_temp_files(repo: Repository, report: Report) -> None:
    import time

    pack_dir = os.path.join(repo.objects.objects_dir, "pack")
    try:
        entries = sorted(os.scandir(pack_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(PACK_TMP_PREFIXES) or held_by_a_writer(entry.path):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if now - st.st_mtime >= PACK_TMP_AGE:
            report.add(TEMP, f"objects/pack/{entry.name}", f"temporary pack file left behind ({st.st_size} bytes)")


def check_connectivity(repo: Repository, report: Report, options: Options) -> None:
    """Every hash named by refs, history, records, the queue and stored values exists; list dangling objects."""
    from e3.repo.reachability import fsck_pass

    fsck_pass(repo, report, list_dangling=options.dangling)


def check_packs(repo: Repository, report: Report, options: Options) -> None:
    """Every git pack whole (its checksums), and in a damaged one, each object libgit2 cannot read.

    The connectivity walk has reported those it reached (with who names them); this
    pass adds the pack itself and the objects in it that nothing reached.
    """
    from e3.storage import git_pack

    pack_dir = os.path.join(repo.objects.objects_dir, "pack")
    names = git_pack.pack_names(pack_dir)
    report.counts["packs"] = report.counts.get("packs", 0) + len(names)
    reported = {p.path for p in report.problems}
    for name in sorted(names):
        why = git_pack.verify_pack(pack_dir, name)
        if why is None:
            continue
        report.add(CORRUPT, f"objects/pack/{name}.pack", why)
        try:
            entries = git_pack.read_index(os.path.join(pack_dir, name + ".idx"))
        except (OSError, git_pack.PackError):
            continue
        import pygit2

        from e3.repo.reachability import unreadable_git_object

        odb = repo.git.odb
        for raw, _, _ in entries:
            oid = raw.hex()
            path = f"objects/{oid[:2]}/{oid[2:]}"
            if path in reported:
                continue
            try:
                odb.read(pygit2.Oid(raw=raw))
            except pygit2.GitError as e:
                report.add(CORRUPT, path, f"git object is unreadable ({unreadable_git_object(repo, oid, e)})")
            except (KeyError, ValueError):
                continue


PASSES: list[Pass] = [check_objects, check_temp_files, check_connectivity, check_packs, check_cache]


# ---------------------------------------------------------------- helpers


def _forked(fn: Callable, calls: list[tuple]) -> list:
    """`[fn(*args) for args in calls]`, the first in this process and the others in forked children.

    The per-object work is mostly Python, so processes, not threads. A bare
    fork and a pipe per child cost about a millisecond, where a
    multiprocessing pool costs a hundred. Results travel with marshal (built
    in, so nothing to import), which takes plain data: strings, numbers,
    tuples and lists.
    """
    import marshal

    children = []
    for args in calls[1:]:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send the result (or the error), and leave at once
            os.close(read_fd)
            code = 0
            try:
                payload = marshal.dumps((True, fn(*args)))
            except BaseException as e:  # noqa: BLE001 - handed to the parent, which raises it
                payload, code = marshal.dumps((False, f"{type(e).__name__}: {e}")), 1
            with open(write_fd, "wb") as out:
                out.write(payload)
            os._exit(code)
        os.close(write_fd)
        children.append((pid, read_fd))
    results = [fn(*calls[0])]
    failure = None
    for pid, read_fd in children:
        with open(read_fd, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        ok, value = marshal.loads(data) if data else (False, "worker died")
        if ok:
            results.append(value)
        else:
            failure = value
    if failure is not None:
        raise RuntimeError(f"fsck worker failed: {failure}")
    return results


def _check_buckets(work: list[tuple[str, list[str]]], decode_values: bool) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Check the named entries of some buckets; return the objects checked and what is wrong (Problem fields)."""
    decode = _decoder() if decode_values else None
    checked: list[str] = []
    problems: list[tuple[str, str, str]] = []
    for path, names in work:
        bucket = os.path.basename(path)
        for name in names:
            if _E3_NAME.fullmatch(name):
                obj = bucket + name[:62]
                checked.append(obj)
                problem = _check_object(f"{path}/{name}", obj, decode)
                if problem:
                    problems.append((CORRUPT, f"objects/{bucket}/{name}", problem))
            elif _GIT_NAME.fullmatch(name):
                continue  # git's loose object: git's to verify
            elif name.startswith("tmp_obj_"):
                problems.append((TEMP, f"objects/{bucket}/{name}", "git temporary object left behind"))
            else:
                problems.append((MISNAMED, f"objects/{bucket}/{name}", "not named like an object (<2 hex>/<62 hex>.beast2)"))
    return checked, problems


def _check_object(path: str, name: str, decode: Callable[[bytes], str | None] | None) -> str | None:
    """Why the object file at `path` is not sound, or None."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            data = os.read(fd, _SMALL)
            h = hashlib.sha256(data)
            if len(data) == _SMALL:  # a large object: stream the rest through the hash
                while chunk := os.read(fd, CHUNK):
                    h.update(chunk)
        finally:
            os.close(fd)
    except OSError as e:
        return f"cannot read: {(e.strerror or str(e)).lower()}"
    actual = h.hexdigest()
    if actual != name:
        return f"bytes hash to {actual}"
    if decode is not None:
        # Only on request: the store holds bytes as they came (a custom task's output may be anything).
        problem = header_problem(data)
        if problem:
            return problem
        with open(path, "rb") as f:
            return decode(f.read())
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

