"""Create, inspect, clean and remove repositories."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command


def build_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 repo", "Create, inspect, clean and remove e3 repositories.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a repository at PATH/.e3")
    create.add_argument("path", metavar="PATH")
    status = sub.add_parser("status", help="objects, sizes, refs, workspaces, queued and running executions")
    status.add_argument("path", metavar="PATH")
    gc = sub.add_parser("gc", help="remove unreachable objects past the grace period; pack git's objects")
    gc.add_argument("path", metavar="PATH")
    gc.add_argument("-n", "--dry-run", action="store_true", help="report what would be removed; remove nothing")
    gc.add_argument("--prune", metavar="AGE", default=None, help="grace period: 'now', 'never', '2.weeks.ago' (default) or a date")
    gc.add_argument("-v", "--verbose", action="store_true", help="list every object removed (or that would be)")
    remove = sub.add_parser("remove", help="delete PATH/.e3 after confirmation")
    remove.add_argument("path", metavar="PATH")
    remove.add_argument("-f", "--force", action="store_true", help="do not ask; remove even while the repository is in use")
    return p


def _create(args: argparse.Namespace) -> None:
    from e3.repository import create_repository

    repo = create_repository(args.path)
    command.write_line(f"Initialized empty e3 repository in {repo.root}")


def _status(args: argparse.Namespace) -> None:
    from e3.repo_status import status
    from e3.repository import open_repository

    st = status(open_repository(args.path))
    out = command.write_line
    out(f"repository:  {st.root}")
    out(f"objects:     {st.objects} ({human_bytes(st.object_bytes)})")
    out(
        f"git objects: {st.git_loose} loose ({human_bytes(st.git_loose_bytes)}), "
        f"{st.git_packed} packed ({human_bytes(st.git_pack_bytes)})"
    )
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
    if st.tmp_files:
        out(f"temporary files: {st.tmp_files} (removed by 'e3 repo gc' once old)")


def _gc(args: argparse.Namespace) -> None:
    from e3.gc import DEFAULT_PRUNE, gc
    from e3.repository import open_repository

    prune = args.prune or DEFAULT_PRUNE
    report = gc(open_repository(args.path), prune=prune, dry_run=args.dry_run)
    verb = "Would remove" if report.dry_run else "Removed"
    if args.verbose:
        for h, _ in report.removed:
            command.write_line(f"{'would remove' if report.dry_run else 'removed'} {h}")
    command.write_line(
        f"{verb} {len(report.removed)} unreachable object(s) ({human_bytes(report.removed_bytes)}); "
        f"{report.reachable} reachable; {report.kept_recent} unreachable kept (newer than {prune})"
    )
    if report.tmp_removed:
        command.write_line(f"{verb} {report.tmp_removed} temporary file(s)")
    if report.git_packed:
        command.write_line(report.git_packed[0].upper() + report.git_packed[1:])
    if report.git_loose_removed and not report.dry_run:
        command.write_line(f"Pruned {report.git_loose_removed} unreachable loose git object(s)")


def _remove(args: argparse.Namespace) -> None:
    from e3.errors import Conflict, E3Error
    from e3.repository import open_repository, remove_repository

    repo = open_repository(args.path)
    if not args.force:
        busy = busy_locks(repo)
        if busy:
            raise Conflict(f"repository {repo.root} is in use ({busy[0]}); stop it first, or use --force")
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise E3Error(f"refusing to remove {repo.root} without confirmation: no terminal to ask; use --force")
        sys.stderr.write(f"Remove the e3 repository {repo.root} and everything in it? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            raise E3Error("not removed")
    remove_repository(repo)
    command.write_line(f"Removed e3 repository {repo.root}")


def busy_locks(repo) -> list[str]:  # noqa: ANN001 - a Repository
    """Descriptions of the repository locks held right now (a running start, deploy, gc...)."""
    import os

    from e3.exec import locks

    out = []
    try:
        names = sorted(os.listdir(repo.path("locks")))
    except FileNotFoundError:
        return out
    for n in names:
        if not n.endswith(".lock"):
            continue
        try:
            name = locks.check_name(n[: -len(".lock")])
            if locks.is_held(repo, name):
                who = locks.holder(repo, name)
                out.append(f"lock {name} held" + (f" by {who.describe()}" if who else ""))
        except Exception:  # noqa: BLE001 - a stray file in locks/ is not a reason to fail
            continue
    return out


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


ACTIONS = {"create": _create, "status": _status, "gc": _gc, "remove": _remove}


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 repo", build_parser, lambda a: ACTIONS[a.action](a), argv)
