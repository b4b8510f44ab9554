"""Tab completion of what exists in the repository: workspaces, packages, dataset paths, tasks.

argcomplete calls a completer with the word typed so far and the arguments
parsed before it; the repository is the one the command line names (its
REPO argument or --repo), else the one found from $E3_REPO or upward from
the current directory, as the command itself would find it. Completion never
fails aloud: a missing repository or a broken workspace completes nothing.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

Completer = Callable[..., Iterable[str]]


def _repository(parsed_args: Any):  # noqa: ANN202 - an e3.api.Repository or None
    from e3.cli._repository import open_repository

    try:
        named = getattr(parsed_args, "repo_option", None) or getattr(parsed_args, "repo", None)
        return open_repository(named)
    except Exception:  # noqa: BLE001 - nothing to offer is the answer
        return None


def _quietly(fn: Completer) -> Completer:
    def wrapped(prefix: str = "", parsed_args: Any = None, **_: Any) -> list[str]:
        try:
            return sorted(set(fn(prefix, parsed_args)))
        except Exception:  # noqa: BLE001 - a completer must never fail the shell
            return []

    return wrapped


@_quietly
def workspaces(prefix: str, parsed_args: Any) -> Iterable[str]:
    repo = _repository(parsed_args)
    return [] if repo is None else [w.name for w in repo.workspace_list()]


@_quietly
def packages(prefix: str, parsed_args: Any) -> Iterable[str]:
    """NAME, and NAME@VERSION once an @ is typed (or when a name has several versions)."""
    repo = _repository(parsed_args)
    if repo is None:
        return []
    found = repo.package_list()
    if "@" in prefix:
        return [p.spec for p in found]
    return [p.name for p in found] + [p.spec for p in found]


def _split(prefix: str) -> tuple[str, tuple[str, ...], str]:
    """`dev.inputs.x` -> ("dev", ("inputs",), "x"): the workspace, the tree typed so far, the last part."""
    parts = prefix.split(".")
    return parts[0], tuple(parts[1:-1]), parts[-1]


@_quietly
def dataset_paths(prefix: str, parsed_args: Any) -> Iterable[str]:
    """`d` -> `dev.`; `dev.` -> `dev.inputs.`, `dev.tasks.`; `dev.inputs.` -> `dev.inputs.x`…"""
    repo = _repository(parsed_args)
    if repo is None:
        return []
    if "." not in prefix:
        return [w.name + "." for w in repo.workspace_list()]
    ws, tree, _ = _split(prefix)
    base = ".".join((ws, *tree)) + "."
    out = []
    for entry in repo.dataset_list(ws, tree):
        name = entry.path[-1]
        out.append(base + name + ("." if entry.kind == "tree" else ""))
    return out


@_quietly
def workspace_tasks(prefix: str, parsed_args: Any) -> Iterable[str]:
    """`WS.TASK` for e3 logs: workspace names first, then the workspace's tasks."""
    repo = _repository(parsed_args)
    if repo is None:
        return []
    if "." not in prefix:
        return [w.name for w in repo.workspace_list()] + [w.name + "." for w in repo.workspace_list()]
    ws = prefix.split(".", 1)[0]
    return [f"{ws}.{t.name}" for t in repo.task_list(ws)]


@_quietly
def tasks(prefix: str, parsed_args: Any) -> Iterable[str]:
    """Task names of the workspace named before (the `workspace` argument)."""
    repo = _repository(parsed_args)
    ws = getattr(parsed_args, "workspace", None) or getattr(parsed_args, "ws", None)
    if repo is None or not ws:
        return []
    return [t.name for t in repo.task_list(ws)]


def directories(prefix: str) -> list[str]:
    import os

    head, tail = os.path.split(prefix)
    try:
        names = os.listdir(head or ".")
    except OSError:
        return []
    return [os.path.join(head, n) + "/" for n in names if n.startswith(tail) and os.path.isdir(os.path.join(head or ".", n))]


def repository_then(after: Completer | None) -> Completer:
    """For the first word, which is REPO or (when REPO is left out) the next argument:
    directories, and what the next argument completes to in the repository found from here."""

    def complete(prefix: str = "", parsed_args: Any = None, **kw: Any) -> list[str]:
        out = directories(prefix)
        if after is not None:
            out += list(after(prefix=prefix, parsed_args=parsed_args, **kw))
        return out

    return complete


def attach(parser: Any, repo_typed: bool | None = None) -> None:
    """Give every REPO argument (e3.cli._command.add_repository) its completer, in this parser
    and its subcommands: REPO's own (directories), then the next argument's.

    argparse gives an optional REPO no word when the words typed are just enough for the
    arguments after it, so `e3 start REPO <TAB>` would complete nothing: when a word already
    typed names a repository, REPO is made to take it, as the command will when it runs.
    """
    import argparse

    if repo_typed is None:
        repo_typed = _a_repository_is_typed()
    positionals = [a for a in parser._actions if not a.option_strings]
    for a in positionals:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                attach(sub, repo_typed)
    names = [a.dest for a in positionals]
    if "repo" in names:
        i = names.index("repo")
        after = positionals[i + 1] if i + 1 < len(positionals) else None
        positionals[i].completer = repository_then(getattr(after, "completer", None) if after else None)
        if repo_typed:
            positionals[i].nargs = None


def _a_repository_is_typed() -> bool:
    import os
    import shlex

    line = os.environ.get("COMP_LINE", "")[: int(os.environ.get("COMP_POINT", "0") or 0) or None]
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    if words and not line.endswith((" ", "\t")):
        words = words[:-1]  # the word being completed is not typed yet
    from e3.cli._repository import names_repository

    return any(not w.startswith("-") and names_repository(w) for w in words[1:])
