"""Garbage collection: remove what nothing reaches, then pack git's objects.

1. Mark (e3.repo.reachability): refs, reflogs, all history, `tasks/`, the queue.
2. Sweep e3 objects: an object is removed only if it is unreachable AND its
   mtime is older than the grace period (default two weeks, git's
   `gc.pruneExpire`) AND older than the moment gc started. Writers freshen the
   mtime of an object they store again (e3.storage.objects), so an object a writer has
   just (re)written is never taken, whatever the grace period. Before deleting,
   the roots are walked again (cheaply: history already seen is skipped) to
   catch refs moved during the mark, and each object's mtime is checked again.
   As with git, `--prune=now` is only safe when nothing else writes: an object
   written before gc started and referenced only after the second walk would be
   lost. The grace period is what makes gc safe alongside writers.
3. Remove temporary files in `tmp/` and `objects/pack/` (a pack writer killed
   before its rename) older than the grace period and at least an hour, unless
   a writer still holds its flock on one (a long streaming write).
4. Pack git's own objects with git itself (`git pack-refs --all --prune`, then
   `git repack -d -l -A --unpack-unreachable=<grace>`, as `git gc` does) and
   prune loose git objects that are unreachable and past the grace period.
   e3 prunes those itself because `git prune` does not know e3's objects that
   share the `objects/` directory (it would complain about every one of them).
   Every git command runs with `gc.auto=0`, so git never starts a gc of its own.
   The repack holds `locks/packs.lock`, which a writer consolidating e3's small
   packs (e3.storage.git_objects.consolidate) also takes, so neither removes a pack the
   other reads.
   Without a `git` executable, step 4 packs nothing and says so.

Refuses to run while another gc holds `locks/gc.lock`, and (like git) refuses
to remove anything if the walk finds history or a package, workspace state or
execution record missing or unreadable: then it cannot know what those name.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from e3.errors import E3Error, StorageError, UsageError
from e3.storage.objects import PACK_TMP_PREFIXES
from e3.storage.files import sweep_files
from e3.repo.reachability import VALUE, Walker

if TYPE_CHECKING:
    from e3.storage.repository import Repository

DEFAULT_PRUNE = "2.weeks.ago"
TMP_MIN_AGE = 3600.0
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400, "year": 365 * 86400}
_GIT_LOOSE = re.compile(r"[0-9a-f]{38}")


class GcRefused(E3Error):
    """The walk found damage; nothing was removed."""


def parse_expiry(text: str, now: float | None = None) -> float | None:
    """A prune expiry as git writes it -> epoch seconds (objects older are removable); 'never' -> None.

    Accepts `now`, `never`, `N.unit[s][.ago]` or `N unit[s] [ago]` (second … year), and ISO dates.
    """
    now = time.time() if now is None else now
    t = text.strip().lower()
    if t == "now":
        return now
    if t == "never":
        return None
    m = re.fullmatch(r"(\d+)[. ]+(second|minute|hour|day|week|month|year)s?([. ]+ago)?", t)
    if m:
        return now - int(m[1]) * _UNITS[m[2]]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"invalid prune expiry {text!r} (try 'now', 'never', '2.weeks.ago' or a date)") from None
    if when.tzinfo is None:
        when = when.astimezone()  # a date without zone is local time, as in git
    return when.astimezone(timezone.utc).timestamp()


@dataclass
class GcReport:
    dry_run: bool
    reachable: int = 0
    removed: list[tuple[str, int]] = field(default_factory=list)
    """(hash, bytes) of e3 objects removed (or, in a dry run, that would be)."""
    kept_recent: int = 0
    """Unreachable objects kept because they are inside the grace period or newer than gc."""
    tmp_removed: int = 0
    git_loose_removed: int = 0
    git_packed: str = ""
    """What happened to git's objects, one line."""

    @property
    def removed_bytes(self) -> int:
        return sum(size for _, size in self.removed)


def gc(repo: "Repository", prune: str = DEFAULT_PRUNE, dry_run: bool = False, pack: bool = True) -> GcReport:
    from e3.storage.locks import Lock

    started = time.time()
    cutoff = parse_expiry(prune, started)
    lock = Lock(repo, "gc", "gc").acquire(wait=False)  # a second gc fails at once, naming the first
    try:
        return _gc(repo, started, cutoff, prune, dry_run, pack)
    finally:
        lock.release()


def _gc(repo: "Repository", started: float, cutoff: float | None, prune: str, dry_run: bool, pack: bool) -> GcReport:
    report = GcReport(dry_run)
    limit = None if cutoff is None else min(cutoff, started)
    _refuse_on_damaged_packs(repo)
    walker = Walker(repo)
    reach = walker.walk()
    _refuse_on_damage(reach.problems)

    candidates: list[tuple[str, int]] = []
    for h in repo.objects:
        if h in reach.objects:
            continue
        st = _stat(repo.objects.path(h))
        if st is None:
            continue
        if limit is not None and st.st_mtime < limit:
            candidates.append((h, st.st_size))
        else:
            report.kept_recent += 1
    if candidates:
        walker.walk()  # refs moved, records and queue entries added during the mark
        _refuse_on_damage(reach.problems)
    report.reachable = len(reach.objects)
    for h, size in candidates:
        if h in reach.objects:
            continue
        path = repo.objects.path(h)
        st = _stat(path)
        if st is None:
            continue
        if st.st_mtime >= limit:  # freshened by a writer since we looked
            report.kept_recent += 1
            continue
        if not dry_run:
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise StorageError(f"cannot remove {path}: {e.strerror or e}") from None
        report.removed.append((h, size))
    # Emptied fan-out directories (objects/ab/) stay: libgit2 makes an object's directory,
    # then renames its temporary file from objects/ into it, so removing an empty one
    # could fail a commit made meanwhile ("failed to rename lockfile").
    if limit is not None:
        tmp_limit = min(limit, started - TMP_MIN_AGE)
        report.tmp_removed = sweep_files(repo.path("tmp"), tmp_limit, lambda name: True, dry_run)
        report.tmp_removed += sweep_files(repo.path("objects", "pack"), tmp_limit, lambda name: name.startswith(PACK_TMP_PREFIXES), dry_run)
    if pack:
        report.git_packed, report.git_loose_removed = _git_upkeep(repo, reach.git, prune, limit, dry_run)
    return report


def _refuse_on_damage(problems) -> None:  # noqa: ANN001 - list of Problem
    serious = [p for p in problems if p.what != "object" and p.what != VALUE]
    if serious:
        more = f" (and {len(serious) - 1} more)" if len(serious) > 1 else ""
        raise GcRefused(f"refusing to collect garbage: {serious[0]}{more}; run e3-fsck; nothing was removed")


def _refuse_on_damaged_packs(repo: "Repository") -> None:
    """A damaged pack may hold history the walk cannot read, and git's repack would fail on it."""
    from e3.storage import git_pack

    pack_dir = repo.path("objects", "pack")
    damaged = [(name, why) for name in sorted(git_pack.pack_names(pack_dir)) if (why := git_pack.verify_pack(pack_dir, name))]
    if damaged:
        name, why = damaged[0]
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        raise GcRefused(f"refusing to collect garbage: objects/pack/{name}.pack is {why}{more}; run e3-fsck; nothing was removed")


def _stat(path) -> os.stat_result | None:  # noqa: ANN001 - a path
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _git_upkeep(repo: "Repository", reachable_git: set[str], prune: str, limit: float | None, dry_run: bool) -> tuple[str, int]:
    """Pack refs and git's objects with git; prune unreachable loose git objects. Returns (summary, pruned)."""
    loose = _loose_git_objects(repo)
    unreachable = [
        (oid, path) for oid, path in loose if oid not in reachable_git and limit is not None and _older(path, limit)
    ]
    if dry_run:
        return f"would prune {len(unreachable)} unreachable loose git objects", len(unreachable)
    git = shutil.which("git")
    summary = "git's objects not packed: no git executable on PATH"
    if git is not None:
        base = [git, f"--git-dir={repo.root}", "-c", "gc.auto=0", "-c", "core.logAllRefUpdates=always"]
        repack = ["repack", "-d", "-l", "-q"]
        if limit is None:
            repack.append("-A")
        elif prune.strip().lower() == "now":
            repack.append("-a")
        else:
            when = datetime.fromtimestamp(limit, timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000")
            repack += ["-A", f"--unpack-unreachable={when}"]
        from e3.storage.locks import Lock
        from e3.storage.git_objects import PACKS_LOCK

        # A writer's consolidation removes packs too: neither may delete a pack the other is reading.
        with Lock(repo, PACKS_LOCK, "gc"):
            for args in (["pack-refs", "--all", "--prune"], repack):
                proc = subprocess.run(base + args, capture_output=True, text=True)
                if proc.returncode != 0:
                    detail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
                    raise StorageError(f"git {args[0]} failed: {detail}")
        from e3.storage import refs

        refs._packed_cache.clear()
        summary = f"packed git's objects ({len(loose)} were loose)"
    pruned = 0
    for oid, path in unreachable:
        if _older(path, limit):  # not freshened meanwhile
            try:
                os.unlink(path)
                pruned += 1
            except FileNotFoundError:
                pass  # packed and pruned by repack, or gone already
    return summary, pruned


def _loose_git_objects(repo: "Repository") -> list[tuple[str, str]]:
    out = []
    try:
        buckets = list(os.scandir(repo.path("objects")))
    except FileNotFoundError:
        return out
    for b in buckets:
        if len(b.name) != 2 or not b.is_dir():
            continue
        with os.scandir(b.path) as entries:
            for e in entries:
                if len(e.name) == 38 and _GIT_LOOSE.fullmatch(e.name):
                    out.append((b.name + e.name, e.path))
    return out


def _older(path: str, limit: float | None) -> bool:
    if limit is None:
        return False
    st = _stat(path)
    return st is not None and st.st_mtime < limit
