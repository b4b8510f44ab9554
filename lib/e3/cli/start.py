"""`e3 start`: run a workspace's dataflow."""
from __future__ import annotations

import argparse
import signal
import sys

from e3 import collector
from e3.cli import _command as command
from e3.cli import _complete
from e3.errors import EXIT_INTERRUPTED, EXIT_NO


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        "e3 start",
        "Run every task of a workspace that is not up to date, in dataflow order, reusing every cached result.",
    )
    command.add_repository(p)
    p.add_argument("workspace", metavar="WS", help="workspace name").completer = _complete.workspaces
    p.add_argument(
        "--filter", metavar="TASK", help="run this task (a name, or a pattern such as 'load-*') and what it needs first"
    ).completer = _complete.tasks
    p.add_argument("--only", action="store_true", help="with --filter: run only the tasks it names, not what they need first")
    p.add_argument("--dry-run", "-n", action="store_true", help="say what would run, what is cached and what waits, and why; run nothing")
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
    p.add_argument("--quiet", "-q", action="store_true", help="print only the summary (no display, no line per task)")
    p.add_argument("--json", action="store_true", help="print the run's events as JSON lines, the summary last")
    return p


def _start(args: argparse.Namespace) -> int:
    from e3.api.values import RunFinished, TaskStarted
    from e3.cli._progress import Progress

    if args.only and args.filter is None:
        from e3.errors import UsageError

        raise UsageError("--only needs --filter TASK (the tasks to run alone)")
    repo = command.open_repository(args.repo)
    if args.dry_run:
        return _dry_run(repo, args)
    # This process ends with the run: the plan and the dataset tree it loads are frozen out of
    # the garbage collector's way (e3.collector), not walked again by every full collection.
    collector.freeze_what_is_built()
    # Ctrl-C cancels the run: a parent may have left SIGINT ignored (a shell's `&` does), and
    # Python then never raises KeyboardInterrupt. A local run takes SIGINT itself (its scheduler);
    # a run on a server, followed here, would go on there and here for as long as it lasts.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.json:
        from e3.cli import _json
    progress = None
    summary = None
    try:
        run = repo.dataflow_start(
            args.workspace,
            task=args.filter,
            upstream=not args.only,
            concurrency=args.concurrency,
            force=args.force,
            timeout=args.timeout,
            spawn=args.spawn,
            executor=args.executor,
        )
        # On a terminal the display is on stderr, so stdout stays what scripts read (plain lines or JSON).
        progress = Progress(run.tasks, live=sys.stderr.isatty() and not args.quiet, lines=not (args.quiet or args.json))
        for event in run.events():
            if args.json:
                _json.line(_json.event(event))
            if isinstance(event, TaskStarted):
                progress.started(event)
            elif isinstance(event, RunFinished):
                summary = event.summary
            else:
                progress.finished(event)
    except KeyboardInterrupt:
        if progress is not None:
            progress.close()
        sys.stderr.write("e3 start: cancelled: running tasks were stopped; run `e3 start` again to resume\n")
        return EXIT_INTERRUPTED
    finally:
        if progress is not None:
            progress.close(summary)
    assert summary is not None
    if not args.json:
        for line in summary_lines(summary, args.repo, args.workspace):
            command.write_line(line)
    return 0 if summary.ok else EXIT_NO


def _dry_run(repo, args: argparse.Namespace) -> int:  # noqa: ANN001 - an e3.api.Repository
    plan = repo.dataflow_plan(args.workspace, task=args.filter, upstream=not args.only, force=args.force)
    if args.json:
        from e3.cli import _json

        _json.dump(plan)
        return 0
    width = max((len(t.task) for t in plan.tasks), default=0)
    for t in plan.tasks:
        command.write_line(f"{t.task.ljust(width)}  {t.action.ljust(10)}  {t.reason}")
    counts = ", ".join(
        f"{plan.count(a)} {words}"
        for a, words in (("run", "to run"), ("waits", "waiting"), ("cached", "cached"), ("up-to-date", "up to date"), ("stuck", "stuck"))
        if plan.count(a)
    )
    command.write_line(f"{len(plan.tasks)} tasks: {counts or 'nothing to do'} (dry run: nothing was run)")
    return 0


def summary_lines(summary, repo: str | None, ws: str) -> list[str]:  # noqa: ANN001 - an e3.api.RunSummary
    from e3.api.values import CACHED, CANCELLED, FAILED, RAN, SKIPPED, STUCK

    lines = []
    named = f"{repo} " if repo is not None else ""  # the hint names the repository as the user did
    for r in summary.tasks:
        if r.state == FAILED:
            lines.append(f"failed: {r.task}: {r.message} (log: e3 logs {named}{ws}.{r.task})")
        elif r.state in (SKIPPED, STUCK):
            lines.append(f"{r.state}: {r.task}: {r.message}")
    for task, execution_id, why in summary.dropped:
        lines.append(f"dropped: {task}: {execution_id}: {why}")
    counts = ", ".join(
        f"{summary.count(s)} {s}" for s in (RAN, CACHED, FAILED, SKIPPED, STUCK, CANCELLED) if summary.count(s)
    )
    lines.append(f"{len(summary.tasks)} tasks: {counts or 'nothing to do'} in {summary.seconds:.2f}s")
    return lines


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 start", build_parser, _start, argv)
