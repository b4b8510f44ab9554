"""Replacing a user's file in one step: write beside it, fsync, rename.

A reader of the path sees the old file or the new one, never half of one, and a
failure leaves the old file untouched and no temporary file behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from e3.errors import StorageError


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    target = Path(path)
    directory = target.parent
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, target)
        tmp_name = None
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise StorageError(f"cannot write {target}: {(e.strerror or str(e)).lower()}") from None
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
