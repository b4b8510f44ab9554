"""A run's commits to its workspace: `transact` for a writer that commits again and again.

`workspace.transact` hands each caller a copy of every dataset and keeps a
view of its own, so a commit costs copies of the whole tree: at 100,000 tasks,
several dicts of 100,000 entries for each of `e3 start`'s flushes. A
`WorkspaceWriter` keeps the datasets of the last commit it knows and changes
them in place, so a commit costs its changes and the git trees they touch. It
takes the same lock and moves the ref with the same compare-and-swap; when
another writer moved the workspace meanwhile, it reads the newest tree and
says so.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

from e3.errors import Conflict, RefMoved, UsageError, WorkspaceNotFound
from e3.model.paths import TreePath, format_tree_path
from e3.repo import workspace
from e3.storage import refs

if TYPE_CHECKING:
    from e3.storage.repository import Repository


class WorkspaceWriter:
    """Commits datasets to one workspace, starting from `commit` with `datasets` (as read by the
    caller, e.g. e3 start's snapshot; the writer keeps its own copy)."""

    def __init__(self, repo: "Repository", ws: str, commit: str, datasets: Mapping[TreePath, str]) -> None:
        self.repo = repo
        self.ws = ws
        self.commit = commit
        self._datasets = dict(datasets)

    def prepare(self) -> None:
        """Load what a commit needs (git's objects, the commit's tree) before the first one."""
        from e3.storage.git_objects import NewObjects

        new = NewObjects(self.repo)
        new.tree(new.commit_tree(self.commit))

    def transact(
        self, fn: Callable[[Mapping[TreePath, str]], "workspace.Changes | None"], message: str
    ) -> tuple[str, dict[TreePath, str] | None]:
        """Commit `fn(newest datasets)`'s changes, as `workspace.transact` does; `fn` reads the
        mapping it is given and must not change it. Returns the workspace's commit, and its
        datasets if another writer had moved it since this writer's last commit (else None:
        the datasets are the caller's with its changes)."""
        repo, ws = self.repo, self.ws
        name = workspace.ref_name(ws)
        with workspace.workspace_lock(repo, ws, "dataset_write"):
            head = refs.read(repo, name)
            if head is None:
                raise WorkspaceNotFound(f"workspace {ws} does not exist", workspace=ws)
            moved = head != self.commit
            if moved:
                entries = workspace.read_entries(repo, head)
                entries.pop(workspace.STATE_PATH, None)
                self.commit, self._datasets = head, entries
            effective = workspace.effective_changes(self._datasets, fn(self._datasets))
            if workspace.STATE_PATH in effective:
                raise UsageError(f"invalid dataset path {format_tree_path(workspace.STATE_PATH)!r}")
            if effective:
                commit = workspace.write_commit(repo, head, effective, message)
                try:
                    refs.update(repo, name, commit, old=head, message=message)
                except RefMoved:
                    raise Conflict(f"workspace {ws} was changed by a writer that does not take its lock; try again") from None
                self.commit = commit
                for path, h in effective.items():
                    if h is None:
                        self._datasets.pop(path, None)
                    else:
                        self._datasets[path] = h
        return self.commit, dict(self._datasets) if moved else None
