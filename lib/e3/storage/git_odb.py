"""git's object database read and written without libgit2: loose objects and packs without deltas.

e3 writes its own git objects (e3.storage.git_objects): small commits as loose
objects, larger ones as packs without deltas (e3.storage.git_pack). Reading
them back, and writing a few loose ones, needs only zlib and SHA-1; importing
pygit2 for it would cost a porcelain command such as `e3 get` or `e3 set` as
much time again as the rest of its start-up.

Every object read is checked against its id, as libgit2 does. What this module
does not read (an absent object, a delta from a pack git itself wrote, a damaged
file) is answered None, and the caller asks libgit2, which either knows it or
says what is wrong in its own words: this module is only ever a faster path to
the same answer.
"""
from __future__ import annotations

import mmap
import os
import struct
import time
import zlib

from e3.storage import git_pack
from e3.storage.files import into_directory, storage_error, write_exactly
from e3.storage.git_pack import TYPE_NAMES, PackError, object_header, object_id
from e3.storage.objects import GIT_TMP_PREFIX  # libgit2's prefix: gc and fsck treat both writers' leftovers alike

LOOSE_COMPRESSION = 1
"""zlib level of loose objects: git's core.looseCompression default."""

_KIND_OF = {name.encode(): kind for kind, name in TYPE_NAMES.items()}
_ABSENT = object()
_UNREADABLE = (IndexError, ValueError, struct.error, zlib.error, PackError)
"""What a damaged or foreign pack or index raises when read here: then libgit2 answers."""
RELIST = 1.0
"""Seconds between two looks at `objects/pack/` while nothing is missed."""
INDEX_AFTER = 256
"""Lookups in packs after which each pack's ids go into a dict of its own (a walk of a large tree
reads each of its blobs: a dict lookup per pack instead of a binary search in each). One dict per
pack, built once in the pack's life: a dict of every pack's ids, built again whenever a commit
added a pack, made a 100,000-task run's commits cost as much as every object it had written."""


class _Pack:
    """One pack and its version 2 index, mapped into memory until a look at the directory finds it gone."""

    __slots__ = ("idx", "pack", "count", "_offsets")

    def __init__(self, idx_path: str, pack_path: str):
        self.idx = _map(idx_path)
        self.pack = _map(pack_path)
        self.count = git_pack.index_count(self.idx, idx_path)
        self._offsets: dict[bytes, int] | None = None

    def offsets(self) -> dict[bytes, int]:
        """Every object id of the pack -> its offset (made once): for a walk that reads many of them."""
        offsets = self._offsets
        if offsets is None:
            offsets = self._offsets = {oid: offset for oid, _, offset in git_pack.index_entries(self.idx)}
        return offsets

    def offset(self, oid: bytes) -> int | None:
        return git_pack.index_offset(self.idx, self.count, oid)

    def read(self, offset: int) -> tuple[int, bytes] | None:
        """The whole object at `offset`, or None for a delta (its bytes depend on another object)."""
        pack = self.pack
        byte = pack[offset]
        kind, size, shift = (byte >> 4) & 7, byte & 0x0F, 4
        offset += 1
        while byte & 0x80:
            byte = pack[offset]
            size |= (byte & 0x7F) << shift
            shift += 7
            offset += 1
        if kind not in TYPE_NAMES:
            return None
        return kind, _inflate(memoryview(pack), offset, size)


class ObjectDatabase:
    """The git objects under one `objects/` directory, as far as this module reads them."""

    def __init__(self, objects_dir: str):
        self.objects_dir = objects_dir
        self.pack_dir = os.path.join(objects_dir, "pack")
        self._packs: dict[str, _Pack | None] = {}
        self._relist_at = 0.0
        self._lookups = 0

    def read(self, oid: bytes) -> tuple[int, bytes] | None:
        """(pack type number, bytes) of object `oid` (raw id), checked against its id; None when
        it is not here in a form this module reads, or does not match its id."""
        found = self._packed(oid)  # packed first, as git looks: most of e3's objects are
        if found is None or found is _ABSENT:
            loose = self._loose(oid)
            if loose is not None:
                found = loose
            elif found is _ABSENT:  # perhaps in a pack made since we looked
                self._list_packs()
                found = self._packed(oid)
        if found is None or found is _ABSENT or object_id(*found) != oid:
            return None
        return found

    def write_loose(self, kind: int, data: bytes) -> bytes:
        """Store an object as a loose file, as git does; return its id. Durable only after a
        sync of the file system (the caller's, once for all of a commit's objects). An object
        also in a pack gets a loose copy, which gc folds into its pack."""
        oid = object_id(kind, data)
        hexid = oid.hex()
        bucket = os.path.join(self.objects_dir, hexid[:2])
        path = os.path.join(bucket, hexid[2:])
        try:
            os.utime(path)  # stored already: freshened, as git does, so a concurrent gc keeps it
            return oid
        except OSError:
            pass
        raw = zlib.compress(object_header(kind, len(data)) + data, LOOSE_COMPRESSION)
        # A name of its own: two threads of one process (the server's) may write the same object.
        # In objects/ itself, where libgit2 writes its own: a kill leaves it where fsck calls it
        # a temporary and e3 start sweeps it (in a bucket, fsck took it for a misnamed object).
        tmp = os.path.join(self.objects_dir, f"{GIT_TMP_PREFIX}{os.getpid()}_{os.urandom(6).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
            try:
                write_exactly(fd, raw)
            finally:
                os.close(fd)
            into_directory(bucket, lambda: os.rename(tmp, path), tmp)  # whole or absent: readers never see a part
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise storage_error(e, path) from None
        return oid

    def _loose(self, oid: bytes) -> tuple[int, bytes] | None:
        hexid = oid.hex()
        try:
            with open(os.path.join(self.objects_dir, hexid[:2], hexid[2:]), "rb") as f:
                compressed = f.read()
            d = zlib.decompressobj()
            head = d.decompress(compressed, 32)  # "<type> <size>\0": what to expect before inflating more
            nul = head.find(b"\0")
            kind_size = head[:nul].split(b" ")
            kind = _KIND_OF.get(kind_size[0]) if nul > 0 and len(kind_size) == 2 else None
            if kind is None or not kind_size[1].isdigit():
                return None
            size, data = int(kind_size[1]), head[nul + 1 :]
            if len(data) > size:
                return None
            data += d.decompress(d.unconsumed_tail, size + 1 - len(data))  # one byte more shows a lie
        except (OSError, zlib.error):
            return None
        if len(data) != size or not d.eof:
            return None
        return kind, data

    def _packed(self, oid: bytes):
        """The object from a pack; None when a pack holds it in a form not read here; _ABSENT."""
        if time.monotonic() >= self._relist_at:
            self._list_packs()
        self._lookups += 1
        by_dict = self._lookups > INDEX_AFTER
        for pack in self._packs.values():
            if pack is None:
                continue
            try:
                offset = pack.offsets().get(oid) if by_dict else pack.offset(oid)
                if offset is not None:
                    return pack.read(offset)
            except _UNREADABLE:
                return None  # a damaged pack or index: its objects are found by libgit2, or not at all
        return _ABSENT

    def _list_packs(self) -> None:
        """Packs appear (a commit of another process) and go (a merge of small ones): look again
        on a miss, and every `RELIST` seconds, so a long-lived process lets go of removed ones.
        The pack table and the index are replaced, never changed while a reader may walk them."""
        self._relist_at = time.monotonic() + RELIST
        try:
            names = git_pack.pack_names(self.pack_dir)
        except OSError:
            names = []
        old = self._packs
        packs: dict[str, _Pack | None] = {}
        for name in names:
            if name in old:
                packs[name] = old[name]
                continue
            base = os.path.join(self.pack_dir, name)
            try:
                packs[name] = _Pack(base + ".idx", base + ".pack")
            except (OSError, *_UNREADABLE):
                packs[name] = None  # removed meanwhile, or not ours to read: libgit2 answers
        # Largest first: git's packs merge geometrically, so the first holds most objects and a
        # lookup seldom reaches the rest. A removed pack's maps (and its dict) go with it.
        self._packs = dict(sorted(packs.items(), key=lambda item: -(item[1].count if item[1] is not None else 0)))


def _map(path: str) -> mmap.mmap:
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def _inflate(buffer: memoryview, start: int, size: int) -> bytes:
    """`size` bytes inflated from the zlib stream at `start`, feeding it a piece at a time (the
    stream's end is known only once it is reached: slicing to the pack's end would copy it)."""
    d = zlib.decompressobj()
    out = []
    got = 0
    step = max(size + 64, 4096)
    while not d.eof:
        piece = d.unconsumed_tail
        if not piece:
            piece = buffer[start : start + step]
            if not piece:
                raise zlib.error("truncated object")
            start += len(piece)
        chunk = d.decompress(piece, size + 1 - got)  # never more than the header says, and one byte
        got += len(chunk)
        if got > size:
            raise zlib.error("object longer than its header says")
        out.append(chunk)
    if got != size:
        raise zlib.error("object shorter than its header says")
    return b"".join(out)
