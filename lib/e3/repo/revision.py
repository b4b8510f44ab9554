"""Names for things in a repository, resolved to hashes (the grammar of e3-rev-parse).

    REVISION  := BASE [ "@{" N "}" ] ( "~" [N] | "^" [N] )*
    BASE      := refs/FULL/NAME          a ref, exactly
               | NAME@VERSION            refs/packages/NAME/VERSION
               | NAME                    refs/workspaces/NAME, else refs/NAME
               | HEX                     a commit (40 hex) or e3 object (64 hex), or a unique prefix (4+)
    DATASET   := REVISION "." FIELD ( "." FIELD )*     the value at that path of a workspace state

`@{N}` is the ref's value N updates ago (its reflog), `~N` the N-th
first-parent ancestor, `^N` the N-th parent. `dev.inputs.x` reads the leaf
`inputs/x` of the workspace commit (see e3-repository(5)); it works on any
revision of the workspace, so `dev~3.tasks.t.output` is that output three
changes ago. Names are tried as refs before hex, like git, so a workspace
called `beef` wins over an object prefix `beef`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from e3.storage import refs
from e3.errors import AmbiguousObject, E3Error, InvalidHash, NotFound, ObjectNotFound, RefError, UsageError

if TYPE_CHECKING:
    from e3.storage.repository import Repository

_SPLIT = re.compile(r"^(?P<base>[^~^]*?)(?P<reflog>@\{(?P<n>\d+)\})?(?P<walk>(?:[~^]\d*)*)$")
_STEP = re.compile(r"([~^])(\d*)")
_HEX = re.compile(r"[0-9a-f]{4,64}")


@dataclass(frozen=True)
class Resolved:
    """What a name resolved to.

    kind: 'commit' (a git commit, 40 hex), 'object' (an e3 value, 64 hex), or 'tree'/'blob' (git's).
    ref: the full ref name the revision started from, if any.
    """

    hash: str
    kind: str
    ref: str | None = None


def resolve(repo: "Repository", text: str) -> Resolved:
    """Resolve a revision or dataset path; raise NotFound (or a more precise E3Error) if it names nothing."""
    if not text or any(c in text for c in "\n\r\0"):
        raise UsageError(f"invalid revision {text!r}")
    try:
        return resolve_revision(repo, text)
    except NotFound as first:
        if "." not in text:
            raise
        try:
            return _resolve_dataset(repo, text)
        except _NotADatasetPath:
            raise first from None


def resolve_commit(repo: "Repository", text: str) -> str:
    """A revision that must name a commit (for ref updates)."""
    r = resolve_revision(repo, text)
    if r.kind != "commit":
        what = "an e3 object" if r.kind == "object" else f"a git {r.kind}"
        raise RefError(f"{text} names {what}, not a commit")
    return r.hash


def resolve_revision(repo: "Repository", text: str) -> Resolved:
    m = _SPLIT.match(text)
    if not m or not m["base"]:
        raise NotFound(f"unknown revision {text!r}")
    base = _resolve_base(repo, m["base"], text)
    if m["reflog"]:
        if base.ref is None:
            raise NotFound(f"unknown revision {text!r}: @{{N}} needs a ref, not a hash")
        base = Resolved(_reflog_at(repo, base.ref, int(m["n"])), "commit", base.ref)
    for op, digits in _STEP.findall(m["walk"]):
        if base.kind != "commit":
            raise NotFound(f"unknown revision {text!r}: {op} applies to commits only")
        n = int(digits) if digits else 1
        base = Resolved(_walk(repo, base.hash, op, n, text), "commit", base.ref)
    return base


def full_ref_candidates(name: str) -> list[str]:
    """The ref names a short NAME may mean, in the order they are tried."""
    if name.startswith("refs/"):
        return [name]
    if "@" in name:
        pkg, _, version = name.partition("@")
        return [f"refs/packages/{pkg}/{version}"]
    return [f"refs/workspaces/{name}", f"refs/{name}"]


def _resolve_base(repo: "Repository", base: str, text: str) -> Resolved:
    if refs.COMMIT_RE.fullmatch(base):  # a full id is an id (git's rule), found without pygit2 when loose
        kind = refs.git_object_type(repo, base)
        if kind is None:
            raise NotFound(f"unknown revision {text!r}")
        return Resolved(base, kind)
    for candidate in full_ref_candidates(base):
        try:
            value = refs.read(repo, candidate)
        except RefError:
            continue  # not a valid ref name in this reading; try the next one (or hex)
        if value is not None:
            return Resolved(value, "commit", candidate)
    if _HEX.fullmatch(base):
        return _resolve_hex(repo, base, text)
    raise NotFound(f"unknown revision {text!r}")


def _resolve_hex(repo: "Repository", hexname: str, text: str) -> Resolved:
    found: list[Resolved] = []
    if len(hexname) <= 40:
        commit = _git_lookup(repo, hexname)
        if commit is not None:
            found.append(commit)
    if len(hexname) != 40:
        try:
            found.append(Resolved(repo.objects.resolve(hexname), "object"))
        except ObjectNotFound:
            pass
        except (InvalidHash, AmbiguousObject) as e:
            raise type(e)(f"{text}: {e}") from None
    if not found:
        raise NotFound(f"unknown revision {text!r}")
    if len(found) > 1:
        raise AmbiguousObject(f"short name {hexname} is ambiguous: it matches commit {found[0].hash} and object {found[1].hash}")
    return found[0]


def _git_lookup(repo: "Repository", hexname: str) -> Resolved | None:
    import pygit2

    try:
        obj = repo.git.get(hexname)
    except ValueError as e:
        if "ambiguous" in str(e).lower():
            raise AmbiguousObject(f"short name {hexname} is ambiguous") from None
        return None
    except pygit2.GitError:
        return None
    if obj is None:
        return None
    return Resolved(str(obj.id), obj.type_str)  # trees and blobs are e3's plumbing, but have names too


def _reflog_at(repo: "Repository", ref: str, n: int) -> str:
    entries = refs.reflog(repo, ref)
    if n < len(entries):
        return entries[n].new
    if n == len(entries) and entries and entries[-1].old != refs.ZERO:
        return entries[-1].old
    raise NotFound(f"log for {ref} only has {len(entries)} entries")


def _walk(repo: "Repository", commit: str, op: str, n: int, text: str) -> str:
    import pygit2

    c = repo.git[pygit2.Oid(hex=commit)]
    if op == "^":
        if n == 0:
            return commit
        if n > len(c.parents):
            raise NotFound(f"unknown revision {text!r}: {commit[:12]} has {len(c.parents)} parent(s)")
        return str(c.parents[n - 1].id)
    for _ in range(n):
        if not c.parents:
            raise NotFound(f"unknown revision {text!r}: history of {commit[:12]} is shorter")
        c = c.parents[0]
    return str(c.id)


class _NotADatasetPath(Exception):
    pass


def _resolve_dataset(repo: "Repository", text: str) -> Resolved:
    from e3.model.paths import format_tree_path, parse_dataset_path

    try:
        head, path = parse_dataset_path(text)
    except E3Error:
        raise _NotADatasetPath() from None
    if not path:
        raise _NotADatasetPath()
    try:
        state = resolve_revision(repo, head)
    except NotFound as e:
        if str(e).startswith("unknown revision"):
            raise _NotADatasetPath() from None
        raise  # the workspace exists but e.g. its reflog is shorter: that is the news
    if state.kind != "commit":
        raise NotFound(f"{head} is an e3 object, not a workspace state: cannot read {format_tree_path(path)}")
    value = refs.read_leaf(repo, state.hash, path)
    if value is None:
        raise NotFound(_why_no_value(repo, state.hash, text, path))
    return Resolved(value, "object", state.ref)


def _why_no_value(repo: "Repository", commit: str, text: str, path: tuple[str, ...]) -> str:
    """Unassigned, or no such dataset in the deployed package, or not deployed: say which."""
    deployed = refs.read_leaf(repo, commit, (".workspace",))
    if deployed is None:
        return f"dataset {text} has no value: the workspace is not deployed in that state"
    try:
        from e3.east import decode
        from e3.model.package import load_package
        from e3.model.task import _decode_as
        from e3.model.types import WorkspaceStateType

        _, state = _decode_as(repo.objects.read(deployed), WorkspaceStateType, "workspace state", decode)
        package = load_package(repo.objects, str(state["packageHash"]))
        name = f"{state['packageName']}@{state['packageVersion']}"
    except (E3Error, KeyError):
        return f"dataset {text} has no value (unassigned, or no such dataset)"
    if path in package.datasets():
        return f"dataset {text} is unassigned"
    return f"no dataset {'.'.join(path)} in package {name}"
