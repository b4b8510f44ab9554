"""Create, inspect, list, clean and remove repositories."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command


def build_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 repo", "Create, inspect, list, clean and remove e3 repositories.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a repository at REPO/.e3 (default: $E3_REPO, else here)")
    command.add_repository(create, help="the directory to create it in (default: $E3_REPO, else the current directory)")
    status = sub.add_parser("status", help="objects, sizes, refs, workspaces, queued and running executions")
    command.add_repository(status)
    status.add_argument("--json", action="store_true", help="print the status as one JSON document")
    gc = sub.add_parser("gc", help="remove unreachable objects past the grace period; pack git's objects")
    command.add_repository(gc)
    gc.add_argument("-n", "--dry-run", action="store_true", help="report what would be removed; remove nothing")
    gc.add_argument("--prune", metavar="AGE", default=None, help="grace period: 'now', 'never', '2.weeks.ago' (default) or a date")
    gc.add_argument("-v", "--verbose", action="store_true", help="list every object removed (or that would be)")
    ls = sub.add_parser("list", help="the repositories a server serves, or a directory holds")
    ls.add_argument("where", nargs="?", default=".", metavar="SERVER|DIR",
                    help="a server, http(s)://HOST[:PORT], or a directory of repositories (default: here)")
    ls.add_argument("--json", action="store_true", help="print the names as one JSON array")
    remove = sub.add_parser("remove", help="delete REPO/.e3 after confirmation (REPO must be named)")
    command.add_repository(remove, help="the repository to remove: named, never found")
    remove.add_argument("-f", "--force", action="store_true", help="do not ask; remove even while the repository is in use")
    return p


def _create(args: argparse.Namespace) -> None:
    import os

    from e3 import api

    repo = api.create(args.repo or os.environ.get("E3_REPO") or ".")
    command.write_line(f"Initialized empty e3 repository in {repo.location}")


def _status(args: argparse.Namespace) -> None:
    st = command.open_repository(args.repo).repository_status()
    if args.json:
        from e3.cli import _json

        _json.dump(st)
        return
    size = command.format_size
    out = command.write_line
    out(f"repository:  {st.location}")
    out(f"objects:     {st.objects} ({size(st.object_bytes)})")
    out(f"git objects: {st.git_loose} loose ({size(st.git_loose_bytes)}), {st.git_packed} packed ({size(st.git_pack_bytes)})")
    out(f"refs:        {st.refs}")
    out(f"packages:    {len(st.packages)}" + (f" ({', '.join(st.packages)})" if st.packages else ""))
    out(f"workspaces:  {len(st.workspaces)}")
    for ws in st.workspaces:
        deployed = f"deployed {ws.package}" if ws.package else "not deployed"
        out(f"  {ws.name}: {deployed}, {ws.datasets} dataset value(s), state {ws.commit[:12]}")
    out(f"task histories: {st.task_histories}")
    pending = sum(p for p, _ in st.queue.values())
    claimed = sum(c for _, c in st.queue.values())
    out(f"queued:      {pending} pending, {claimed} claimed")
    for runner, (p, c) in sorted(st.queue.items()):
        out(f"  {runner}: {p} pending, {c} claimed")
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(st.executions.items()))
    out(f"executions:  {sum(st.executions.values())} task ids" + (f" ({kinds})" if kinds else ""))
    out(f"running:     {len(st.running)}")
    for task_id in sorted(st.running):
        out(f"  {task_id}")
    if st.temporary_files:
        out(f"temporary files: {st.temporary_files} (removed by 'e3 repo gc' once old)")


def _gc(args: argparse.Namespace) -> None:
    report = command.open_repository(args.repo).repository_gc(dry_run=args.dry_run, prune=args.prune)
    verb = "Would remove" if report.dry_run else "Removed"
    if args.verbose:
        for h, _ in report.removed:
            command.write_line(f"{'would remove' if report.dry_run else 'removed'} {h}")
    command.write_line(
        f"{verb} {len(report.removed)} unreachable object(s) ({command.format_size(report.removed_bytes)}); "
        f"{report.reachable} reachable; {report.kept_recent} unreachable kept (newer than {report.prune})"
    )
    if report.temporary_removed:
        command.write_line(f"{verb} {report.temporary_removed} temporary file(s)")
    if report.git_packed:
        command.write_line(report.git_packed[0].upper() + report.git_packed[1:])
    if report.git_loose_removed and not report.dry_run:
        command.write_line(f"Pruned {report.git_loose_removed} unreachable loose git object(s)")


def _list(args: argparse.Namespace) -> None:
    from e3 import api

    names = api.list_repositories(args.where)
    if args.json:
        from e3.cli import _json

        _json.dump(names)
        return
    if not names:
        command.write_line(f"No repositories in {args.where}")
    for name in names:
        command.write_line(name)


def _remove(args: argparse.Namespace) -> None:
    from e3 import api
    from e3.errors import Conflict, E3Error, UsageError

    if args.repo is None:
        raise UsageError("name the repository to remove (e3 repo remove REPO): it is never found for you")
    repo = api.open(args.repo)
    if not args.force:
        busy = repo.repository_locks()
        if busy:
            raise Conflict(f"repository {repo.location} is in use ({busy[0].describe()}); stop it first, or use --force")
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise E3Error(f"refusing to remove {repo.location} without confirmation: no terminal to ask; use --force")
        sys.stderr.write(f"Remove the e3 repository {repo.location} and everything in it? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            raise E3Error("not removed")
    repo.repository_remove(force=args.force)
    command.write_line(f"Removed e3 repository {repo.location}")


ACTIONS = {"create": _create, "status": _status, "gc": _gc, "list": _list, "remove": _remove}


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 repo", build_parser, lambda a: ACTIONS[a.action](a), argv)
