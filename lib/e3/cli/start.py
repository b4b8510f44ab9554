"""`e3 start`: run a workspace's dataflow."""
from __future__ import annotations

import argparse
import sys
import time

from e3.cli import _command as command
from e3.errors import EXIT_INTERRUPTED, EXIT_NO


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        "e3 start",
        "Run every task of a workspace that is not up to date, in dataflow order, reusing every cached result.",
    )
    p.add_argument("repo", metavar="REPO", help="repository path")
    p.add_argument("workspace", metavar="WS", help="workspace name")
    p.add_argument("--filter", metavar="TASK", help="run only this task (its upstream is not run)")
    p.add_argument(
        "--concurrency", "-j", type=command.positive_int, metavar="N",
        help="tasks at once (default 4; on a Dask cluster, 8 per worker thread)",
    )
    p.add_argument("--force", action="store_true", help="run tasks even when a cached result exists")
    p.add_argument("--timeout", type=command.positive_float, metavar="SECONDS", help="fail a task that runs longer than this")
    p.add_argument("--spawn", action="store_true", help="spawn every task as its own process (no warm workers)")
    p.add_argument(
        "--executor", metavar="URL",
        help="where tasks run: local (warm workers here), or a Dask cluster dask://HOST:PORT (default: e3.executor in the repository's config, else local)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    return p


def _start(args: argparse.Namespace) -> int:
    from e3 import api
    from e3.api.values import RunFinished, TaskStarted

    repo = api.open(args.repo)
    progress = None
    summary = None
    try:
        run = repo.dataflow_start(
            args.workspace,
            task=args.filter,
            concurrency=args.concurrency,
            force=args.force,
            timeout=args.timeout,
            spawn=args.spawn,
            executor=args.executor,
        )
        progress = _Progress(quiet=args.quiet, live=sys.stderr.isatty())
        for event in run.events():
            if isinstance(event, TaskStarted):
                progress.started()
            elif isinstance(event, RunFinished):
                summary = event.summary
            else:
                progress.finished(event)
    except KeyboardInterrupt:
        if progress is not None:
            progress.close()
        sys.stderr.write("e3 start: cancelled: running tasks were stopped; run `e3 start` again to resume\n")
        return EXIT_INTERRUPTED
    progress.close()
    assert summary is not None
    for line in summary_lines(summary, args.repo, args.workspace):
        command.write_line(line)
    return 0 if summary.ok else EXIT_NO


def summary_lines(summary, repo: str, ws: str) -> list[str]:  # noqa: ANN001 - an e3.api.RunSummary
    from e3.api.values import CACHED, CANCELLED, FAILED, RAN, SKIPPED, STUCK

    lines = []
    for r in summary.tasks:
        if r.state == FAILED:
            lines.append(f"failed: {r.task}: {r.message} (log: e3 logs {repo} {ws}.{r.task})")
        elif r.state in (SKIPPED, STUCK):
            lines.append(f"{r.state}: {r.task}: {r.message}")
    for task, execution_id, why in summary.dropped:
        lines.append(f"dropped: {task}: {execution_id}: {why}")
    counts = ", ".join(
        f"{summary.count(s)} {s}" for s in (RAN, CACHED, FAILED, SKIPPED, STUCK, CANCELLED) if summary.count(s)
    )
    lines.append(f"{len(summary.tasks)} tasks: {counts or 'nothing to do'} in {summary.seconds:.2f}s")
    return lines


class _Progress:
    """Live counts on a terminal (rich); one plain line per settled task in a pipe."""

    def __init__(self, quiet: bool, live: bool) -> None:
        self.quiet = quiet
        self.counts: dict[str, int] = {}
        self.running = 0
        self.t0 = time.monotonic()
        self._live = None
        if live and not quiet:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._render(), console=Console(stderr=True), refresh_per_second=8, transient=True)
            self._live.start()

    def _render(self):
        from rich.text import Text

        done = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        return Text(f"{time.monotonic() - self.t0:6.1f}s  running {self.running}  {done}")

    def started(self) -> None:
        self.running += 1
        self._update()

    def finished(self, event) -> None:  # noqa: ANN001 - an e3.api.TaskFinished
        if event.state in ("ran", "failed", "cancelled"):
            self.running = max(0, self.running - 1)
        self.counts[event.state] = self.counts.get(event.state, 0) + 1
        if self._live is None and not self.quiet:
            took = f" ({event.seconds:.2f}s)" if event.state == "ran" else ""
            command.write_line(f"{event.state} {event.task}{took}")
        self._update()

    def _update(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 start", build_parser, _start, argv)
