"""What a task's execution wrote, in chunks with offsets to read on from."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Output a task wrote: bytes of one stream, and where the next read starts.

    Asked for (`markers=True`), an execution's bounds come as chunks too, with no data:
    stream 'start' (with `execution_id` and `time`) and 'end' (with `status` and `time`)."""

    stream: str
    """'stdout' or 'stderr'; 'start' or 'end' for a marker."""
    data: bytes
    offset: int
    """Position in the task's log just after this chunk: give it back to read on from here."""
    execution_id: str | None = None
    time: float | None = None
    """Seconds since the epoch, of a marker."""
    status: str | None = None
    """An 'end' marker's outcome: success, failed, error or cancelled."""


@dataclass(frozen=True)
class LogRead:
    chunks: list[LogChunk]
    offset: int
    """Where to read on from (after the last chunk, or where reading began if there was none)."""
    complete: bool
    """True if the execution has ended: nothing more will come."""
    task_id: str = ""
    """The execution's task_id (whose log this is)."""
