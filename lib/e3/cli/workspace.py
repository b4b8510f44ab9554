"""Create, deploy, inspect, export and remove workspaces; their history."""
from __future__ import annotations

import argparse
import time

from e3.cli import _command as command
from e3.cli import _complete


def build_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 workspace", "Create, deploy, inspect, export and remove workspaces.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def add(name: str, help: str, *args: str) -> argparse.ArgumentParser:
        a = command.add_repository(sub.add_parser(name, help=help, description=help))
        for arg in args:
            action = a.add_argument(arg.lower(), metavar=arg)
            if arg == "WS" and name not in ("create", "import"):
                action.completer = _complete.workspaces
            elif arg == "PKG":
                action.completer = _complete.packages
        return a

    add("create", "create an empty workspace", "WS")
    deploy = add("deploy", "deploy a package (NAME or NAME@VERSION) to a workspace", "WS", "PKG")
    deploy.add_argument("--create", action="store_true", help="create the workspace if it does not exist (else that is an error)")
    export = add("export", "export a workspace's current values as a package zip", "WS", "ZIP")
    export.add_argument("--name", help="package name (default: the deployed package's)")
    export.add_argument("--version", dest="pkg_version", metavar="VERSION", help="package version (default: VERSION-HASH8)")
    add("import", "import a package zip and deploy it to a workspace (created if needed)", "WS", "ZIP")
    listing = add("list", "list workspaces")
    listing.add_argument("--json", action="store_true", help="print the workspaces as one JSON document")
    add("remove", "remove a workspace", "WS")
    status = add("status", "show each task's state and the unset inputs", "WS")
    status.add_argument("tasks", nargs="*", metavar="TASK", help="only these tasks (names, or patterns such as 'load-*')").completer = _complete.tasks
    status.add_argument(
        "--state", action="append", metavar="STATE", type=_states,
        help=f"only tasks in this state (repeat, or separate with commas): {', '.join(TASK_STATES)}",
    )
    status.add_argument("--json", action="store_true", help="print the status as one JSON document")
    graph = add("graph", "draw the dataflow: which task reads which input and which task's output", "WS")
    graph.add_argument("--format", choices=("text", "dot", "mermaid"), default="text", help="text (default), dot (Graphviz) or mermaid")
    graph.add_argument("--json", action="store_true", help="print the graph as one JSON document")
    log = add("log", "list a workspace's history, newest first", "WS")
    log.add_argument("rev", nargs="?", metavar="REV", help="start from this revision (default: now)")
    log.add_argument("-n", "--max-count", type=int, metavar="N", help="show at most N commits")
    diff = add("diff", "the datasets that changed between two revisions, with their values", "WS")
    diff.add_argument("a", nargs="?", metavar="A", help="older revision (default: the previous commit)")
    diff.add_argument("b", nargs="?", metavar="B", help="newer revision (default: now)")
    diff.add_argument("--name-status", action="store_true", help="only the kind of change and the path, no values")
    add("reset", "put an earlier revision's datasets back, as a new commit", "WS", "REV")
    return p


TASK_STATES = ("up-to-date", "stale", "never-run", "waiting", "queued", "running", "interrupted", "failed", "error")


def _states(text: str) -> list[str]:
    """`--state failed,error`: an argparse type."""
    states = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in states if s not in TASK_STATES]
    if unknown or not states:
        raise argparse.ArgumentTypeError(f"unknown state {(unknown or [text])[0]!r} (states: {', '.join(TASK_STATES)})")
    return states


def _repo(args: argparse.Namespace):  # noqa: ANN202 - an e3.api.Repository
    return command.open_repository(args.repo)


def _create(args: argparse.Namespace) -> None:
    _repo(args).workspace_create(args.ws)
    command.write_line(f"Created workspace: {args.ws}")
    command.write_line("Deploy a package with: e3 workspace deploy <repo> <ws> <pkg>[@<ver>]")


def _deploy(args: argparse.Namespace) -> None:
    from e3.api import names
    from e3.model.paths import format_tree_path

    name, version = names.package_spec(args.pkg)
    from e3.errors import WorkspaceNotFound

    try:
        report = _repo(args).workspace_deploy(args.ws, name, version, create=args.create)
    except WorkspaceNotFound as e:
        raise WorkspaceNotFound(f"{e} (create it with 'e3 workspace create', or deploy with --create)", workspace=args.ws) from None
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
    if args.json:
        from e3.cli import _json

        _json.dump(workspaces)
        return
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
    shown = _filtered(st.tasks, args.tasks, [s for group in args.state or [] for s in group])
    if args.json:
        import dataclasses

        from e3.cli import _json

        _json.dump(dataclasses.replace(st, tasks=shown))
        return
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
    if shown:
        w("")
        w("Tasks:" if len(shown) == len(st.tasks) else f"Tasks ({len(shown)} of {len(st.tasks)}):")
        for t in shown:
            w(f"  {t.name}: {t.describe()}")
            if t.depends_on:
                w(f"    depends on: {', '.join(t.depends_on)}")
    if st.unset_inputs:
        w("")
        w("Unset inputs:")
        for p in st.unset_inputs:
            w(f"  {format_tree_path(p)}")


def _filtered(tasks: list, names: list[str], states: list[str]) -> list:  # noqa: ANN001 - e3.api TaskState values
    """The tasks whose name matches one of `names` (fnmatch patterns) and whose state is one of `states`."""
    from fnmatch import fnmatchcase

    from e3.errors import TaskNotFound

    for name in names:
        if not any(fnmatchcase(t.name, name) for t in tasks):
            known = ", ".join(t.name for t in tasks) or "none"
            raise TaskNotFound(f"no task matches {name!r} (tasks: {known})", task=name)
    return [
        t for t in tasks
        if (not names or any(fnmatchcase(t.name, n) for n in names)) and (not states or t.state in states)
    ]


def _graph(args: argparse.Namespace) -> None:
    from e3.cli import _graph

    graph = _repo(args).dataflow_graph(args.ws)
    if args.json:
        from e3.cli import _json

        _json.dump(graph)
        return
    command.write_line(_graph.render(graph, args.format), end="")


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

    repo = _repo(args)
    diff = repo.workspace_diff(args.ws, args.a, args.b)
    before, after = diff.old_deployment, diff.new_deployment
    if _package_of(before) != _package_of(after):
        show = lambda d: d.spec if d else "(not deployed)"  # noqa: E731
        command.write_line(f"P\t{show(before)} -> {show(after)}")
    for change in diff.changes:
        line = f"{change.kind}\t{format_tree_path(change.path)}"
        if not args.name_status:
            line += f"\t{_shown(repo, change.old)} -> {_shown(repo, change.new)}"
        command.write_line(line)


SHORT = 60
"""Longest value text `workspace diff` prints inline; a longer value is shown by its hash and size."""


def _shown(repo, h: str | None) -> str:  # noqa: ANN001 - an e3.api.Repository
    """A dataset's value as diff shows it: `.east` text when short, else `hash… (size)`."""
    if h is None:
        return "(unassigned)"
    size = repo.object_size(h)
    brief = f"{h[:12]}… ({command.format_size(size)})"
    if size > 16 * SHORT + 64:  # its text cannot be short: not worth reading
        return brief
    from e3 import east
    from e3.errors import E3Error

    try:
        with repo.object_read(h) as f:
            t, value = east.decode(f.read())
        text = east.to_east(value, t)
    except E3Error:
        return brief
    return text if len(text) <= SHORT and "\n" not in text else brief


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
    "graph": _graph,
    "reset": _reset,
}


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 workspace", build_parser, lambda a: ACTIONS[a.action](a), argv)
