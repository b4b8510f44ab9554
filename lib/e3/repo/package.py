"""Packages in a repository: import a zip, export one, list, read and remove them.

A package NAME@VERSION is the ref `refs/packages/NAME/VERSION` pointing at a
commit whose tree has one leaf, `package`, holding the package object's hash.

Import is all or nothing: the whole zip is checked first (names, every
object's hash, the package object and every object it reaches: task objects,
their command IR, the initial dataset values and their types), then the
reachable objects and the ref's commit are written (one sync for all), then the ref is
created with compare-and-swap. A zip that fails any check leaves the
repository exactly as it was. Importing the same package again is a no-op; a
different package under an existing NAME@VERSION is refused.

A package named without a version resolves only when exactly one version is
imported (the original engine looked up a version called `latest`; we do
not copy that).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Iterator

from e3.storage import refs
from e3.errors import E3Error, FormatError, PackageExists, PackageInvalid, PackageNotFound, RefMoved, UsageError

if TYPE_CHECKING:
    from e3.model.package import Package
    from e3.model.task import TaskObject
    from e3.repo.package_zip import Stored, ZipContents
    from e3.storage.repository import Repository

PREFIX = "refs/packages/"
LEAF = ("package",)


# ---------------------------------------------------------------- names


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'name@1.0.0' -> ('name', '1.0.0'); 'name' -> ('name', None)."""
    name, sep, version = spec.rpartition("@")
    if not sep:
        name, version = spec, None
    if not name or version == "":
        raise UsageError(f"invalid package {spec!r} (expected NAME or NAME@VERSION)")
    refs.check_component("package", name)
    if version is not None:
        refs.check_component("version", version)
    return name, version


def ref_name(name: str, version: str) -> str:
    return f"{PREFIX}{refs.check_component('package', name)}/{refs.check_component('version', version)}"


def version_key(version: str) -> tuple:
    """Order versions as people read them: 1.10.0 after 1.9.0, 1.0.0-rc1 before 1.0.0."""
    main, _, pre = version.partition("-")
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.+]", main))
    return parts + ((1,) if not pre else (0, pre))


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class PackageRef:
    name: str
    version: str
    package_hash: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


def list_packages(repo: "Repository", name: str | None = None) -> list[PackageRef]:
    """Every imported package (or every version of `name`), by name then version."""
    prefix = PREFIX if name is None else f"{PREFIX}{refs.check_component('package', name)}/"
    out = []
    for ref, commit in refs.list_refs(repo, prefix):
        parts = ref[len(PREFIX) :].split("/")
        if len(parts) != 2:
            continue  # not ours: refs/packages/<name>/<version> only
        out.append(PackageRef(parts[0], parts[1], _leaf(repo, ref, commit)))
    return sorted(out, key=lambda p: (p.name, version_key(p.version)))


def resolve(repo: "Repository", name: str, version: str | None = None) -> PackageRef:
    """NAME@VERSION to its package object hash; without a version, the one version imported."""
    if version is None:
        found = list_packages(repo, name)
        if not found:
            raise PackageNotFound(f"package {name} not found", packageName=name, version=None)
        if len(found) > 1:
            listed = ", ".join(p.version for p in found)
            raise UsageError(f"package {name} has {len(found)} versions ({listed}); name one as {name}@VERSION")
        return found[0]
    ref = ref_name(name, version)
    commit = refs.read(repo, ref)
    if commit is None:
        known = [p.version for p in list_packages(repo, name)]
        hint = f" (imported versions: {', '.join(known)})" if known else ""
        raise PackageNotFound(f"package {name}@{version} not found{hint}", packageName=name, version=version)
    return PackageRef(name, version, _leaf(repo, ref, commit))


def read_package(repo: "Repository", name: str, version: str | None = None) -> tuple[PackageRef, "Package"]:
    """The package object of NAME@VERSION, decoded."""
    from e3.model.package import load_package

    found = resolve(repo, name, version)
    return found, load_package(repo.objects, found.package_hash)


def _leaf(repo: "Repository", ref: str, commit: str) -> str:
    leaf = refs.read_state(repo, commit).get(LEAF)
    if leaf is None:
        raise FormatError(f"{ref} does not record a package object (no 'package' leaf)")
    return leaf


def package_objects(package_hash: str, read: "Any") -> list[str]:
    """Every object a package reaches (itself, task objects, command IR, initial values), in walk order.

    `read(hash) -> bytes` fetches an object; ObjectNotFound propagates.
    """
    from e3.model.package import decode_package
    from e3.model.task import TaskObject
    from e3.model.types import TaskObjectType

    from e3 import east

    seen: dict[str, None] = {package_hash: None}
    package = decode_package(read(package_hash), f"package object {package_hash}")
    for name in sorted(package.tasks):
        th = package.tasks[name]
        seen[th] = None
        _, value = east.decode(read(th), TaskObjectType)
        seen[TaskObject.from_east(value).command_ir] = None
    for _, ref in sorted(package.refs.items()):
        if ref.kind == "value" and ref.hash:
            seen[ref.hash] = None
    return list(seen)


# ---------------------------------------------------------------- import


class ImportResult(tuple):
    """(name, version, package_hash), plus how many objects were written and whether anything changed."""

    name: str
    version: str
    package_hash: str
    object_count: int
    imported: bool

    def __new__(cls, name: str, version: str, package_hash: str, object_count: int, imported: bool) -> "ImportResult":
        self = super().__new__(cls, (name, version, package_hash))
        self.name, self.version, self.package_hash = name, version, package_hash
        self.object_count, self.imported = object_count, imported
        return self

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


def import_zip(repo: "Repository", zip_path: "str | os.PathLike[str] | BinaryIO", replace: bool = False) -> ImportResult:
    """Import a package zip (a path or a seekable binary file): check everything, then write the objects, then the ref.

    `replace` lets a zip with other contents take over an existing name@version
    (`e3 watch` rebuilds a source whose version did not change); the package
    ref's history keeps the version it replaced.
    """
    staged = stage_zip(repo, zip_path, replace)
    if isinstance(staged, ImportResult):
        return staged
    repo.objects.sync()  # one syncfs: the values and the commit that names them are durable before the ref moves
    return publish(repo, staged)


@dataclass
class StagedImport:
    """A package checked and written with its commit, not yet durable: `publish` moves its ref
    once the caller has synced the store (e3.repo.workspace.import_zip syncs its deploy with it)."""

    name: str
    version: str
    package_hash: str
    ref: str
    previous: str | None
    commit: str
    verb: str
    object_count: int
    tasks: "dict[str, tuple[str, TaskObject]]"
    package: "Package"
    """As checked: its dataset types are the runtime's, or e3.model.canonical's TypeValues."""


def stage_zip(repo: "Repository", zip_path: "str | os.PathLike[str] | BinaryIO", replace: bool = False) -> "StagedImport | ImportResult":
    """Check a package zip and write its objects and the ref's commit without syncing them; an
    ImportResult instead when the same package is imported already (nothing to write)."""
    from e3.repo.package_zip import read_package_zip, store_object

    with read_package_zip(zip_path) as contents:
        name, version, package_hash = contents.name, contents.version, contents.package_hash
        ref = ref_name(name, version)
        current = _current(repo, ref)
        if current == package_hash:
            return ImportResult(name, version, package_hash, 0, False)
        if current is not None and not replace:
            raise PackageExists(_clash(name, version, current, package_hash), packageName=name, version=version)
        previous = refs.read(repo, ref) if current is not None else None
        store = repo.objects
        contents.stage_into = store  # a large value is copied while it is checked: one pass
        needed, tasks, checked = check_contents(contents)
        for obj in needed:
            store_object(contents, obj, store)
    verb = "replace" if previous else "import"
    commit = refs.write_state(repo, {LEAF: package_hash}, previous, f"{verb} {name}@{version}", durable=False)
    return StagedImport(name, version, package_hash, ref, previous, commit, verb, len(needed), tasks, checked)


def publish(repo: "Repository", staged: StagedImport) -> ImportResult:
    """Move the ref of a staged import (its objects durable now) with compare-and-swap."""
    name, version, package_hash = staged.name, staged.version, staged.package_hash
    try:
        refs.update(repo, staged.ref, staged.commit, staged.previous or refs.ZERO, f"package: {staged.verb} {name}@{version}")
    except RefMoved:
        # Someone imported NAME@VERSION meanwhile: fine if it is the same package.
        current = _current(repo, staged.ref)
        if current != package_hash:
            raise PackageExists(_clash(name, version, current or "nothing", package_hash), packageName=name, version=version) from None
        return ImportResult(name, version, package_hash, 0, False)
    from e3.repo import snapshot

    snapshot.remember_tasks(repo, package_hash, staged.tasks)  # decoded above: the first run plans without East
    return ImportResult(name, version, package_hash, staged.object_count, True)


def _current(repo: "Repository", ref: str) -> str | None:
    commit = refs.read(repo, ref)
    return None if commit is None else _leaf(repo, ref, commit)


def _clash(name: str, version: str, have: str, new: str) -> str:
    return (
        f"package {name}@{version} already exists with different contents "
        f"(package {have[:12]}, the zip holds {new[:12]}); remove it first or import another version"
    )


def check_contents(contents: "ZipContents") -> "tuple[list[str], dict[str, tuple[str, TaskObject]], Package]":
    """Check the package in a zip and everything it reaches; return the hashes to store, the
    tasks (name -> (task hash, task object)) and the package object decoded.

    Objects in the zip that the package does not reach are not stored. Objects in e3's
    canonical encoding are read without the East runtime (e3.model.canonical); the first
    one that is not, or a type that reader cannot compare, has the whole check made again
    by the runtime (objects already read or staged are not read again), which refuses
    what is wrong in its own words.
    """
    try:
        return _check_contents(contents, _Canonical())
    except _AskRuntime:
        return _check_contents(contents, _Runtime())


class _AskRuntime(Exception):
    """The canonical reader declined: check with the East runtime instead."""


class _Canonical:
    """Decoding and type checks without the East runtime, for objects in e3's canonical encoding."""

    def __init__(self) -> None:
        from e3.model import canonical

        self.canonical = canonical

    def package(self, data: bytes, what: str) -> "Package":
        package = self.canonical.read_package(data)
        if package is None:
            raise _AskRuntime
        return package

    def task(self, data: bytes) -> "TaskObject":
        task = self.canonical.read_task(data)
        if task is None:
            raise _AskRuntime
        return task

    def command_type(self) -> Any:
        return None

    def check_type(self, head: bytes, want: Any) -> str | None:
        """None if the value starting `head` has type `want` (None: the IR type)."""
        if want is None:
            ok = head.startswith(self.canonical.IR_HEADER)
        else:
            ok = self.canonical.value_has_type(head, want)
        if not ok:
            raise _AskRuntime  # differs, or cannot tell: the runtime says which, in its words
        return None

    def type_key(self, t: Any) -> Any:
        return "IR" if t is None else t.key


class _Runtime:
    """Decoding and type checks by the East runtime: any encoding, any type, its messages."""

    def __init__(self) -> None:
        from e3 import east
        from e3.model.types import TaskObjectType

        self.east = east
        self.decode_task = east.decoder_for(TaskObjectType)  # refuses any other header type
        self.keys: dict[int, bytes] = {}

    def package(self, data: bytes, what: str) -> "Package":
        from e3.model.package import decode_package

        return decode_package(data, what)

    def task(self, data: bytes) -> "TaskObject":
        from e3.model.task import TaskObject

        return TaskObject.from_east(self.decode_task(data))

    def command_type(self) -> Any:
        return self.east.IR_TYPE

    def check_type(self, head: bytes, want: Any) -> str | None:
        """None if the value starting `head` has type `want`, else why not; E3Error if the
        header is cut short or malformed."""
        east = self.east
        found = east.read_type(head)
        if east.type_equal(found, want):
            return None
        return f"has type {east.format_type(found)}, expected {east.format_type(want)}"

    def type_key(self, t: Any) -> Any:
        k = self.keys.get(id(t))
        if k is None:
            k = self.keys[id(t)] = self.east.type_key(t)
        return k


def _check_contents(contents: "ZipContents", how: "_Canonical | _Runtime") -> "tuple[list[str], dict[str, tuple[str, TaskObject]], Package]":
    from e3.container import header_problem

    where = contents.path
    checked: dict[tuple[str, Any], None] = {}  # (object, type key) pairs already checked: each pair once

    def read(obj: str, what: str) -> bytes:
        if obj not in contents.objects:
            raise PackageInvalid(f"{where}: {what} (object {obj}) is missing from the zip")
        data = contents.read(obj)
        problem = header_problem(data)
        if problem:
            raise PackageInvalid(f"{where}: {what} (object {obj[:12]}): {problem}")
        return data

    def check_type(obj: str, what: str, want: Any) -> None:
        """The type in an object's header against `want`; a value may be large: its entry is
        checked a piece at a time and its type read from its head."""
        key = how.type_key(want)
        if (obj, key) in checked:
            return
        if obj not in contents.objects:
            raise PackageInvalid(f"{where}: {what} (object {obj}) is missing from the zip")
        contents.verify(obj)
        n = 1 << 12
        while True:
            head = contents.head(obj, n)
            problem = header_problem(head)
            if problem:
                raise PackageInvalid(f"{where}: {what} (object {obj[:12]}): {problem}")
            try:
                wrong = how.check_type(head, want)
                break
            except E3Error as e:
                if len(head) < n:  # the whole object, and still no type
                    raise PackageInvalid(f"{where}: {what} (object {obj[:12]}): {e}") from None
                n *= 16
        if wrong:
            raise PackageInvalid(f"{where}: {what} (object {obj[:12]}) {wrong}")
        checked[(obj, key)] = None

    ph = contents.package_hash
    package = how.package(read(ph, "the package object"), f"{where}: the package object {ph[:12]}")
    command_type = how.command_type()
    needed: dict[str, None] = {ph: None}
    datasets = package.datasets()
    writers: dict[tuple[str, ...], str] = {}
    tasks: dict[str, tuple[str, TaskObject]] = {}
    for name in sorted(package.tasks):
        th = package.tasks[name]
        data = read(th, f"task {name}")
        try:
            task = how.task(data)
        except _AskRuntime:
            raise
        except Exception:  # any decoding failure of untrusted bytes means the same thing here
            raise PackageInvalid(f"{where}: task {name} (object {th[:12]}) is not a task object") from None
        needed[th] = None
        tasks[name] = (th, task)
        check_type(task.command_ir, f"the command of task {name}", command_type)
        needed[task.command_ir] = None
        for path in (*task.inputs, task.output):
            if path not in datasets:
                raise PackageInvalid(f"{where}: task {name} names dataset {'.'.join(path)}, which the package does not declare")
        if datasets[task.output].writable:
            raise PackageInvalid(f"{where}: task {name} writes {'.'.join(task.output)}, which is a writable input")
        other = writers.setdefault(task.output, name)
        if other != name:
            raise PackageInvalid(f"{where}: tasks {other} and {name} both write {'.'.join(task.output)}")
    for path, ref in sorted(package.refs.items()):
        spec = datasets.get(path)
        if spec is None:
            raise PackageInvalid(f"{where}: the package gives a value for {'.'.join(path)}, which it does not declare")
        if ref.kind == "value":
            if not ref.hash or not re.fullmatch(r"[0-9a-f]{64}", ref.hash):
                raise PackageInvalid(f"{where}: dataset {'.'.join(path)} refers to an invalid hash {ref.hash!r}")
            check_type(ref.hash, f"the value of {'.'.join(path)}", spec.type)
            needed[ref.hash] = None
    return list(needed), tasks, package


# ---------------------------------------------------------------- export and remove


@dataclass(frozen=True)
class ExportResult:
    name: str
    version: str
    package_hash: str
    object_count: int


def export_zip(repo: "Repository", name: str, version: str | None, out: "str | os.PathLike[str] | BinaryIO") -> ExportResult:
    """Write NAME@VERSION and every object it reaches as a package zip (deterministic bytes), to a path or into a binary file."""
    from e3.repo.package_zip import write_package_zip

    found = resolve(repo, name, version)
    hashes = package_objects(found.package_hash, repo.objects.read)  # reads verify each object's bytes
    count = write_package_zip(out, found.name, found.version, found.package_hash, zip_objects(repo, sorted(hashes)))
    return ExportResult(found.name, found.version, found.package_hash, count)


def zip_objects(repo: "Repository", hashes: Iterable[str], made: "dict[str, bytes] | None" = None) -> "Iterator[tuple[str, bytes | Stored]]":
    """The objects for a zip: small ones read whole, large ones copied into it a piece at a time;
    every one verified against its name as it is read. `made`: objects given by their bytes
    rather than read from the store (one made for the zip alone is never stored)."""
    from e3.repo.package_zip import KEEP_IN_MEMORY, Stored

    store = repo.objects
    for obj in hashes:
        if made and obj in made:
            yield obj, made[obj]
            continue
        size = store.size(obj)
        yield obj, store.read(obj) if size <= KEEP_IN_MEMORY else Stored(size, lambda obj=obj: store.open(obj))


def remove_package(repo: "Repository", name: str, version: str | None = None) -> PackageRef:
    """Delete the ref of NAME@VERSION; its objects stay until `e3 repo gc` finds nothing reaching them."""
    found = resolve(repo, name, version)
    ref = ref_name(found.name, found.version)
    commit = refs.read(repo, ref)
    if commit is None:
        raise PackageNotFound(f"package {found.spec} not found", packageName=found.name, version=found.version)
    refs.delete(repo, ref, commit)
    return found
