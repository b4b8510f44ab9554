"""Create, deploy, inspect, export and remove workspaces; their history."""
from __future__ import annotations

import argparse
import time

from e3.cli import _command as command


def build_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 workspace", "Create, deploy, inspect, export and remove workspaces.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def add(name: str, help: str, *args: str) -> argparse.ArgumentParser:
        a = sub.add_parser(name, help=help, description=help)
        a.add_argument("repo", metavar="REPO")
        for arg in args:
            a.add_argument(arg.lower(), metavar=arg)
        return a

    add("create", "create an empty workspace", "WS")
    add("deploy", "deploy a package (NAME or NAME@VERSION) to a workspace", "WS", "PKG")
    export = add("export", "export a workspace's current values as a package zip", "WS", "ZIP")
    export.add_argument("--name", help="package name (default: the deployed package's)")
    export.add_argument("--version", dest="pkg_version", metavar="VERSION", help="package version (default: VERSION-HASH8)")
    add("import", "import a package zip and deploy it to a workspace (created if needed)", "WS", "ZIP")
    add("list", "list workspaces")
    add("remove", "remove a workspace", "WS")
    add("status", "show each task's state and the unset inputs", "WS")
    log = add("log", "list a workspace's history, newest first", "WS")
    log.add_argument("rev", nargs="?", metavar="REV", help="start from this revision (default: now)")
    log.add_argument("-n", "--max-count", type=int, metavar="N", help="show at most N commits")
    diff = add("diff", "name the datasets that changed between two revisions", "WS")
    diff.add_argument("a", nargs="?", metavar="A", help="older revision (default: the previous commit)")
    diff.add_argument("b", nargs="?", metavar="B", help="newer revision (default: now)")
    add("reset", "put an earlier revision's datasets back, as a new commit", "WS", "REV")
    return p


def _repo(args: argparse.Namespace):  # noqa: ANN202 - an e3.api.Repository
    from e3 import api

    return api.open(args.repo)


def _create(args: argparse.Namespace) -> None:
    _repo(args).workspace_create(args.ws)
    command.write_line(f"Created workspace: {args.ws}")
    command.write_line("Deploy a package with: e3 workspace deploy <repo> <ws> <pkg>[@<ver>]")


def _deploy(args: argparse.Namespace) -> None:
    from e3.api import names
    from e3.model.paths import format_tree_path

    name, version = names.package_spec(args.pkg)
    report = _repo(args).workspace_deploy(args.ws, name, version)
    spec = report.package.spec
    command.write_line(f"Deployed {spec} to workspace: {args.ws}")
    for path in report.kept:
        command.write_line(f"  kept {format_tree_path(path)}")
    for path in report.dropped:
        command.write_line(f"  dropped {format_tree_path(path)} (not an input of this type in {spec})")


def _export(args: argparse.Namespace) -> None:
    repo = _repo(args)
    with command.output_file(args.zip) as f:
        report = repo.workspace_export(args.ws, f, name=args.name, version=args.pkg_version)
    command.write_line(f"Exported workspace {args.ws} as {report.package.spec}")
    command.write_line(f"  Output: {args.zip}")
    command.write_line(f"  Package hash: {report.package.hash[:12]}...")
    command.write_line(f"  Objects: {report.object_count}")


def _import(args: argparse.Namespace) -> None:
    from e3.model.paths import format_tree_path

    repo = _repo(args)
    with command.open_zip(args.zip) as f:
        result = repo.workspace_import(args.ws, f)
    imported = result.imported
    command.write_line(f"Imported {imported.package.spec}")
    command.write_line(f"  Package hash: {imported.package.hash[:12]}...")
    command.write_line(f"  Objects: {imported.object_count}")
    command.write_line(f"Deployed to workspace: {args.ws}")
    for path in result.deployed.kept:
        command.write_line(f"  kept {format_tree_path(path)}")
    for path in result.deployed.dropped:
        command.write_line(f"  dropped {format_tree_path(path)}")


def _list(args: argparse.Namespace) -> None:
    workspaces = _repo(args).workspace_list()
    if not workspaces:
        command.write_line("No workspaces")
        return
    command.write_line("Workspaces:")
    for ws in workspaces:
        command.write_line(f"  {ws.name} ({ws.describe()})")


def _remove(args: argparse.Namespace) -> None:
    _repo(args).workspace_remove(args.ws)
    command.write_line(f"Removed workspace: {args.ws}")
    command.write_line("Run `e3 repo gc` to reclaim disk space")


def _status(args: argparse.Namespace) -> None:
    from e3.model.paths import format_tree_path

    st = _repo(args).workspace_status(args.ws)
    deployment = st.deployment
    w = command.write_line
    w(f"Workspace: {args.ws}")
    w(f"Package: {deployment.spec} (deployed {deployment.deployed_at:%Y-%m-%d %H:%M:%S} UTC)")
    if st.running_pid is not None:
        w(f"Running: e3 start, pid {st.running_pid or 'unknown'}")
    w("")
    w("Summary:")
    w(f"  Datasets: {st.datasets_set} set, {st.datasets_total - st.datasets_set} unset, {st.datasets_total} total")
    order = ("up-to-date", "stale", "never-run", "waiting", "queued", "running", "interrupted", "failed", "error")
    counts = st.counts()
    parts = [f"{counts[s]} {s.replace('-', ' ')}" for s in order if counts.get(s)]
    w(f"  Tasks: {', '.join(parts) or 'none'}")
    if st.tasks:
        w("")
        w("Tasks:")
        for t in st.tasks:
            w(f"  {t.name}: {t.describe()}")
            if t.depends_on:
                w(f"    depends on: {', '.join(t.depends_on)}")
    if st.unset_inputs:
        w("")
        w("Unset inputs:")
        for p in st.unset_inputs:
            w(f"  {format_tree_path(p)}")


def _log(args: argparse.Namespace) -> None:
    for i, entry in enumerate(_repo(args).workspace_log(args.ws, args.rev)):
        if args.max_count is not None and i >= args.max_count:
            break
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.time))
        lines = entry.message.splitlines() or [""]
        command.write_line(f"{entry.commit[:12]}  {when}  {lines[0]}")
        for more in lines[1:]:
            if more.strip():
                command.write_line(f"    {more}")


def _diff(args: argparse.Namespace) -> None:
    from e3.model.paths import format_tree_path

    diff = _repo(args).workspace_diff(args.ws, args.a, args.b)
    before, after = diff.old_deployment, diff.new_deployment
    if _package_of(before) != _package_of(after):
        show = lambda d: d.spec if d else "(not deployed)"  # noqa: E731
        command.write_line(f"P\t{show(before)} -> {show(after)}")
    for change in diff.changes:
        command.write_line(f"{change.kind}\t{format_tree_path(change.path)}")


def _package_of(deployment) -> tuple | None:  # noqa: ANN001 - an e3.api.Deployment or None
    return deployment and (deployment.package_name, deployment.package_version, deployment.package_hash)


def _reset(args: argparse.Namespace) -> None:
    result = _repo(args).workspace_reset(args.ws, args.rev)
    command.write_line(f"Reset workspace {args.ws} to {args.rev} ({len(result.changes)} datasets changed); now at {result.commit[:12]}")


ACTIONS = {
    "create": _create,
    "deploy": _deploy,
    "export": _export,
    "import": _import,
    "list": _list,
    "remove": _remove,
    "status": _status,
    "log": _log,
    "diff": _diff,
    "reset": _reset,
}


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 workspace", build_parser, lambda a: ACTIONS[a.action](a), argv)
