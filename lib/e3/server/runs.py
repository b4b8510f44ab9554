"""Dataflow runs in the background of the server: started by one request, watched by others.

`POST dataflow` starts a run (202) in a thread of its own, which iterates the
local run's events and records each with its time. Clients poll the record
(`dataflow/execution?offset`, the original's shape), or stream it
(`dataflow/events?offset`, every event as it happens); `dataflow/cancel` asks
the run to stop, and the thread still records its last event. The newest run of
each workspace is kept after it ends, so a client that polls late still reads
how it ended.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Run:
    repo: str
    workspace: str
    handle: Any
    """The local implementation's DataflowRun."""
    id: str = field(default_factory=lambda: f"{time.time_ns():x}")
    started_at: str = field(default_factory=now_iso)
    completed_at: str | None = None
    events: list[tuple[str, Any]] = field(default_factory=list)
    """(time, event) in order; the last is RunFinished once the run ended."""
    error: Exception | None = None
    """What stopped the run other than its tasks (an E3Error), if anything."""
    cancelled: bool = False
    done: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def follow(self, offset: int = 0) -> Iterator[tuple[str, Any]]:
        """Events from `offset` on, waiting for each, until the run ends."""
        i = offset
        while True:
            with self.cond:
                while i >= len(self.events) and not self.done:
                    self.cond.wait(timeout=1.0)
                batch = self.events[i:]
                finished = self.done
            yield from batch
            i += len(batch)
            if finished and i >= len(self.events):
                return


class Runs:
    """The background runs of one server process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latest: dict[tuple[str, str], Run] = {}

    def start(self, repo: str, workspace: str, handle: Any) -> Run:
        run = Run(repo, workspace, handle)
        with self.lock:
            self.latest[(repo, workspace)] = run
        threading.Thread(target=self._carry_out, args=(run,), name=f"run-{workspace}", daemon=True).start()
        return run

    def get(self, repo: str, workspace: str) -> Run | None:
        with self.lock:
            return self.latest.get((repo, workspace))

    def active(self, repo: str, workspace: str) -> Run | None:
        run = self.get(repo, workspace)
        return run if run is not None and not run.done else None

    @staticmethod
    def _carry_out(run: Run) -> None:
        try:
            for event in run.handle.events():
                with run.cond:
                    run.events.append((now_iso(), event))
                    run.cond.notify_all()
        except Exception as e:  # an E3Error stopping the run; recorded for the pollers
            run.error = e
        finally:
            try:
                run.handle.close()
            except Exception:
                pass
            with run.cond:
                run.completed_at = now_iso()
                run.done = True
                run.cond.notify_all()
