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

No pygit2 here: this module knows the byte format only.
"""
from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import zlib
from typing import Sequence

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
ids barely shrinks, and deflate costs 3x more than storing (about 5 against 1.7 us an object)."""

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
    return _record_header(kind, len(data)) + zlib.compress(data, 0 if len(data) < STORE_BELOW else COMPRESSION)


def pack_bytes(records: Sequence[tuple[bytes, bytes]]) -> tuple[bytes, list[tuple[bytes, int, int]]]:
    """A pack of `records` ((raw id, record bytes), no duplicate ids) and (id, crc32, offset) of each record."""
    parts = [b"PACK", struct.pack(">II", 2, len(records))]
    offset = 12
    entries = []
    for oid, record in records:
        entries.append((oid, zlib.crc32(record), offset))
        parts.append(record)
        offset += len(record)
    body = b"".join(parts)
    return body + hashlib.sha1(body).digest(), entries


def index_bytes(entries: list[tuple[bytes, int, int]], pack_checksum: bytes) -> bytes:
    """A version 2 index of a pack's (id, crc32, offset) entries."""
    entries = sorted(entries)
    fanout = [0] * 256
    for oid, _, _ in entries:
        fanout[oid[0]] += 1
    total = 0
    for i in range(256):
        total += fanout[i]
        fanout[i] = total
    small, large = [], []
    for _, _, offset in entries:
        if offset < 0x80000000:
            small.append(offset)
        else:  # past 2 GiB: the 4-byte slot points into a table of 8-byte offsets
            small.append(0x80000000 | len(large))
            large.append(offset)
    n = len(entries)
    body = b"".join(
        [
            _IDX_MAGIC,
            struct.pack(">I", 2),
            struct.pack(">256I", *fanout),
            b"".join(oid for oid, _, _ in entries),
            struct.pack(f">{n}I", *(crc for _, crc, _ in entries)),
            struct.pack(f">{n}I", *small),
            struct.pack(f">{len(large)}Q", *large),
            pack_checksum,
        ]
    )
    return body + hashlib.sha1(body).digest()


def write_pack(pack_dir: str, objects: Sequence[tuple[int, bytes, bytes]], durable: bool = True) -> str:
    """Publish `objects` ((type, raw id, data), ids unique) as one pack in `pack_dir`; return its name `pack-<sha>`.

    `durable` fsyncs both files before they are renamed into place, so a crash
    after the caller moves a ref to one of these objects cannot lose them.
    """
    return _publish(pack_dir, [(oid, _record(kind, data)) for kind, oid, data in objects], durable)


def _publish(pack_dir: str, records: Sequence[tuple[bytes, bytes]], durable: bool) -> str:
    pack, entries = pack_bytes(records)
    checksum = pack[-20:]
    index = index_bytes(entries, checksum)
    name = "pack-" + checksum.hex()
    tmp_pack = _write_tmp(pack_dir, TMP_PACK_PREFIX, pack, durable)
    try:
        tmp_idx = _write_tmp(pack_dir, TMP_IDX_PREFIX, index, durable)
    except BaseException:
        unlink_if_present(tmp_pack)
        raise
    try:
        os.rename(tmp_pack, os.path.join(pack_dir, name + ".pack"))
        os.rename(tmp_idx, os.path.join(pack_dir, name + ".idx"))
    except BaseException:
        unlink_if_present(tmp_pack)
        unlink_if_present(tmp_idx)
        raise
    return name


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
    small = struct.unpack_from(f">{n}I", idx, base + 24 * n)
    large = base + 28 * n
    offsets = [o if not o & 0x80000000 else struct.unpack_from(">Q", idx, large + 8 * (o & 0x7FFFFFFF))[0] for o in small]
    return list(zip(oids, crcs, offsets))


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
    """
    records: dict[bytes, bytes] = {}
    merged = []
    for name in names:
        try:
            entries = read_index(os.path.join(pack_dir, name + ".idx"))
            with open(os.path.join(pack_dir, name + ".pack"), "rb") as f:
                pack = f.read()
            ours = _records(name, pack, entries)
        except PackError:
            continue
        merged.append(name)
        for oid, record in ours:
            records.setdefault(oid, record)
    if len(merged) < 2:
        return None, []
    # Commits first, then trees, then blobs (the type is in bits 4-6 of a record's first byte), as git orders them.
    ordered = sorted(records.items(), key=lambda item: (item[1][0] >> 4) & 7)
    return _publish(pack_dir, ordered, durable), merged


def _records(name: str, pack: bytes, entries: list[tuple[bytes, int, int]]) -> list[tuple[bytes, bytes]]:
    if pack[:8] != b"PACK\0\0\0\2" or struct.unpack_from(">I", pack, 8)[0] != len(entries):
        raise PackError(f"{name}.pack does not match its index")
    if hashlib.sha1(memoryview(pack)[:-20]).digest() != pack[-20:]:
        raise PackError(f"{name}.pack is damaged (checksum)")
    entries = sorted(entries, key=lambda e: e[2])
    ends = [e[2] for e in entries[1:]] + [len(pack) - 20]
    out = []
    for (oid, crc, offset), end in zip(entries, ends):
        record = pack[offset:end]
        if not record or (record[0] >> 4) & 7 not in TYPE_NAMES:
            raise PackError(f"{name}.pack holds deltas")
        if zlib.crc32(record) != crc:
            raise PackError(f"{name}.pack is damaged (object {oid.hex()})")
        out.append((oid, record))
    return out


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


def _write_tmp(pack_dir: str, prefix: str, data: bytes, durable: bool) -> str:
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
        write_exactly(fd, data)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_if_present(path)
        raise
    os.close(fd)
    return path
