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
import os
import struct
import zlib
from typing import Sequence

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


def object_id(kind: int, data: bytes) -> bytes:
    """The raw 20-byte git id of an object: SHA-1 of `<type> <size>\\0<data>`."""
    h = hashlib.sha1(b"%s %d\0" % (TYPE_NAMES[kind].encode(), len(data)))
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


def pack_bytes(objects: Sequence[tuple[int, bytes, bytes]]) -> tuple[bytes, list[tuple[bytes, int, int]]]:
    """A pack of `objects` ((type, raw id, data), no duplicate ids) and (id, crc32, offset) of each record."""
    parts = [b"PACK", struct.pack(">II", 2, len(objects))]
    offset = 12
    entries = []
    for kind, oid, data in objects:
        record = _record_header(kind, len(data)) + zlib.compress(data, 0 if len(data) < STORE_BELOW else COMPRESSION)
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
    pack, entries = pack_bytes(objects)
    checksum = pack[-20:]
    index = index_bytes(entries, checksum)
    name = "pack-" + checksum.hex()
    tmp_pack = _write_tmp(pack_dir, TMP_PACK_PREFIX, pack, durable)
    try:
        tmp_idx = _write_tmp(pack_dir, TMP_IDX_PREFIX, index, durable)
    except BaseException:
        _unlink(tmp_pack)
        raise
    try:
        os.rename(tmp_pack, os.path.join(pack_dir, name + ".pack"))
        os.rename(tmp_idx, os.path.join(pack_dir, name + ".idx"))
    except BaseException:
        _unlink(tmp_pack)
        _unlink(tmp_idx)
        raise
    return name


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
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(path)
        raise
    os.close(fd)
    return path


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
