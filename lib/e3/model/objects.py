"""What the model needs of an object store: bytes by hash (e3.storage.objects.ObjectStore is one).

The model sits below storage, so it names this shape rather than the store itself.
"""
from __future__ import annotations

from typing import Protocol


class Objects(Protocol):
    def read(self, obj: str) -> bytes: ...

    def write(self, data: bytes) -> str: ...
