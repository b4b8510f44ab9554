"""Which executor a run uses: the one named for it (`e3 start --executor`), else `e3.executor`
in the repository's config, else `local` (e3.exec.executors describes both)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from e3.exec.executors import Executor
    from e3.storage.repository import Repository

CONFIG_KEY = "e3.executor"
LOCAL_CONCURRENCY = 4
"""Executions at once on the local pool when not told (its number of warm workers)."""
CLUSTER_CONCURRENCY = 8
"""Executions handed to a Dask cluster at once per worker thread when not told: enough in flight
that no worker waits on a round trip to this process between tasks."""


def configured(repo: "Repository") -> str | None:
    """`e3.executor` from the repository's config, if set."""
    return repo.config(CONFIG_KEY)


def open_executor(repo: "Repository", name: str | None, concurrency: int | None) -> tuple["Executor | None", int]:
    """The executor called `name` (else the configured one, else local), and the concurrency to run it at.

    The local pool is started by its user when first needed (None here); a Dask
    cluster is connected to now, so that a cluster that cannot run the tasks is
    an error before anything runs (e3.errors.ExecutorUnavailable).
    """
    setting = name if name is not None else configured(repo) or "local"
    if setting.strip() in ("", "local"):  # the Dask executor's module is not even imported
        return None, concurrency or LOCAL_CONCURRENCY
    from e3.exec.dask_executor import DaskPool, parse_address

    address = parse_address(setting)
    if address is None:
        return None, concurrency or LOCAL_CONCURRENCY

    pool = DaskPool(repo, address)
    return pool, concurrency or CLUSTER_CONCURRENCY * pool.size
