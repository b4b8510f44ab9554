"""Writing git objects as one pack file: objects in, `pack-<sha>.pack` and `.idx` out.

A pack (git's pack format version 2) holds whole objects, each zlib-compressed
after a small type-and-size header; the index (version 2) lists the object ids
in order with each one's CRC-32 and offset, so libgit2 and git find an object
by binary search. e3 writes packs without deltas: its objects are a few dozen
bytes each (a blob holding one hash, a tree of a few entries), so a delta would
save little and make every record depend on another.

Why a pack: one `e3 start` flush makes one new blob and tree per task output.
As loose objects that is a file (temporary file, link, unlink) per object,
50-250 us each here; as a pack it is two files, however many objects.

Publishing follows git: both files are written as `tmp_pack_*`/`tmp_idx_*` in
`objects/pack/`, flushed to disk, then the pack is renamed into place and the
index after it. Readers only look at packs that have an index, so the pack
becomes visible, complete, when its index appears; a crash leaves at most
temporary files (removed by e3 repo gc, reported by e3-fsck).

Merging packs (`merge_packs`, which keeps their number small) writes the new
pack the same way, copying each record's bytes from the packs it reads as they
come, so what it holds grows with the number of objects, not their size.

No pygit2 here: this module knows the byte format only.
"""
from __future__ import annotations

import fcntl
import hashlib
from bisect import bisect_right
import mmap
import os
import struct
import sys
import zlib
from array import array
from typing import Callable, Sequence

from e3.storage.files import unlink_if_present, write_exactly

COMMIT, TREE, BLOB = 1, 2, 3
"""Pack type numbers (git's OBJ_COMMIT, OBJ_TREE, OBJ_BLOB)."""
TYPE_NAMES = {COMMIT: "commit", TREE: "tree", BLOB: "blob"}

TMP_PACK_PREFIX = "tmp_pack_"
TMP_IDX_PREFIX = "tmp_idx_"
COMPRESSION = 1
"""zlib level for larger objects: git's core.looseCompression default."""
STORE_BELOW = 512
"""Objects smaller than this are stored in zlib's uncompressed form: a blob of one hex hash or a tree of raw
ids barely shrinks, and deflate costs 3x more than storing (about 5 against 1.7 us an object). Trees
are stored so whatever their size: a workspace's `tasks` tree, one entry (a name and a raw id) per
task, shrinks by a quarter, and each commit of a run writes it whole again, so deflating it made
every commit cost time in proportion to the number of tasks."""

_IDX_MAGIC = b"\377tOc"


def object_header(kind: int, size: int) -> bytes:
    """`<type> <size>\\0`: what precedes an object's bytes in its id's hash and in a loose object."""
    return b"%s %d\0" % (TYPE_NAMES[kind].encode(), size)


def object_id(kind: int, data: bytes) -> bytes:
    """The raw 20-byte git id of an object: SHA-1 of `<type> <size>\\0<data>`."""
    h = hashlib.sha1(object_header(kind, len(data)))
    h.update(data)
    return h.digest()


def _record_header(kind: int, size: int) -> bytes:
    # Type in bits 4-6 of the first byte with the size's low 4 bits, then 7 bits a byte, MSB = more follows.
    out = bytearray()
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


class PackError(Exception):
    """A pack or index that is not what e3 can merge (damaged, another version, or holding deltas)."""


def _record(kind: int, data: bytes) -> bytes:
    return _record_header(kind, len(data)) + zlib.compress(data, 0 if kind == TREE or len(data) < STORE_BELOW else COMPRESSION)


def index_bytes(entries: list[tuple[bytes, int, int]], pack_checksum: bytes) -> bytes:
    """A version 2 index of a pack's (id, crc32, offset) entries."""
    return _index_of(_Entries.of(entries), pack_checksum)


class _Entries:
    """(id, crc32, offset) of many records, in three flat arrays: a merge of 300,000 objects held them
    as a tuple each, several times over, which cost more memory than the rest of a large run."""

    __slots__ = ("oids", "crcs", "offsets")

    def __init__(self) -> None:
        self.oids = bytearray()
        self.crcs = array("I")
        self.offsets = array("Q")

    @classmethod
    def of(cls, entries: Sequence[tuple[bytes, int, int]]) -> "_Entries":
        out = cls()
        for oid, crc, offset in entries:
            out.add(oid, crc, offset)
        return out

    def add(self, oid: bytes, crc: int, offset: int) -> None:
        self.oids += oid
        self.crcs.append(crc)
        self.offsets.append(offset)

    def __len__(self) -> int:
        return len(self.crcs)


def _big_endian(a: array) -> bytes:
    if sys.byteorder == "little":
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _index_of(entries: _Entries, pack_checksum: bytes) -> bytes:
    n = len(entries)
    ids = memoryview(entries.oids)
    order = sorted(range(n), key=lambda i: ids[20 * i : 20 * i + 20].tobytes())
    oids = bytearray(20 * n)
    for j, i in enumerate(order):
        oids[20 * j : 20 * j + 20] = ids[20 * i : 20 * i + 20]
    firsts = bytes(oids[0::20])
    fanout = [bisect_right(firsts, b) for b in range(256)]
    crcs = array("I", (entries.crcs[i] for i in order))
    small, large = array("I"), array("Q")
    for i in order:
        offset = entries.offsets[i]
        if offset < 0x80000000:
            small.append(offset)
        else:  # past 2 GiB: the 4-byte slot points into a table of 8-byte offsets
            small.append(0x80000000 | len(large))
            large.append(offset)
    body = b"".join(
        [
            _IDX_MAGIC,
            struct.pack(">I", 2),
            struct.pack(">256I", *fanout),
            bytes(oids),
            _big_endian(crcs),
            _big_endian(small),
            _big_endian(large),
            pack_checksum,
        ]
    )
    return body + hashlib.sha1(body).digest()


def write_pack(pack_dir: str, objects: Sequence[tuple[int, bytes, bytes]], durable: bool = True) -> str:
    """Publish `objects` ((type, raw id, data), ids unique) as one pack in `pack_dir`; return its name `pack-<sha>`.

    `durable` fsyncs both files before they are renamed into place, so a crash
    after the caller moves a ref to one of these objects cannot lose them.
    """
    records = [(oid, _record(kind, data)) for kind, oid, data in objects]
    return _publish(pack_dir, len(records), lambda out: out.extend(records), durable)


def _publish(pack_dir: str, count: int, fill: Callable[["_PackWriter"], None], durable: bool) -> str:
    """Write a pack of the `count` records (no duplicate ids) that `fill` adds, and its index, as temporary
    files, then rename the pack into place and the index after it; return its name `pack-<sha>`."""
    out = _PackWriter(pack_dir, count)
    try:
        fill(out)
        checksum, entries = out.finish(durable)
        if len(entries) != count:
            raise ValueError(f"a pack of {count} records was given {len(entries)}")
        tmp_idx = _write_tmp(pack_dir, TMP_IDX_PREFIX, _index_of(entries, checksum), durable)
    except BaseException:
        out.discard()
        raise
    name = "pack-" + checksum.hex()
    try:
        os.rename(out.path, os.path.join(pack_dir, name + ".pack"))
        os.rename(tmp_idx, os.path.join(pack_dir, name + ".idx"))
    except BaseException:
        unlink_if_present(out.path)
        unlink_if_present(tmp_idx)
        raise
    return name


_CHUNK = 1 << 20
"""How many bytes a pack writer gathers before it writes them, and a merge reads of a record at once."""


class _PackWriter:
    """A pack being written to a temporary file: the header, records as they come, then the SHA-1 of
    everything before as its trailer, hashed as it is written so no part is read back or held whole."""

    def __init__(self, pack_dir: str, count: int) -> None:
        self.path, self._fd = _create_tmp(pack_dir, TMP_PACK_PREFIX)
        self._sha = hashlib.sha1()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._offset = 0
        self._entries = _Entries()
        self.write(b"PACK" + struct.pack(">II", 2, count))

    def begin(self, oid: bytes, crc: int) -> None:
        """Start a record of object `oid` whose bytes, `write` next, have the CRC-32 `crc`."""
        self._entries.add(oid, crc, self._offset)

    def extend(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Append records held whole ((raw id, record bytes)), as one write."""
        offset = self._offset
        for oid, record in records:
            self._entries.add(oid, zlib.crc32(record), offset)
            offset += len(record)
        self.write(b"".join(record for _, record in records))

    def finish(self, durable: bool) -> tuple[bytes, _Entries]:
        """Write the trailer and close the file (fsynced first if `durable`); return the pack's checksum
        and (id, crc32, offset) of each record, for its index."""
        self._flush()
        checksum = self._sha.digest()
        write_exactly(self._fd, checksum)
        if durable:
            os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        return checksum, self._entries

    def discard(self) -> None:
        """Close and remove the temporary file (after a failure)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        unlink_if_present(self.path)

    def write(self, data: bytes) -> None:
        """Append bytes: a record's, or part of one."""
        self._pending.append(data)
        self._pending_size += len(data)
        self._offset += len(data)
        if self._pending_size >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        data = b"".join(self._pending)  # one hash update and one write for many small records
        self._pending.clear()
        self._pending_size = 0
        self._sha.update(data)
        write_exactly(self._fd, data)


# ---------------------------------------------------------------- reading and merging e3's packs


def object_count(pack_dir: str, name: str) -> int:
    """How many objects a pack holds, from its index's fan-out table."""
    with open(os.path.join(pack_dir, name + ".idx"), "rb") as f:
        head = f.read(8 + 256 * 4)
    if len(head) < 8 + 256 * 4 or head[:4] != _IDX_MAGIC or head[4:8] != struct.pack(">I", 2):
        raise PackError(f"{name}.idx is not a version 2 pack index")
    return struct.unpack_from(">I", head, 8 + 255 * 4)[0]


def read_index(path: str) -> list[tuple[bytes, int, int]]:
    """(raw id, crc32, offset) of every object in a version 2 pack index."""
    with open(path, "rb") as f:
        return index_entries(f.read(), os.path.basename(path))


_IDX_HEADER = 8 + 256 * 4
"""Magic, version and the fan-out table: where the sorted ids begin."""


def index_count(idx: "bytes | mmap.mmap", name: str = "index") -> int:
    """How many objects a version 2 index (its bytes, or a map of them) lists; PackError if it is none."""
    if len(idx) < _IDX_HEADER + 40 or idx[:4] != _IDX_MAGIC or idx[4:8] != struct.pack(">I", 2):
        raise PackError(f"{name} is not a version 2 pack index")
    n = struct.unpack_from(">I", idx, _IDX_HEADER - 4)[0]
    if len(idx) < _IDX_HEADER + 28 * n + 40:
        raise PackError(f"{name} is truncated")
    return n


def index_entries(idx: "bytes | mmap.mmap", name: str = "index") -> list[tuple[bytes, int, int]]:
    """(raw id, crc32, offset) of every object a version 2 index lists, in id order."""
    n = index_count(idx, name)
    base = _IDX_HEADER
    oids = [idx[at : at + 20] for at in range(base, base + 20 * n, 20)]
    crcs = struct.unpack_from(f">{n}I", idx, base + 20 * n)
    return list(zip(oids, crcs, _index_offsets(idx, n)))


def _index_offsets(idx: "bytes | mmap.mmap", n: int) -> list[int]:
    """The offset of each of the `n` objects an index lists, in id order."""
    base = _IDX_HEADER
    small = struct.unpack_from(f">{n}I", idx, base + 24 * n)
    large = base + 28 * n
    return [o if not o & 0x80000000 else struct.unpack_from(">Q", idx, large + 8 * (o & 0x7FFFFFFF))[0] for o in small]


def index_offset(idx: "bytes | mmap.mmap", count: int, oid: bytes) -> int | None:
    """The offset in its pack of object `oid` (raw id), found by binary search in an index that
    lists `count` objects (see `index_count`), or None if it does not list it."""
    first = oid[0]
    lo = struct.unpack_from(">I", idx, 8 + 4 * (first - 1))[0] if first else 0
    hi = struct.unpack_from(">I", idx, 8 + 4 * first)[0]
    while lo < hi:  # among the ids that share the first byte
        mid = (lo + hi) // 2
        at = _IDX_HEADER + 20 * mid
        if idx[at : at + 20] < oid:
            lo = mid + 1
        else:
            hi = mid
    at = _IDX_HEADER + 20 * lo
    if lo >= count or idx[at : at + 20] != oid:
        return None
    (offset,) = struct.unpack_from(">I", idx, _IDX_HEADER + 24 * count + 4 * lo)
    if offset & 0x80000000:
        (offset,) = struct.unpack_from(">Q", idx, _IDX_HEADER + 28 * count + 8 * (offset & 0x7FFFFFFF))
    return offset


def merge_packs(pack_dir: str, names: Sequence[str], durable: bool = True) -> tuple[str | None, list[str]]:
    """Publish one pack holding the objects of the packs `names` that hold no deltas; return (its name, those merged).

    Records are copied as they are (a whole object needs no other), each
    checked against its index's CRC-32 and each pack against its checksum.
    Packs with deltas (git's own, from e3 repo gc) are left out. The merged
    packs are not removed here: see `remove_pack`. With fewer than two
    mergeable packs nothing is written and the name is None.

    The merged pack is written as it is read, a piece of a record at a time:
    what is held is each object's id, CRC-32 and place, never a pack or a
    whole large object. Each pack is read twice: once for its checksum and
    the type of each record, once to copy its records, checking each one's
    CRC-32; a pack found damaged then is left out and the merge begun again.
    """
    sources: list[_Source] = []
    try:
        for name in names:
            try:
                sources.append(_Source(pack_dir, name))
            except PackError:
                continue
        while len(sources) >= 2:
            seen: set[bytes] = set()
            count = 0
            for source in sources:
                count += source.keep_new(seen)  # the first pack's copy of an object that several hold
            del seen

            def fill(out: _PackWriter) -> None:
                for kind in (COMMIT, TREE, BLOB):  # commits first, then trees, then blobs, as git orders them
                    for source in sources:
                        source.copy_kept(out, kind)

            try:
                return _publish(pack_dir, count, fill, durable), [source.name for source in sources]
            except _Damaged as e:
                sources.remove(e.source)
                e.source.close()
        return None, []
    finally:
        for source in sources:
            source.close()


_READ_BUFFER = 64 << 10
"""Each pack being merged is read through a buffer this size: records, a few dozen bytes each mostly, are
copied with one system call for many, and a merge of many packs holds a buffer for each."""


class _Damaged(Exception):
    """A record of a pack being merged whose bytes do not match its index's CRC-32, or are cut short."""

    def __init__(self, source: "_Source") -> None:
        super().__init__(f"{source.name}.pack is damaged")
        self.source = source


class _Source:
    """One pack being merged, open, with its checksum checked and each record's type read (no deltas).

    Its records, in the order of the pack: `kinds` (a type a byte), `oids` (20 bytes each), `crcs`,
    `starts` (each record ends where the next starts, the last at the trailer), in flat arrays (a
    merge may read hundreds of thousands). Each record's CRC-32 is checked as it is copied.
    """

    def __init__(self, pack_dir: str, name: str) -> None:
        self.name = name
        self.keep = bytearray()
        """Per record: 1 if the merge copies it (`keep_new`)."""
        with open(os.path.join(pack_dir, name + ".idx"), "rb") as f:
            idx = f.read()
        n = index_count(idx, name + ".idx")
        ids = memoryview(idx)[_IDX_HEADER : _IDX_HEADER + 20 * n]
        crcs = struct.unpack_from(f">{n}I", idx, _IDX_HEADER + 20 * n)
        offsets = array("Q", _index_offsets(idx, n))
        order = sorted(range(n), key=offsets.__getitem__)
        oids = bytearray(20 * n)
        for j, i in enumerate(order):
            oids[20 * j : 20 * j + 20] = ids[20 * i : 20 * i + 20]
        del ids
        self.oids = bytes(oids)
        del oids
        self.crcs = array("I", (crcs[i] for i in order))
        self.starts = array("Q", (offsets[i] for i in order))
        del crcs, offsets, order, idx
        self._file = open(os.path.join(pack_dir, name + ".pack"), "rb", buffering=_READ_BUFFER)
        try:
            self.kinds = self._scan()
        except BaseException:
            self._file.close()
            raise

    def _scan(self) -> bytes:
        f, name, starts = self._file, self.name, self.starts
        size = os.fstat(f.fileno()).st_size
        head = f.read(12)
        if head[:8] != b"PACK\0\0\0\2" or len(head) < 12 or struct.unpack_from(">I", head, 8)[0] != len(starts):
            raise PackError(f"{name}.pack does not match its index")
        # The records fill the pack from its header to its trailer, one after another.
        if starts and starts[0] != 12 or any(starts[i] >= starts[i + 1] for i in range(len(starts) - 1)) or size < 32:
            raise PackError(f"{name}.pack does not match its index")
        if starts and starts[-1] >= size - 20:
            raise PackError(f"{name}.pack does not match its index")
        self._end = size - 20
        sha = hashlib.sha1(head)
        kinds = bytearray()
        at, i = 12, 0
        while at < size - 20:  # in chunks: a record's type is the top bits of its first byte
            chunk = f.read(min(size - 20 - at, _CHUNK))
            if not chunk:
                raise PackError(f"{name}.pack is damaged (cut short)")
            sha.update(chunk)
            upto = at + len(chunk)
            while i < len(starts) and starts[i] < upto:
                kinds.append((chunk[starts[i] - at] >> 4) & 7)
                i += 1
            at = upto
        if sha.digest() != f.read(20):
            raise PackError(f"{name}.pack is damaged (checksum)")
        if any(kind not in TYPE_NAMES for kind in set(kinds)):
            raise PackError(f"{name}.pack holds deltas")
        return bytes(kinds)

    def keep_new(self, seen: set[bytes]) -> int:
        """Mark the records whose ids are not in `seen` (and add them to it); return how many."""
        oids = self.oids
        keep = self.keep = bytearray(len(self.starts))
        kept = 0
        for i in range(len(keep)):
            oid = oids[20 * i : 20 * i + 20]
            if oid not in seen:
                seen.add(oid)
                keep[i] = 1
                kept += 1
        return kept

    def copy_kept(self, out: _PackWriter, kind: int) -> None:
        """Copy the records of type `kind` that `keep_new` marked, in the pack's order."""
        kinds, keep, oids, crcs, starts = self.kinds, self.keep, self.oids, self.crcs, self.starts
        last = len(starts) - 1
        for i in range(len(starts)):
            if keep[i] and kinds[i] == kind:
                self.copy(out, oids[20 * i : 20 * i + 20], crcs[i], starts[i], starts[i + 1] if i < last else self._end)

    def copy(self, out: _PackWriter, oid: bytes, crc: int, offset: int, end: int) -> None:
        """Write the record at `offset`..`end` to `out`, _CHUNK bytes at most at a time; _Damaged if its bytes
        do not match its CRC-32."""
        f = self._file
        f.seek(offset)  # a seek into what the buffer holds costs no system call
        out.begin(oid, crc)
        got = 0
        while offset < end:
            piece = f.read(min(end - offset, _CHUNK))
            if not piece:
                raise _Damaged(self)
            got = zlib.crc32(piece, got)
            out.write(piece)
            offset += len(piece)
        if got != crc:
            raise _Damaged(self)

    def close(self) -> None:
        self._file.close()


def verify_pack(pack_dir: str, name: str) -> str | None:
    """What is wrong with pack `name` (`pack-<sha>`) and its index as files, or None.

    Checks what git's trailers promise: the pack's last 20 bytes are the SHA-1 of
    the rest (read in chunks, never whole), the index is a version 2 index whose own
    trailer matches it and which names that same pack checksum. Each object's
    bytes are libgit2's to inflate (see e3.repo.fsck).
    """
    path = os.path.join(pack_dir, name + ".pack")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 32 or f.read(8)[:4] != b"PACK":
                return "damaged: not a pack file"
            f.seek(0)
            h = hashlib.sha1()
            left = size - 20
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    return "damaged: shorter than when it was opened"
                h.update(chunk)
                left -= len(chunk)
            trailer = f.read(20)
        if h.digest() != trailer:
            return "damaged: its checksum does not match its contents"
        with open(os.path.join(pack_dir, name + ".idx"), "rb") as f:
            idx = f.read()
    except FileNotFoundError as e:
        return f"{os.path.basename(e.filename or '') or 'a file'} is missing"
    except OSError as e:
        return f"cannot be read: {(e.strerror or str(e)).lower()}"
    if idx[:4] != _IDX_MAGIC or idx[4:8] != struct.pack(">I", 2) or len(idx) < 8 + 1024 + 40:
        return "damaged: its index is not a version 2 pack index"
    if hashlib.sha1(memoryview(idx)[:-20]).digest() != idx[-20:]:
        return "damaged: its index's checksum does not match the index"
    if idx[-40:-20] != trailer:
        return "damaged: its index is for another pack"
    return None


def pack_names(pack_dir: str) -> list[str]:
    """`pack-<sha>` of every pack in `pack_dir` that readers see: those with an index."""
    try:
        return [n[:-4] for n in os.listdir(pack_dir) if n.startswith("pack-") and n.endswith(".idx")]
    except FileNotFoundError:
        return []


def pack_holding(pack_dir: str, oid: bytes) -> str | None:
    """The name (`pack-<sha>`) of a pack whose index lists object `oid` (raw id), or None."""
    for name in pack_names(pack_dir):
        try:
            if _find_offset(os.path.join(pack_dir, name + ".idx"), oid) is not None:
                return name
        except (OSError, PackError, struct.error):
            continue
    return None


def packed_type(pack_dir: str, oid: bytes) -> int | None:
    """The pack type number of object `oid` (raw id) if a pack in `pack_dir` holds it whole; else None.

    Reads the fan-out and one slice of ids of each index, then one byte of the
    pack. None also for a delta (its type is its base's) and for a pack removed
    while we look: callers then ask libgit2, which knows both.
    """
    try:
        names = [n for n in os.listdir(pack_dir) if n.startswith("pack-") and n.endswith(".idx")]
    except FileNotFoundError:
        return None
    for name in names:
        try:
            offset = _find_offset(os.path.join(pack_dir, name), oid)
            if offset is None:
                continue
            with open(os.path.join(pack_dir, name[:-4] + ".pack"), "rb") as f:
                f.seek(offset)
                first = f.read(1)
        except (OSError, PackError, struct.error):
            continue
        kind = (first[0] >> 4) & 7 if first else 0
        return kind if kind in TYPE_NAMES else None
    return None


def _find_offset(idx_path: str, oid: bytes) -> int | None:
    with open(idx_path, "rb") as f:
        if os.fstat(f.fileno()).st_size < _IDX_HEADER + 40:
            raise PackError(f"{os.path.basename(idx_path)} is not a version 2 pack index")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as idx:  # the search reads a few pages
            return index_offset(idx, index_count(idx, os.path.basename(idx_path)), oid)


def remove_pack(pack_dir: str, name: str) -> None:
    """Delete a pack: its index first, so no reader finds an index whose pack is gone."""
    for ext in (".idx", ".pack", ".rev", ".bitmap"):
        unlink_if_present(os.path.join(pack_dir, name + ext))


def _create_tmp(pack_dir: str, prefix: str) -> tuple[str, int]:
    """A new temporary file in `pack_dir` (made if missing), open for writing and locked: (its path, its descriptor)."""
    while True:
        path = os.path.join(pack_dir, prefix + os.urandom(6).hex())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)  # read-only, like git's packs
            break
        except FileExistsError:
            continue
        except FileNotFoundError:
            os.makedirs(pack_dir, exist_ok=True)
    try:
        # Held until closed: e3-fsck and gc tell a live writer's temporary file from a dead one's.
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        unlink_if_present(path)
        raise
    return path, fd


def _write_tmp(pack_dir: str, prefix: str, data: bytes, durable: bool) -> str:
    path, fd = _create_tmp(pack_dir, prefix)
    try:
        write_exactly(fd, data)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_if_present(path)
        raise
    os.close(fd)
    return path
