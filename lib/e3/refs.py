"""Refs and their history, through pygit2.

A ref (`refs/packages/NAME/VERSION`, `refs/workspaces/WS`,
`refs/tasks/WS/TASK`) points at a git commit whose tree mirrors the state it
records: each leaf is a small blob holding one object hash. So plain git
(`git --git-dir=.e3 log -p refs/workspaces/dev`) shows what changed when.
Updates are compare-and-swap and always reach the reflog.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Mapping

from e3.errors import BadRefName, NotFound, RefError, RefMoved

if TYPE_CHECKING:
    import pygit2

    from e3.repository import Repository

ZERO = "0" * 40
"""As OLD: the ref must not exist yet. As NEW: delete."""

Path = tuple[str, ...]
"""A path in a state tree, e.g. ('inputs', 'x')."""

_BAD_COMPONENT = re.compile(r"(^\.|\.lock$|\.\.|[\x00-\x20\x7f~^:?*\[\\]|@\{|^$)")


def check_ref_name(name: str) -> str:
    """git's ref-name rules, plus: e3 refs live under refs/."""
    if not name.startswith("refs/") or name.endswith("/") or name.endswith("."):
        raise BadRefName(f"invalid ref name {name!r}")
    for part in name.split("/"):
        if _BAD_COMPONENT.search(part):
            raise BadRefName(f"invalid ref name {name!r}")
    return name


def check_component(kind: str, text: str) -> str:
    """A single name that becomes one ref component (package, version, workspace, task)."""
    if "/" in text or _BAD_COMPONENT.search(text):
        raise BadRefName(f"invalid {kind} name {text!r}")
    return text


def signature() -> "pygit2.Signature":
    import pygit2

    name = os.environ.get("E3_AUTHOR_NAME") or os.environ.get("USER") or "e3"
    email = os.environ.get("E3_AUTHOR_EMAIL") or f"{name}@localhost"
    return pygit2.Signature(name, email, int(time.time()), 0)


def read(repo: "Repository", name: str) -> str | None:
    """The commit id a ref points at, or None if it does not exist."""
    check_ref_name(name)
    ref = repo.git.references.get(name)
    return None if ref is None else str(ref.target)


def update(repo: "Repository", name: str, new: str, old: str | None = None, message: str = "") -> None:
    """Point `name` at commit `new`; with `old`, only if the ref is still there (ZERO: absent)."""
    import pygit2

    check_ref_name(name)
    git = repo.git
    target = pygit2.Oid(hex=new)
    msg = message or f"update {name}"
    try:
        if old is None:
            git.create_reference_direct(name, target, True, message=msg)
        elif old == ZERO:
            git.create_reference_direct(name, target, False, message=msg)
        else:
            ref = git.references.get(name)
            if ref is None or str(ref.target) != old:
                raise RefMoved(_moved(name, old, None if ref is None else str(ref.target)))
            ref.set_target(target, msg)  # libgit2 re-checks the old value under the ref's lock
    except pygit2.AlreadyExistsError:
        raise RefMoved(f"ref {name} already exists") from None
    except pygit2.GitError as e:
        if "does not match" in str(e) or "modified" in str(e) or "locked" in str(e):
            raise RefMoved(f"ref {name} moved while updating it: {e}") from None
        raise RefError(f"cannot update {name}: {e}") from None


def delete(repo: "Repository", name: str, old: str | None = None) -> None:
    check_ref_name(name)
    ref = repo.git.references.get(name)
    if ref is None:
        raise NotFound(f"ref {name} does not exist")
    if old is not None and str(ref.target) != old:
        raise RefMoved(_moved(name, old, str(ref.target)))
    ref.delete()


def list_refs(repo: "Repository", prefix: str = "refs/") -> Iterator[tuple[str, str]]:
    """(name, commit id) of every ref under `prefix`, sorted by name."""
    git = repo.git
    for name in sorted(git.references):
        if name.startswith(prefix):
            ref = git.references.get(name)
            if ref is not None:
                yield name, str(ref.target)


def _moved(name: str, expected: str, actual: str | None) -> str:
    return f"ref {name} moved: expected {expected}, found {actual or 'no ref'}"


# ---------------------------------------------------------------- state trees


def write_state(repo: "Repository", entries: Mapping[Path, str], parent: str | None, message: str) -> str:
    """Record `entries` (path -> object hash) as a commit on top of `parent`; return its id."""
    import pygit2

    git = repo.git
    tree: dict = {}
    for path, value in entries.items():
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RefError(f"state path {'/'.join(path)} is inside a leaf")
        node[path[-1]] = value

    def build(node: dict) -> "pygit2.Oid":
        tb = git.TreeBuilder()
        for key in sorted(node):
            child = node[key]
            if isinstance(child, dict):
                tb.insert(key, build(child), pygit2.GIT_FILEMODE_TREE)
            else:
                tb.insert(key, git.create_blob((child + "\n").encode()), pygit2.GIT_FILEMODE_BLOB)
        return tb.write()

    sig = signature()
    parents = [pygit2.Oid(hex=parent)] if parent else []
    return str(git.create_commit(None, sig, sig, message, build(tree), parents))


def read_state(repo: "Repository", commit: str) -> dict[Path, str]:
    """The entries (path -> object hash) recorded by a commit."""
    import pygit2

    git = repo.git
    out: dict[Path, str] = {}

    def walk(tree: "pygit2.Tree", prefix: Path) -> None:
        for entry in tree:
            obj = git[entry.id]
            if entry.filemode == pygit2.GIT_FILEMODE_TREE:
                walk(obj, prefix + (entry.name,))
            else:
                out[prefix + (entry.name,)] = obj.data.decode().strip()

    walk(git[pygit2.Oid(hex=commit)].peel(pygit2.Tree), ())
    return out


@dataclass(frozen=True)
class Entry:
    """One commit in a ref's history."""

    commit: str
    message: str
    time: int
    author: str


def history(repo: "Repository", commit: str) -> Iterator[Entry]:
    """First-parent history from `commit` back to the root, newest first."""
    import pygit2

    git = repo.git
    c = git[pygit2.Oid(hex=commit)]
    while True:
        yield Entry(str(c.id), c.message.rstrip("\n"), c.commit_time, c.author.name)
        if not c.parents:
            return
        c = c.parents[0]
