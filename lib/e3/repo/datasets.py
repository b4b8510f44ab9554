"""Datasets by the user's path (`dev.inputs.x`, `dev.tasks.t.output`): list, get and set.

A workspace's package says which datasets exist and their types (its
structure); the workspace's newest commit says which hold a value. Setting
one type-checks the value against the dataset's type, stores its canonical
encoding (so a value has one hash whichever format it came in, and memoized
tasks see the same input), and commits through `e3.repo.workspace.set_dataset`.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from e3.repo import workspace
from e3.errors import DatasetNotFound, DatasetNotWritable, FormatError, TypeMismatch
from e3.model.paths import TreePath, format_tree_path, parse_dataset_path

if TYPE_CHECKING:
    from e3.storage.repository import Repository


@dataclass(frozen=True)
class Entry:
    """One row of a listing: a subtree or a dataset."""

    path: TreePath
    kind: str  # 'tree' | 'dataset'
    type: Any = None
    writable: bool = False
    hash: str | None = None
    status: str = "-"  # datasets: 'set' | 'unset' | 'null'

    @property
    def name(self) -> str:
        return self.path[-1] if self.path else ""


def locate(repo: "Repository", spec: str) -> tuple[workspace.WorkspaceView, TreePath]:
    """The deployed workspace and tree path named by `WS.a.b`."""
    ws, path = parse_dataset_path(spec)
    return workspace.require_deployed(workspace.read(repo, ws)), path


def shown(view: workspace.WorkspaceView, path: TreePath) -> str:
    return view.name + format_tree_path(path)


def list_entries(view: workspace.WorkspaceView, path: TreePath = (), recursive: bool = False) -> list[Entry]:
    """The children of the subtree at `path` (all descendants with `recursive`), trees before their contents.

    A dataset path lists that one dataset, like `ls FILE`.
    """
    workspace.require_deployed(view)
    node = view.package.structure
    for part in path:
        if not isinstance(node, dict) or part not in node:
            raise DatasetNotFound(f"path {shown(view, path)} does not exist", workspace=view.name, path=format_tree_path(path))
        node = node[part]
    out: list[Entry] = []

    def dataset(p: TreePath, spec) -> Entry:
        h = view.datasets.get(p)
        if h is None:
            status = "unset"
        elif h == _null_hash(spec.type):
            status = "null"
        else:
            status = "set"
        return Entry(p, "dataset", spec.type, spec.writable, h, status)

    def walk(n, prefix: TreePath) -> None:
        for name in sorted(n):
            child = n[name]
            p = prefix + (name,)
            if isinstance(child, dict):
                out.append(Entry(p, "tree"))
                if recursive:
                    walk(child, p)
            else:
                out.append(dataset(p, child))

    if isinstance(node, dict):
        walk(node, path)
    else:
        out.append(dataset(path, node))
    return out


def _null_hash(t: Any) -> str:
    return hashlib.sha256(workspace.null_value(t)).hexdigest()


def get(repo: "Repository", spec: str) -> tuple[Any, str]:
    """(type, object hash) of the dataset `WS.a.b`; an unassigned dataset is an error naming why."""
    return get_at(repo, *parse_dataset_path(spec))


def get_at(repo: "Repository", ws: str, path: TreePath) -> tuple[Any, str]:
    """(type, object hash) of the dataset at `path` in `ws`."""
    view = workspace.require_deployed(workspace.read(repo, ws))
    ds = workspace.dataset_spec(view, path)
    h = view.datasets.get(path)
    if h is None:
        where = dict(workspace=ws, path=format_tree_path(path))
        if len(path) >= 2 and path[0] == "tasks":
            raise DatasetNotFound(f"dataset {shown(view, path)} is unassigned (task {path[1]} has not produced it yet)", **where)
        raise DatasetNotFound(f"dataset {shown(view, path)} is unassigned", **where)
    return ds.type, h


def hash_at(repo: "Repository", ws: str, path: TreePath) -> str:
    """The object hash of the dataset at `path` in `ws`, as `get_at` gives it: from the cached
    tree of the workspace's commit when it holds the path (`workspace.dataset_hash`), so `e3 get
    -f beast2` loads no East runtime; anything else through `get_at` and its errors."""
    h = workspace.dataset_hash(repo, ws, path)
    return h if h is not None else get_at(repo, ws, path)[1]


def set_value(
    repo: "Repository",
    spec: str,
    data: "bytes | BinaryIO",
    fmt: str,
    type_spec: Any | None = None,
    *,
    force: bool = False,
) -> tuple[str, workspace.WorkspaceView]:
    """Set `WS.a.b` from bytes or a binary stream in format `fmt` (one of e3.formats.FORMATS); return
    (value hash, new view).

    The value must have exactly the dataset's type: a Beast2 header must name
    it, text is parsed with it, and `type_spec`, if given, must equal it.
    Task outputs and function IR are refused unless `force` (library callers only).
    Beast2 is read a piece at a time and never held whole (see `store_beast2`).
    """
    ws, path = parse_dataset_path(spec)
    return set_value_at(repo, ws, path, data, fmt, type_spec, force=force)


def set_value_at(
    repo: "Repository",
    ws: str,
    path: TreePath,
    data: "bytes | BinaryIO",
    fmt: str,
    type_spec: Any | None = None,
    *,
    force: bool = False,
) -> tuple[str, workspace.WorkspaceView]:
    """`set_value` for the dataset at `path` in `ws`."""
    if fmt == "beast2" and type_spec is None and not isinstance(data, (bytes, bytearray)) and _seekable(data):
        start = data.tell()
        done = _set_sketched(repo, ws, path, data, force)
        if done is not None:
            return done
        data.seek(start)
    from e3 import east, formats

    view = workspace.require_deployed(workspace.read(repo, ws))
    ds = workspace.dataset_spec(view, path)
    where = shown(view, path)
    if not ds.writable and not force:
        raise DatasetNotWritable(f"{where} is not writable (it is computed by a task)")
    if type_spec is not None and not east.type_equal(type_spec, ds.type):
        raise TypeMismatch(f"{where} has type {east.format_type(ds.type)}, not {east.format_type(type_spec)}")
    try:
        if fmt == "beast2":
            h = store_beast2(repo, io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data, ds.type)
        else:
            _, value = formats.load(data if isinstance(data, (bytes, bytearray)) else data.read(), fmt, ds.type)
            h = repo.objects.write(east.encode(value, ds.type))
    except (TypeMismatch, FormatError) as e:
        raise type(e)(f"cannot set {where}: {e}") from None
    new = workspace.set_dataset(repo, view.name, path, h, value_type=ds.type, force=force)
    return h, new


def _set_sketched(repo: "Repository", ws: str, path: TreePath, source: BinaryIO,
                  force: bool) -> tuple[str, workspace.WorkspaceView] | None:
    """`set_value_at` of a Beast2 file without the East runtime, or None (nothing stored) to do it
    with the runtime, which then also words any refusal.

    Loading the runtime costs more than reading a large value: when the package read without it
    (e3.model.canonical) gives the dataset a type whose values e3.beast2_stream checks without it
    (arrays of numbers, blobs, strings, structs of those), the value's header names that type,
    and its bytes are e3's canonical encoding, the value is stored as it is read and committed.
    Anything else, a value refused included, declines."""
    from e3 import beast2_stream

    view = workspace.read(repo, ws)
    spec = workspace.sketched_spec(view, path) if view.deployed else None
    if spec is None or not (spec.writable or force):
        return None
    want = spec.type.sketch()
    if want is None:
        return None
    try:
        with repo.objects.new_object() as new:
            checked = beast2_stream.check(source, tee=new.write, expect=want)
            if not checked.canonical:
                return None  # written again canonically, by the runtime
            h = new.commit()
    except (beast2_stream.Declined, FormatError, TypeMismatch):
        return None
    return h, workspace.set_dataset(repo, view.name, path, h, value_sketch=want, force=force)


def store_beast2(repo: "Repository", source: BinaryIO, t: Any) -> str:
    """Store the Beast2 value read from `source` (of type `t`) in its canonical encoding; return its hash.

    The value is read a piece at a time (e3.beast2_stream) and never held whole: bytes
    already canonical go to the store as they are read, checked on the way; any other
    encoding of the value (segments, deflate frames, an index: what `east-py run` writes)
    is written again canonically from a second reading. A stream that cannot seek (a
    pipe) is first written to the store's temporary file, which is then read back.
    """
    from e3 import beast2_stream

    store = repo.objects
    seekable = _seekable(source)
    with store.new_object() as new:
        if seekable:
            canonical = beast2_stream.check(source, t, tee=new.write).canonical
        else:
            while chunk := source.read(1 << 20):
                new.write(chunk)
            with new.reopen() as spooled:
                canonical = beast2_stream.check(spooled, t).canonical
        if canonical:
            return new.commit()
        with store.new_object() as again, (contextlib.nullcontext(source) if seekable else new.reopen()) as rest:
            beast2_stream.write_canonical(rest, t, again.write, lambda: tempfile.TemporaryFile(dir=store.tmp_dir))
            return again.commit()


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def unset(repo: "Repository", spec: str, *, force: bool = False) -> workspace.WorkspaceView:
    view, path = locate(repo, spec)
    return workspace.set_dataset(repo, view.name, path, None, force=force)
