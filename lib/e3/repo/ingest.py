"""Bringing values in from outside: a file or a stream, checked, hashed, optionally stored.

Input is Beast2 (taken byte for byte: its hash is the hash of the bytes as they
came) or `.east` / JSON text, which needs a type and is encoded canonically
(see e3.east). The format is given, or taken from the file name's extension,
or sniffed: bytes starting with the Beast2 magic are Beast2, anything else is
`.east` text.

Beast2 input streams through the hash (and into the store) without being held
in memory, and is accepted only once it is proved a whole, well-formed value of
its type (e3.beast2_stream), whatever its size. A file is read once: the check
reads it a piece at a time and hands each piece on to the hash and the store. A
stream (stdin) is copied first and its copy checked. Without -t, a value whose
checks need no East runtime (an array of numbers, a blob, a string, structs of
those) is checked without loading it.
"""
from __future__ import annotations

import hashlib
import tempfile
from typing import Any, BinaryIO, Callable

from e3.container import MAGIC, PREFIX_SIZE, header_problem
from e3.errors import FormatError, StorageError, TypeMismatch, UsageError
from e3.storage.objects import CHUNK, ObjectStore

SMALL = 1 << 20
"""Files up to this size are read whole and checked from memory; larger ones stream."""
FIRST_READ = 1 << 16
"""The first read of a file: asking for SMALL + 1 bytes at once allocates (and frees) 1 MiB per file,
which cost more than everything else done for a small value."""
FORMATS = ("east", "json", "beast2")


class Ingest:
    """Hash (and with a store, write) values; one instance serves many inputs."""

    def __init__(
        self,
        store: ObjectStore | None,
        type_spec: str | None = None,
        fmt: str | None = None,
        literally: bool = False,
    ):
        if fmt is not None and fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r} (expected east, json or beast2)")
        self.store = store
        self.fmt = fmt
        self.literally = literally
        self._type_spec = type_spec
        self._type: Any = None

    @property
    def type(self) -> Any:
        """The East type given with -t, parsed once (and only when needed: it loads the runtime)."""
        if self._type is None and self._type_spec is not None:
            from e3 import east

            self._type = east.parse_type(self._type_spec)
        return self._type

    # ------------------------------------------------------------ inputs

    def file(self, path: str) -> str:
        try:
            f = open(path, "rb", buffering=0)
            small = f.read(FIRST_READ)
            if len(small) == FIRST_READ:
                small += f.read(SMALL + 1 - FIRST_READ)
        except IsADirectoryError:
            raise UsageError(f"{path}: is a directory") from None
        except OSError as e:
            raise FormatError(f"cannot read {path}: {(e.strerror or str(e)).lower()}") from None
        with f:
            fmt = self.fmt or _format_of_path(path) or self._sniff(small[:PREFIX_SIZE])
            if len(small) <= SMALL:  # the common case, read whole with one call: no second pass
                return self._named(path, lambda: self._ingest_bytes(small, fmt, path))
            f.seek(0)
            return self._named(path, lambda: self._ingest(f, fmt, path, seekable=True))

    def stream(self, source: BinaryIO, name: str = "<stdin>") -> str:
        """Ingest a stream read once; give an unbuffered one (`sys.stdin.buffer.raw`) so that
        bytes reach the store as they arrive, not when a buffer fills."""
        head = _read_up_to(source, PREFIX_SIZE)
        fmt = self.fmt or self._sniff(head)
        whole = _Prefixed(head, source)
        return self._named(name, lambda: self._ingest(whole, fmt, name, seekable=False))

    def _sniff(self, head: bytes) -> str:
        # Without a type only Beast2 can be meant: let its header check name the problem.
        return "beast2" if head.startswith(MAGIC) or self._type_spec is None else "east"

    @staticmethod
    def _named(name: str, body: Callable[[], str]) -> str:
        """Run `body`, prefixing the input's name to a complaint about its content."""
        try:
            return body()
        except (FormatError, TypeMismatch) as e:
            raise type(e)(f"{name}: {e}") from None

    # ------------------------------------------------------------ work

    def _ingest(self, f: BinaryIO, fmt: str, name: str, seekable: bool) -> str:
        if fmt != "beast2":
            return self._text(f.read(), fmt, name)
        if self.store is not None:
            if seekable:
                return self.store.write_reading(f, self._check)
            return self.store.write_stream(f, check=self._check)
        if seekable:
            h = hashlib.sha256()
            self._check(f, h.update)
            return h.hexdigest()
        # A stream can be read once: spool it to an unnamed temporary file while hashing.
        with tempfile.TemporaryFile(prefix="e3-hash-") as spool:
            h = hashlib.sha256()
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while n := f.readinto(buf):  # type: ignore[attr-defined]
                h.update(view[:n])
                try:
                    spool.write(view[:n])
                except OSError as e:
                    raise StorageError(f"cannot spool {name}: {(e.strerror or str(e)).lower()}") from None
            spool.flush()
            spool.seek(0)
            self._check(spool)
            return h.hexdigest()

    def _ingest_bytes(self, data: bytes, fmt: str, name: str) -> str:
        if fmt != "beast2":
            return self._text(data, fmt, name)
        from e3 import east

        east.check_header(data)
        if not self.literally:
            east.decode(data, self.type)
        if self.store is not None:
            return self.store.write(data)
        return hashlib.sha256(data).hexdigest()

    def _check(self, f: BinaryIO, tee: Callable[[bytes], object] | None = None) -> None:
        """Refuse Beast2 bytes that are not one whole value (of the -t type, if given); read
        from the start of `f` (seekable) to its end, every byte given to `tee`."""
        head = f.read(PREFIX_SIZE)
        f.seek(0)
        problem = header_problem(head)
        if problem:
            raise FormatError(problem)
        if self.literally:
            if tee is not None:
                _copy_to(f, tee)
            return
        from e3 import beast2_stream

        beast2_stream.check_file(f, self.type, tee)

    def _text(self, data: bytes, fmt: str, name: str) -> str:
        from e3 import east, formats

        if self.type is None:
            raise UsageError(f"{name}: hashing .{fmt} input needs a type (-t TYPE)")
        t, value = formats.load(data, fmt, self.type)
        encoded = east.encode(value, t)
        if self.store is not None:
            return self.store.write(encoded)
        return hashlib.sha256(encoded).hexdigest()


def _format_of_path(path: str) -> str | None:
    for fmt in FORMATS:
        if path.endswith("." + fmt):
            return fmt
    return None


def _read_up_to(source: BinaryIO, n: int) -> bytes:
    head = b""
    while len(head) < n:
        more = source.read(n - len(head))
        if not more:
            break
        head += more
    return head


class _Prefixed:
    """A stream whose first bytes were already read (to sniff the format), put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self.head = head
        self.rest = rest

    def readinto(self, buf: bytearray | memoryview) -> int:
        if self.head:
            n = min(len(buf), len(self.head))
            buf[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        return self.rest.readinto(buf) or 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            data, self.head = self.head + self.rest.read(), b""
            return data
        buf = bytearray(size)
        return bytes(buf[: self.readinto(buf)])


def _copy_to(f: BinaryIO, sink: Callable[[bytes], object]) -> None:
    while chunk := f.read(CHUNK):
        sink(chunk)
