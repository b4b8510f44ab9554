"""Building git trees and commits in Python, and writing a commit's new objects in one go.

State commits (workspaces, packages, task histories: see e3.storage.refs) are made of
blobs holding one hash, trees and a commit. `NewObjects` computes their bytes
and ids here, exactly as git and libgit2 do (so the ids are the ones pygit2's
TreeBuilder and create_commit would give), collects them, and writes them
together: as one pack (e3.storage.git_pack) when there are `PACK_FROM` or more, else as
loose objects (e3.storage.git_odb) and one syncfs(2), where a pack's two files and
two fsyncs would cost more than the few objects. Stored trees and commits are read
back through e3.storage.git_odb too, so making a commit loads no libgit2.

libgit2 looks for new packs when a lookup misses, so a pygit2 repository that
was opened before the pack appeared, in this process or another, finds its
objects.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, NamedTuple, Sequence

from e3.errors import RefError
from e3.storage import git_pack
from e3.storage.git_pack import BLOB, COMMIT, TREE, object_id, write_pack

if TYPE_CHECKING:
    from e3.storage.repository import Repository

BLOB_MODE = 0o100644
TREE_MODE = 0o40000

PACK_FROM = 8
"""New objects from which a commit's objects go into one pack instead of loose files. Measured with
bench/git_pack.py: a loose object costs 0.08-0.35 ms here as the shared disk varies, a durable pack
0.9-1.5 ms whatever its size; at 8 objects they are even on the fast disk, the pack 1.8x cheaper on
the slow one. Below it a commit (e3 set: 4 objects) stays loose and adds no pack."""
PACKS_MAX = 32
"""Packs from which the writer of a new one merges the small ones (see `consolidate`)."""
PACKS_LOCK = "packs"
"""`locks/packs.lock`: held by whoever removes packs (a consolidation, e3 repo gc's repack)."""

Entries = dict[bytes, tuple[int, bytes]]
"""A tree's entries: name -> (mode, raw 20-byte id)."""

_trees: dict[tuple[str, bytes], "TreeLayout"] = {}
"""(repository root, tree id) -> large trees recently written or read: the next commit builds on them."""
_TREE_CACHE_FROM = 32
_TREE_CACHE_MAX = 64
_TREE_CACHE_ENTRIES = 400_000
"""The most entries the cache holds in all (~150 bytes each): every commit of a run makes a new
version of the workspace's `tasks` tree, and 64 versions of a 100,000-entry tree held ~1 GB;
the next commit needs only the newest."""
_cached_entries = 0
_commit_trees: dict[tuple[str, bytes], bytes] = {}
"""(repository root, commit id) -> its tree's id, for commits written here: the next commit builds on
its parent's tree without looking for the parent in every pack (it is in the newest, looked at last,
and each pack passed on the way is given an index of all its ids, e3.storage.git_odb)."""
_COMMITS_KEPT = 16


def tree_bytes(entries: Mapping[bytes, tuple[int, bytes]]) -> bytes:
    """A tree object's bytes. git orders entries by name as if each subtree's name ended in '/'."""
    return TreeLayout.of_entries(entries).data


def parse_tree(data: bytes) -> Entries:
    # TreeLayout.of_bytes reads the same rows; a reader that only walks a tree (tree_leaves) needs
    # no offsets, and building them cost up to twice as long on a 100,000-entry tree.
    out: Entries = {}
    i, end = 0, len(data)
    while i < end:
        space = data.index(b" ", i)
        nul = data.index(b"\0", space)
        out[data[space + 1 : nul]] = (int(data[i:space], 8), data[nul + 1 : nul + 21])
        i = nul + 21
    return out


class TreeLayout:
    """A tree's bytes and where each entry's id sits in them. A commit of e3 start changes the ids
    of a few of the 100,000 entries of a workspace's `tasks` tree: the new tree is then a copy of
    the old bytes with those ids written over, not a sort and format of every entry (~140 ms).
    Versions share the index; neither is ever changed."""

    __slots__ = ("data", "index")

    def __init__(self, data: bytes, index: dict[bytes, tuple[int, int]]):
        self.data = data
        self.index = index
        """name -> (mode, offset of its 20-byte id in `data`)."""

    @classmethod
    def of_entries(cls, entries: Entries) -> "TreeLayout":
        rows = sorted((name + b"/" if mode == TREE_MODE else name, name, mode, oid) for name, (mode, oid) in entries.items())
        parts: list[bytes] = []
        index: dict[bytes, tuple[int, int]] = {}
        at = 0
        for _, name, mode, oid in rows:
            head = b"%o %s\0" % (mode, name)
            at += len(head)
            index[name] = (mode, at)
            parts += (head, oid)
            at += 20
        return cls(b"".join(parts), index)

    @classmethod
    def of_bytes(cls, data: bytes) -> "TreeLayout":
        index: dict[bytes, tuple[int, int]] = {}
        i, end = 0, len(data)
        while i < end:
            space = data.index(b" ", i)
            nul = data.index(b"\0", space)
            index[data[space + 1 : nul]] = (int(data[i:space], 8), nul + 1)
            i = nul + 21
        return cls(data, index)

    def get(self, name: bytes) -> tuple[int, bytes] | None:
        found = self.index.get(name)
        if found is None:
            return None
        mode, at = found
        return mode, self.data[at : at + 20]

    @property
    def entries(self) -> Entries:
        data = self.data
        return {name: (mode, data[at : at + 20]) for name, (mode, at) in self.index.items()}

    def edited(self, edits: Mapping[bytes, "tuple[int, bytes] | None"]) -> "TreeLayout":
        """This tree with `edits` (name -> entry, None removes it) as a new layout."""
        index = self.index
        if all(e is not None and index.get(name, (None,))[0] == e[0] for name, e in edits.items()):
            data = bytearray(self.data)  # the same names and modes: only ids change, in place
            for name, (_, oid) in edits.items():
                at = index[name][1]
                data[at : at + 20] = oid
            return TreeLayout(bytes(data), index)
        entries = self.entries
        for name, entry in edits.items():
            if entry is None:
                entries.pop(name, None)
            else:
                entries[name] = entry
        return TreeLayout.of_entries(entries)


class Signature(NamedTuple):
    """Who made a commit, and when (e3.storage.refs.signature gives e3's)."""

    name: str
    email: str
    time: int
    offset: int
    """Minutes east of UTC."""


def signature_bytes(sig: Signature) -> bytes:
    """`Name <email> time +hhmm`, as libgit2 writes a signature (refs.signature trims as it does)."""
    offset = sig.offset
    sign = "-" if offset < 0 else "+"
    offset = abs(offset)
    return f"{sig.name} <{sig.email}> {sig.time} {sign}{offset // 60:02d}{offset % 60:02d}".encode()


def commit_bytes(tree: bytes, parents: Sequence[bytes], author: Signature, committer: Signature, message: str) -> bytes:
    """A commit object's bytes, as libgit2's git_commit_create writes them (no encoding header, message as is)."""
    lines = [b"tree " + tree.hex().encode()]
    lines += [b"parent " + p.hex().encode() for p in parents]
    lines.append(b"author " + signature_bytes(author))
    lines.append(b"committer " + signature_bytes(committer))
    return b"\n".join(lines) + b"\n\n" + message.encode()


def read_object(repo: "Repository", oid: bytes) -> tuple[int, bytes]:
    """(pack type number, bytes) of a stored git object: read here when e3 wrote it, by libgit2
    otherwise (a pack with deltas, an object that is damaged or absent: KeyError when absent)."""
    found = repo.git_odb.read(oid)
    if found is not None:
        return found
    import pygit2

    obj = repo.git[pygit2.Oid(raw=oid)]
    return int(obj.type), obj.read_raw()


def read_tree(repo: "Repository", oid: bytes) -> Entries:
    return parse_tree(_tree_data(repo, oid))


def _tree_data(repo: "Repository", oid: bytes) -> bytes:
    kind, data = read_object(repo, oid)
    if kind != TREE:
        raise ValueError(f"git object {oid.hex()} is not a tree")
    return data


def commit_tree_id(repo: "Repository", commit: str) -> bytes:
    """The raw id of the tree a commit records."""
    kind, data = read_object(repo, bytes.fromhex(commit))
    if kind != COMMIT or not data.startswith(b"tree ") or data[45:46] != b"\n":
        raise RefError(f"git object {commit} is not a commit")
    return bytes.fromhex(data[5:45].decode("ascii"))


def tree_leaves(repo: "Repository", commit: str, blobs: dict[bytes, str] | None = None) -> dict[tuple[str, ...], str]:
    """Every leaf (path -> the object hash its blob holds) of a state commit's tree. `blobs`
    (raw blob id -> its text), when given, is read before a blob and filled after."""
    out: dict[tuple[str, ...], str] = {}

    def walk(oid: bytes, prefix: tuple[str, ...]) -> None:
        for name, (mode, child) in read_tree(repo, oid).items():
            path = prefix + (name.decode(),)
            if mode == TREE_MODE:
                walk(child, path)
                continue
            text = blobs.get(child) if blobs is not None else None
            if text is None:
                text = read_object(repo, child)[1].decode().strip()
                if blobs is not None:
                    blobs[child] = text
            out[path] = text

    walk(commit_tree_id(repo, commit), ())
    return out


class NewObjects:
    """The objects of one commit being built; `write` stores them all."""

    def __init__(self, repo: "Repository"):
        self.repo = repo
        self.objects: dict[bytes, tuple[int, bytes]] = {}
        self._cache_root = str(repo.root)

    def add(self, kind: int, data: bytes) -> bytes:
        """Add an object (git's pack type number and its bytes); return its raw id."""
        oid = object_id(kind, data)
        self.objects.setdefault(oid, (kind, data))
        return oid

    def add_tree(self, entries: Entries) -> bytes:
        return self._add_layout(TreeLayout.of_entries(entries))

    def edit_tree(self, base: bytes | None, edits: Mapping[bytes, "tuple[int, bytes] | None"]) -> bytes | None:
        """Add the tree `base` (None: an empty one) with `edits` (name -> (mode, raw id), None
        removes the name); its raw id, or None when no entry is left."""
        if base is None:
            entries = {name: e for name, e in edits.items() if e is not None}
            return self.add_tree(entries) if entries else None
        layout = self.layout(base).edited(edits)
        return self._add_layout(layout) if layout.index else None

    def _add_layout(self, layout: TreeLayout) -> bytes:
        oid = self.add(TREE, layout.data)
        if len(layout.index) >= _TREE_CACHE_FROM:
            _remember(self._cache_root, oid, layout)
        return oid

    def layout(self, oid: bytes) -> TreeLayout:
        """A tree, new or stored, to read or to edit (`TreeLayout.edited`); not to change."""
        hit = _trees.get((self._cache_root, oid))
        if hit is not None:
            return hit
        new = self.objects.get(oid)
        if new is not None:
            return TreeLayout.of_bytes(new[1])
        layout = TreeLayout.of_bytes(_tree_data(self.repo, oid))
        if len(layout.index) >= _TREE_CACHE_FROM:
            _remember(self._cache_root, oid, layout)
        return layout

    def tree(self, oid: bytes) -> Entries:
        """The entries of a tree, new or stored, as a dict the caller may change."""
        return self.layout(oid).entries

    def commit_tree(self, commit: str) -> bytes:
        """The raw tree id of a stored commit."""
        found = _commit_trees.get((self._cache_root, bytes.fromhex(commit)))
        return found if found is not None else commit_tree_id(self.repo, commit)

    def build_tree(self, leaves: Mapping[tuple[str, ...], str]) -> bytes:
        """A whole tree of leaves (path -> object hash, each stored as a blob `<hash>\\n`); return its id."""
        root: dict = {}
        for path, value in leaves.items():
            node = root
            for part in path[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise RefError(f"state path {'/'.join(path)} is inside a leaf")
            if isinstance(node.get(path[-1]), dict):
                raise RefError(f"state path {'/'.join(path)} holds other leaves")
            node[path[-1]] = value

        def build(node: dict) -> bytes:
            entries: Entries = {}
            for name, child in node.items():
                if isinstance(child, dict):
                    entries[name.encode()] = (TREE_MODE, build(child))
                else:
                    entries[name.encode()] = (BLOB_MODE, self.add(BLOB, (child + "\n").encode()))
            return self.add_tree(entries)

        return build(root)

    def write(self, durable: bool = True) -> None:
        """Store every object: one pack from PACK_FROM objects on, else loose objects through libgit2."""
        if not self.objects:
            return
        if len(self.objects) >= PACK_FROM:
            # Commits first, then trees, then blobs: git's order, so a history walk reads the pack's start.
            ordered = sorted(self.objects.items(), key=lambda item: item[1][0])
            pack_dir = os.path.join(self.repo.objects.objects_dir, "pack")
            write_pack(pack_dir, [(k, oid, d) for oid, (k, d) in ordered], durable)
            if len(git_pack.pack_names(pack_dir)) >= PACKS_MAX:
                consolidate(self.repo)
        else:
            odb = self.repo.git_odb
            for kind, data in self.objects.values():
                odb.write_loose(kind, data)
            if durable:
                # Loose objects are written without fsync: one syncfs makes them durable before
                # a ref names them, or a power loss could leave a ref to a commit that is gone.
                self.repo.objects.sync()
        self._remember_commits()
        self.objects.clear()

    def _remember_commits(self) -> None:
        """Keep each stored commit's tree id, and its tree however small (see `_commit_trees`)."""
        for oid, (kind, data) in self.objects.items():
            if kind != COMMIT or not data.startswith(b"tree "):
                continue
            tree = bytes.fromhex(data[5:45].decode("ascii"))
            while len(_commit_trees) >= _COMMITS_KEPT:
                del _commit_trees[next(iter(_commit_trees))]
            _commit_trees[(self._cache_root, oid)] = tree
            new = self.objects.get(tree)
            if new is not None and new[0] == TREE:
                _remember(self._cache_root, tree, TreeLayout.of_bytes(new[1]))


def _remember(root: str, oid: bytes, layout: TreeLayout) -> None:
    global _cached_entries
    key = (root, oid)
    if key in _trees:
        return
    while _trees and (len(_trees) >= _TREE_CACHE_MAX or _cached_entries + len(layout.index) > _TREE_CACHE_ENTRIES):
        _cached_entries -= len(_trees.pop(next(iter(_trees))).index)  # the oldest: dicts keep insertion order
    _trees[key] = layout
    _cached_entries += len(layout.index)


# ---------------------------------------------------------------- keeping the number of packs small


def geometric_split(counts: Sequence[int], factor: int = 2) -> int:
    """How many of the packs (object counts, ascending) to merge so the rest grow by `factor` each (git's --geometric).

    Merging only the small end keeps the number of packs logarithmic in the
    number of objects while each object is copied O(log n) times: a merge never
    rewrites a pack that is large next to the ones below it.
    """
    i = len(counts) - 1
    while i > 0 and counts[i] >= factor * counts[i - 1]:
        i -= 1
    split = i + 1 if i > 0 else 0
    total = sum(counts[:split])
    while split < len(counts) and counts[split] < factor * total:
        total += counts[split]
        split += 1
    return split


def consolidate(repo: "Repository", durable: bool = True) -> list[str]:
    """Merge the smallest of e3's packs into one (geometric, factor 2); return the names of the packs removed.

    Every flush of `e3 start` adds a pack, so without this a repository that
    is never collected would gather thousands, and every object lookup asks
    each pack's index. Only packs without deltas (e3's) are merged; git's packs
    from e3 repo gc are left alone. Skipped, not waited for, while another
    process consolidates or e3 repo gc repacks (`locks/packs.lock`). The merged
    pack is published before the old ones are removed, so every object stays
    readable throughout; libgit2 and git look again when a pack they knew is
    gone.
    """
    from e3.storage.locks import Lock, LockHeld

    pack_dir = os.path.join(repo.objects.objects_dir, "pack")
    try:
        lock = Lock(repo, PACKS_LOCK, "pack consolidation").acquire(wait=False)
    except LockHeld:
        return []
    try:
        sized = []
        for name in git_pack.pack_names(pack_dir):
            if os.path.exists(os.path.join(pack_dir, name + ".keep")):
                continue
            try:
                sized.append((git_pack.object_count(pack_dir, name), name))
            except (OSError, git_pack.PackError):
                continue
        sized.sort()
        split = geometric_split([n for n, _ in sized])
        if split < 2:
            return []
        new, merged = git_pack.merge_packs(pack_dir, [name for _, name in sized[:split]], durable)
        removed = [name for name in merged if name != new]
        for name in removed:
            git_pack.remove_pack(pack_dir, name)
        return removed
    finally:
        lock.release()
