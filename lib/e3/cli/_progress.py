"""What `e3 start` shows while a run goes, built on the run's events (e3.api.values).

On a terminal (stderr), a live display redrawn several times a second, so the
clock moves between events:

    ⠹ 12.4s  50 tasks: 3 running, 12 done (4 ran, 8 cached), 1 failed, 34 to go
      running: fit-model 3.1s, load-b 0.4s, load-c 0.2s

and when the run ends, in its place, a short table of what ran (slowest
first), what was cached and what did not finish. In a pipe, one plain line per
settled task on stdout (`ran greet (1.48s)`), as scripts have always read it.
"""
from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from e3.api.values import RunSummary, TaskFinished, TaskStarted

SHOWN = 5
"""Names shown per line before `and N more`."""


def _names(items: list[str], limit: int = SHOWN) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"


class Progress:
    """Follows a run's events; `live` draws on stderr with rich, else settled tasks are plain lines."""

    def __init__(self, total: int | None, *, live: bool = False, lines: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        """`live`: draw on stderr (a terminal); else, with `lines`, a plain line per settled task on stdout."""
        self.total = total
        self.lines = lines
        self.clock = clock
        self.t0 = clock()
        self.running: dict[str, float] = {}
        """Task name -> when it started, in the order they started."""
        self.settled: dict[str, "TaskFinished"] = {}
        self._live = None
        self._console = None
        if live:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(stderr=True)
            # No redirection: stdout may be a pipe (--json) while stderr is the terminal.
            self._live = Live(
                console=self._console,
                get_renderable=self.render,
                refresh_per_second=8,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()

    # ------------------------------------------------------------ events

    def started(self, event: "TaskStarted") -> None:
        self.running[event.task] = self.clock()

    def finished(self, event: "TaskFinished") -> None:
        self.running.pop(event.task, None)
        self.settled[event.task] = event  # a task run again after an input changed counts once
        if self._live is None and self.lines:
            took = f" ({event.seconds:.2f}s)" if event.state == "ran" else ""
            sys.stdout.write(f"{event.state} {event.task}{took}\n")
            sys.stdout.flush()

    # ------------------------------------------------------------ the live display

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.settled.values():
            out[e.state] = out.get(e.state, 0) + 1
        return out

    def status_line(self) -> str:
        c = self.counts()
        done = c.get("ran", 0) + c.get("cached", 0)
        parts = [f"{len(self.running)} running", f"{done} done ({c.get('ran', 0)} ran, {c.get('cached', 0)} cached)"]
        unfinished = sum(n for s, n in c.items() if s not in ("ran", "cached"))
        if c.get("failed"):
            parts.append(f"{c['failed']} failed")
        others = unfinished - c.get("failed", 0)
        if others:
            parts.append(f"{others} not run")
        if self.total is not None:
            left = max(0, self.total - len(self.settled) - len(self.running))
            parts.append(f"{left} to go")
            head = f"{self.total} tasks: "
        else:
            head = ""
        return f"{self.clock() - self.t0:5.1f}s  {head}{', '.join(parts)}"

    def running_line(self) -> str:
        now = self.clock()
        longest = sorted(self.running.items(), key=lambda kv: kv[1])  # running longest first
        return "running: " + _names([f"{name} {now - since:.1f}s" for name, since in longest])

    def render(self):  # noqa: ANN201 - a rich renderable
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1))
        grid.add_row(Spinner("dots"), Text(self.status_line()))
        if self.running:
            grid.add_row("", Text(self.running_line(), overflow="ellipsis", no_wrap=True))
        return grid

    # ------------------------------------------------------------ the end

    def summary_table(self, summary: "RunSummary"):  # noqa: ANN201 - a rich Table
        from rich.table import Table

        by_state: dict[str, list] = {}
        for t in summary.tasks:
            by_state.setdefault(t.state, []).append(t)
        table = Table(title=f"{summary.workspace}: {len(summary.tasks)} tasks in {summary.seconds:.2f}s", title_justify="left", box=None, pad_edge=False)
        table.add_column("state")
        table.add_column("tasks", justify="right")
        table.add_column("which")
        for state in ("ran", "cached", "failed", "skipped", "stuck", "cancelled"):
            tasks = by_state.get(state, [])
            if not tasks:
                continue
            if state == "ran":
                tasks = sorted(tasks, key=lambda t: -t.seconds)  # slowest first: where the time went
                which = _names([f"{t.task} {t.seconds:.2f}s" for t in tasks])
            else:
                which = _names([t.task for t in tasks])
            table.add_row(state, str(len(tasks)), which)
        return table

    def close(self, summary: "RunSummary | None" = None) -> None:
        """Stop drawing; on a terminal, leave the summary table behind."""
        if self._live is None:
            return
        self._live.stop()
        self._live = None
        if summary is not None and summary.tasks:
            self._console.print(self.summary_table(summary))
