"""The package zip: the original engine's bundle of one package and every object it reaches.

Entries: `packages/<name>/<version>` (the package object's hash and a newline)
and `objects/<2 hex>/<62 hex>.beast2` (an object's exact bytes). Other entries
(`data/…`, `dataflows/…`, `executions/…`) are ignored for forward
compatibility, but their names are still checked.

Writing is deterministic: entries in a fixed order (the package ref, then
objects by hash), a fixed time stamp and fixed attributes, so the same package
gives the same bytes. Written to a path, the zip goes to `OUT.partial`, is
fsynced and renamed, so a reader never sees half a zip; written into a file
object (the repository interface's exports), the caller owns the file. The
SDK's export and `e3 package export` both write through `write_package_zip`.

Reading checks every name (absolute paths, `..`) up front, and an object's
bytes against its name (and against those of another entry of the same name)
when it is read: an entry the package does not reach is never read, so a
stray or damaged one costs nothing. It never extracts by name. It knows bytes,
not East values: decoding is e3.repo.package's job.
"""
from __future__ import annotations

import hashlib
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable

from e3.errors import CorruptObject, E3Error, PackageInvalid, StorageError
from e3.storage.files import Writeback
from e3.storage.refs import check_component

if TYPE_CHECKING:
    from e3.storage.objects import NewObject, ObjectStore

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
"""The earliest time a zip can record: entries carry it, so zips are reproducible."""
KEEP_IN_MEMORY = 1 << 20
"""Objects up to this size are kept in memory between checking and storing; bigger ones are copied
into the store's temporary files while checked (`ZipContents.stage_into`), or else read twice."""
STORE_FROM = 1 << 20
"""Objects of this size or more are stored in the zip as they are, not deflated. Large values are
mostly binary numbers that deflate barely shrinks, and deflating them would make an export run at
a tenth of the disk's speed; small objects (tasks, function IR, small values) shrink well."""

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
"""A zip entry's local file header: signature, versions, flags, method, time, date, CRC, sizes, name and extra lengths."""
_LOCAL_SIGNATURE = b"PK\x03\x04"
_OBJECT_NAME = re.compile(r"objects/([0-9a-f]{2})/([0-9a-f]{62})\.beast2")
_DRIVE = re.compile(r"[A-Za-z]:")


def ref_entry(name: str, version: str) -> str:
    return f"packages/{name}/{version}"


def object_entry(obj: str) -> str:
    return f"objects/{obj[:2]}/{obj[2:]}.beast2"


# ---------------------------------------------------------------- writing


class ZipOutput:
    """A zip written to `PATH.partial` and renamed to `PATH` on `commit()`; removed on failure."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.partial = Path(str(self.path) + ".partial")
        try:
            self._file = open(self.partial, "wb")
        except OSError as e:
            raise StorageError(f"cannot write {self.partial}: {(e.strerror or str(e)).lower()}") from None
        self._zip = zipfile.ZipFile(self._file, "w", compression=zipfile.ZIP_DEFLATED)
        self._writeback = Writeback(self._file.fileno())

    def add(self, name: str, data: "bytes | Stored") -> None:
        """An entry holding `data`: bytes, or an object copied from the store a piece at a time."""
        size = data.size if isinstance(data, Stored) else len(data)
        info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED if size < STORE_FROM else zipfile.ZIP_STORED
        info.create_system = 3  # unix, whatever the host: attributes are part of the bytes
        info.external_attr = 0o100644 << 16
        if not isinstance(data, Stored):
            self._zip.writestr(info, data)
            return
        info.file_size = size  # as writestr sets it: the same header bytes, zip64 only when needed
        with data.open() as source, self._zip.open(info, "w") as entry:
            while chunk := source.read(1 << 20):
                entry.write(chunk)
                self._written()

    def _written(self) -> None:
        """Have the disk take what is written so far while the zip is still being written: the
        fsync of `commit` then waits for the last piece only."""
        self._file.flush()
        self._writeback.grown_to(self._file.tell())

    def commit(self) -> None:
        try:
            self._zip.close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.rename(self.partial, self.path)
        except OSError as e:
            self.abort()
            raise StorageError(f"cannot write {self.path}: {(e.strerror or str(e)).lower()}") from None

    def abort(self) -> None:
        try:
            self._zip.close()
        except Exception:  # already broken; the partial file goes anyway
            pass
        self._file.close()
        try:
            os.unlink(self.partial)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "ZipOutput":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:
            self.abort()


class ZipInto(ZipOutput):
    """A zip written into a binary file the caller owns (and closes); nothing to rename."""

    def __init__(self, file: BinaryIO):
        name = getattr(file, "name", None)
        self.path = Path(name if isinstance(name, str) else "<stream>")
        self._file = file
        self._zip = zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED)

    def commit(self) -> None:
        try:
            self._zip.close()
            self._file.flush()
        except OSError as e:
            raise StorageError(f"cannot write {self.path}: {(e.strerror or str(e)).lower()}") from None

    def _written(self) -> None:
        pass  # the caller's file: what becomes of it is the caller's business

    def abort(self) -> None:
        try:
            self._zip.close()
        except Exception:  # already broken: the caller discards the file
            pass


@dataclass(frozen=True)
class Stored:
    """An object to copy into a zip from a stream (the store's verified reader): never held whole."""

    size: int
    open: Callable[[], BinaryIO]


def write_package_zip(
    target: "str | os.PathLike[str] | BinaryIO",
    name: str,
    version: str,
    package_hash: str,
    objects: "Iterable[tuple[str, bytes | Stored]]",
) -> int:
    """Write a package zip to a path or into a writable binary file; `objects` yields (hash, bytes
    or `Stored`), each once, in hash order. Returns the object count. A file that cannot seek gets
    a valid zip whose bytes differ (zip's data descriptors)."""
    count = 0
    with ZipInto(target) if hasattr(target, "write") else ZipOutput(target) as out:  # type: ignore[arg-type]
        out.add(ref_entry(name, version), (package_hash + "\n").encode())
        for obj, data in objects:
            out.add(object_entry(obj), data)
            count += 1
        out.commit()
    return count


# ---------------------------------------------------------------- reading


@dataclass
class ZipContents:
    """What a package zip holds. Objects are checked against their names as they are read."""

    path: str
    name: str
    version: str
    package_hash: str
    objects: dict[str, "zipfile.ZipInfo"] = field(default_factory=dict)
    """Object hash -> the entry holding it (not read yet)."""
    duplicates: dict[str, list["zipfile.ZipInfo"]] = field(default_factory=dict)
    """Object hash -> further entries of the same name, which must hold the same bytes."""
    cached: dict[str, bytes] = field(default_factory=dict)
    """Checked bytes of the objects read so far that are small enough to keep."""
    zip: "zipfile.ZipFile | None" = None
    stage_into: "ObjectStore | None" = None
    """The store an import will write to: `verify` then copies a large object into one of its
    temporary files as it checks it (one pass over the entry), and `store_object` only names it."""
    staged: dict[str, "NewObject"] = field(default_factory=dict)
    """Checked objects larger than `KEEP_IN_MEMORY` copied already, not yet stored (closing the
    contents drops them); each holds a temporary file open until then."""

    def read(self, obj: str) -> bytes:
        """The object's bytes, once they hash to its name (each entry of that name)."""
        data = self.cached.get(obj)
        if data is None:
            data = _read_entry(self.zip, self.objects[obj], self.path)
            self.check(obj, hashlib.sha256(data).hexdigest())
            if len(data) <= KEEP_IN_MEMORY:
                self.cached[obj] = data
        return data

    def check(self, obj: str, digest: str) -> None:
        """Refuse an object whose first entry hashed to `digest`, or another entry of its name
        that holds other bytes."""
        if digest != obj:
            raise CorruptObject(f"{self.path}: object {obj} does not match its contents (they hash to {digest})")
        for info in self.duplicates.pop(obj, ()):
            if _hash_entry(self.zip, info, self.path, keep=False)[0] != digest:
                raise PackageInvalid(f"{self.path}: entry {info.filename} appears twice with different contents")

    def verify(self, obj: str) -> None:
        """Check an object's entry (and any other of its name) against its name, a piece at a
        time: nothing is held, so a large object is checked without holding it. With
        `stage_into`, the bytes checked go to a temporary file of that store on the way."""
        if obj in self.cached or obj in self.staged:
            return
        if self.objects[obj].file_size <= KEEP_IN_MEMORY:
            self.read(obj)  # kept, as small objects are: staging each would hold a file open per object
            return
        if self.stage_into is None:
            self.check(obj, _hash_entry(self.zip, self.objects[obj], self.path, keep=False)[0])
            return
        from e3.storage.objects import NewObject

        new = NewObject(self.stage_into, durable=False)
        try:
            _copy_entry(self.zip, self.objects[obj], self.path, new.write)
            self.check(obj, new.hash.hexdigest())
        except BaseException:
            new.abort()
            raise
        self.staged[obj] = new

    def head(self, obj: str, n: int) -> bytes:
        """The first `n` bytes of an object (its Beast2 header), without reading the rest (see `verify`)."""
        data = self.cached.get(obj)
        if data is not None:
            return data[:n]
        assert self.zip is not None
        try:
            with self.zip.open(self.objects[obj]) as f:
                return f.read(n)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as e:
            raise PackageInvalid(f"{self.path}: entry {self.objects[obj].filename} is damaged or truncated ({_one_line(e)})") from None

    def close(self) -> None:
        for new in self.staged.values():
            new.abort()
        self.staged.clear()
        if self.zip is not None:
            self.zip.close()

    def __enter__(self) -> "ZipContents":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_package_zip(path: "str | os.PathLike[str] | BinaryIO") -> ZipContents:
    """Open and check a package zip (a path, or a seekable binary file named by its `name`):
    names, hashes, duplicates, the one package ref."""
    where = str(getattr(path, "name", "<stream>")) if hasattr(path, "read") else str(path)
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise E3Error(f"cannot read {where}: no such file") from None
    except IsADirectoryError:
        raise E3Error(f"cannot read {where}: is a directory") from None
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise PackageInvalid(f"{where} is not a zip file or is truncated ({_one_line(e)})") from None
    except OSError as e:
        raise E3Error(f"cannot read {where}: {(e.strerror or str(e)).lower()}") from None
    try:
        return _check(zf, where)
    except BaseException:
        zf.close()
        raise


def _check(zf: zipfile.ZipFile, where: str) -> ZipContents:
    refs: dict[tuple[str, str], bytes] = {}
    objects: dict[str, zipfile.ZipInfo] = {}
    duplicates: dict[str, list[zipfile.ZipInfo]] = {}
    for info in zf.infolist():
        name = info.filename
        _check_name(name, where)
        if info.flag_bits & 0x1:
            raise PackageInvalid(f"{where}: entry {name!r} is encrypted")
        if name.endswith("/"):
            continue
        m = _OBJECT_NAME.fullmatch(name)
        if m:  # read (and checked) only if the package reaches it: see ZipContents.read
            obj = m.group(1) + m.group(2)
            if obj in objects:
                duplicates.setdefault(obj, []).append(info)
            else:
                objects[obj] = info
            continue
        if not name.startswith("packages/"):
            continue  # data/…, dataflows/…: redundant or for workspaces; ignored like the original engine
        parts = name.split("/")
        if len(parts) != 3:
            raise PackageInvalid(f"{where}: malformed package entry {name!r} (expected packages/NAME/VERSION)")
        data = _hash_entry(zf, info, where, keep=True)[1]
        if refs.setdefault((parts[1], parts[2]), data) != data:
            raise PackageInvalid(f"{where}: entry {name} appears twice with different contents")
    if not refs:
        raise PackageInvalid(f"{where}: no package entry (packages/NAME/VERSION); not a package zip")
    if len(refs) > 1:
        listed = ", ".join(f"{n}@{v}" for n, v in sorted(refs))
        raise PackageInvalid(f"{where}: holds more than one package ({listed})")
    (pkg_name, version), data = next(iter(refs.items()))
    check_component("package", pkg_name)
    check_component("version", version)
    if "@" in pkg_name:
        raise PackageInvalid(f"{where}: invalid package name {pkg_name!r} ('@' separates name and version)")
    try:
        package_hash = data.decode("ascii").strip()
    except UnicodeDecodeError:
        package_hash = ""
    if not re.fullmatch(r"[0-9a-f]{64}", package_hash):
        raise PackageInvalid(f"{where}: package entry {ref_entry(pkg_name, version)} does not hold an object hash")
    return ZipContents(where, pkg_name, version, package_hash, objects, duplicates, {}, zf)


def _check_name(name: str, where: str) -> None:
    if "\x00" in name:
        raise PackageInvalid(f"{where}: entry name {name!r} contains a NUL byte")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise PackageInvalid(f"{where}: entry {name!r} has an absolute path")
    if "\\" in name:
        raise PackageInvalid(f"{where}: entry {name!r} contains a backslash")
    if ".." in name.split("/"):
        raise PackageInvalid(f"{where}: entry {name!r} escapes the archive (zip-slip '..' path)")


def _hash_entry(zf: zipfile.ZipFile | None, info: zipfile.ZipInfo, where: str, keep: bool) -> tuple[str, bytes | None]:
    h = hashlib.sha256()
    chunks: list[bytes] = []

    def take(chunk: bytes) -> None:
        h.update(chunk)
        if keep:
            chunks.append(chunk)

    _copy_entry(zf, info, where, take)
    return h.hexdigest(), b"".join(chunks) if keep else None


def _copy_entry(zf: zipfile.ZipFile | None, info: zipfile.ZipInfo, where: str, take: Callable[[bytes], None]) -> None:
    """Hand an entry's bytes to `take` a megabyte at a time; a damaged entry is one line."""
    assert zf is not None
    span = _stored_span(zf, info, where)
    if span is not None:
        offset, left = span
        while left:
            zf.fp.seek(offset)
            chunk = zf.fp.read(min(left, 1 << 20))
            if not chunk:
                raise PackageInvalid(f"{where}: entry {info.filename} is damaged or truncated (the zip ends inside it)")
            offset += len(chunk)
            left -= len(chunk)
            take(chunk)
        return
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                take(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as e:
        raise PackageInvalid(f"{where}: entry {info.filename} is damaged or truncated ({_one_line(e)})") from None


def _stored_span(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> tuple[int, int] | None:
    """Where the bytes of an object entry stored as they are (not deflated: large values) lie in
    the zip, as (offset, size); None for any other entry. Read from there they skip zipfile's
    CRC-32, which costs as much as the SHA-256 that checks an object's bytes against its name
    anyway (so only object entries, which every reader checks so, are read this way)."""
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size or zf.fp is None:
        return None
    if not _OBJECT_NAME.fullmatch(info.filename):
        return None
    fp = zf.fp
    fp.seek(info.header_offset)
    header = fp.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
        raise PackageInvalid(f"{where}: entry {info.filename} is damaged or truncated (bad local file header)")
    _, _, _, flags, *_, name_size, extra_size = _LOCAL_HEADER.unpack(header)
    name = fp.read(name_size)
    if name.decode("utf-8" if flags & 0x800 else "cp437", "replace") != info.orig_filename:
        raise PackageInvalid(f"{where}: entry {info.filename} is damaged (its local header names another file)")
    offset = info.header_offset + _LOCAL_HEADER.size + name_size + extra_size
    if offset + info.file_size > fp.seek(0, os.SEEK_END):
        raise PackageInvalid(f"{where}: entry {info.filename} is damaged or truncated (the zip ends inside it)")
    return offset, info.file_size


def _read_entry(zf: zipfile.ZipFile | None, info: zipfile.ZipInfo, where: str) -> bytes:
    assert zf is not None
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as e:
        raise PackageInvalid(f"{where}: entry {info.filename} is damaged or truncated ({_one_line(e)})") from None


def store_object(contents: ZipContents, obj: str, store) -> None:  # noqa: ANN001 - an e3.storage.objects.ObjectStore
    """Write one object of the zip into `store` (without fsync: the caller syncs), checked against
    its name as it is copied (one pass): a big one is streamed, never held whole."""
    data = contents.cached.get(obj)
    if data is not None:
        store.write(data, durable=False)
        return
    staged = contents.staged.pop(obj, None)
    if staged is not None:  # checked and copied while the package was checked
        staged.commit(expect=obj)
        return
    assert contents.zip is not None
    info = contents.objects[obj]
    try:
        with contents.zip.open(info) as f:
            store.write_stream(f, expect=obj, durable=False)
    except CorruptObject:
        raise CorruptObject(f"{contents.path}: object {obj} does not match its contents") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as e:
        raise PackageInvalid(f"{contents.path}: entry {info.filename} is damaged or truncated ({_one_line(e)})") from None
    contents.check(obj, obj)  # and any other entry of its name


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
