"""What e3.exec.pool and its warm workers (e3.exec.pool_worker) say to each other.

Two pipes carry frames: a 4-byte big-endian length, then one CBOR map. A third,
non-blocking pipe carries tokens, one byte per request.

Worker to pool:
- `{"ready": pid}` once, when the runtime and platform packages are loaded.
- `{"id", "pgid"}` when the task is spawned, so the pool can kill that group if
  the worker dies.
- `{"id", "outcome": [status, output hash, exit code, message]}` when it ends.
- `{"id", "recorded": HASH or None}` after the outcome, for a request with
  `record` (the execution's start time): the worker writes the terminal record
  after answering, while the pool owner goes on with the tasks the outcome
  released; with `record_first` (the pool has other requests queued, so the
  answer's latency matters less than a wake-up of the owner per frame) it
  writes the record first and answers with one frame holding both
  (`{"id", "outcome", "recorded"}`). None: it could not, and the pool owner
  writes the record.
- `{"id", "skipped": True}` for a request the pool took back (below), and for
  one pipelined behind it.
- `{"id", "outcome": ["cached", output, None, None]}` for a pipelined request
  with `memo` whose task has a reusable success, and `["skipped", None, None,
  None]` for one behind a request that did not succeed: neither ran, neither
  has a record (no "recorded" follows).

Pool to worker: one request map per execution (`id`, `repo`, `task`, `inputs`,
and what the run needs: `task_id`, `command`, `timeout`, `force_spawn`, `log`,
`durable`, `record`, ...; see WorkerPool). A key at the worker's default (`log`,
`log_start_end`, `durable` true; the others false or none) may be left out.
A pipelined request names with `after` the id of the request sent just before
it, whose output is its input given as None in `inputs`: the worker runs it on
that output if that one succeeded (or was cached), computing its task_id
itself (no `task_id`) and, with `memo`, checking the memo first.

Tokens: the pool writes one byte to the token pipe per request it sends behind a
running one. Before running such a request the worker takes one byte; a request
sent behind a long run can be taken back by the pool reading that byte first,
and the worker then skips it; reading n bytes takes back the last n requests
sent with one (the worker runs those before them). Whoever reads the byte owns the request. A request
sent to an idle worker (`direct`) has no byte: the worker starts it at once, and
it is never taken back (nothing is sent while a request taken back is yet to be
skipped, so the bytes in the pipe always belong to the requests not yet started
that were sent behind). A pipelined request (`after`) has no byte either: it is
never taken back alone; the worker skips it when the one it follows was taken
back or skipped.
"""
from __future__ import annotations

import os
import struct
from collections import deque

import cbor2

from e3.storage.files import read_exactly, write_exactly

HEADER = struct.Struct(">I")


def read_frame(fd: int) -> dict | None:
    """The next frame's map, or None at end of file."""
    head = read_exactly(fd, HEADER.size)
    if head is None:
        return None
    (n,) = HEADER.unpack(head)
    body = read_exactly(fd, n)
    if body is None:
        return None
    return cbor2.loads(body)


class FrameReader:
    """The frames arriving on a pipe, one at a time: a read takes whatever is there (usually one
    whole frame with its length, not a read for each), and keeps the rest for the next call."""

    def __init__(self, fd: int):
        self.fd = fd
        self._buf = b""
        self._frames: deque[dict] = deque()

    def read(self) -> dict | None:
        """The next frame's map, or None at end of file."""
        frames = self._frames
        while not frames:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            got, self._buf = split_frames(self._buf + chunk if self._buf else chunk)
            frames.extend(got)
        return frames.popleft()


def write_frame(fd: int, *messages: dict) -> None:
    """Frames for `messages`, with one write (the reader wakes once)."""
    out = b""
    for message in messages:
        body = cbor2.dumps(message)
        out += HEADER.pack(len(body)) + body
    write_exactly(fd, out)


def split_frames(buf: bytes) -> tuple[list[dict], bytes]:
    """The whole frames at the start of `buf`, and the bytes of a frame not yet complete."""
    frames = []
    at = 0
    while len(buf) - at >= HEADER.size:
        (n,) = HEADER.unpack_from(buf, at)
        if len(buf) - at - HEADER.size < n:
            break
        frames.append(cbor2.loads(buf[at + HEADER.size : at + HEADER.size + n]))
        at += HEADER.size + n
    return frames, buf[at:]


def take_token(tfd: int) -> bool:
    """Take one request's byte from the non-blocking token pipe (the worker, to start the request;
    the pool, to take it back); False if there is none left."""
    try:
        return os.read(tfd, 1) != b""
    except BlockingIOError:
        return False


def take_tokens(tfd: int, most: int) -> int:
    """Take up to `most` bytes from the non-blocking token pipe (the pool, to take back the last
    requests sent behind); how many there were."""
    try:
        return len(os.read(tfd, most)) if most > 0 else 0
    except BlockingIOError:
        return 0
