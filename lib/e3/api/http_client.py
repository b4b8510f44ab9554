"""httpx for e3's HTTP client: the one place it is imported, without what a synchronous client never runs.

`httpx()` returns the httpx module. Imported plainly, httpx loads its command-line
tool (`httpx._main`: click, rich, pygments) and httpcore loads trio and anyio for
its asynchronous locks, whenever those are installed: together they cost a remote
command most of its start-up, and e3's client (e3.api.remote, e3.api.credentials)
is synchronous and has no use for either.

Both libraries treat these as optional extras (`httpx[cli]`, `httpcore[trio]`,
`httpcore[asyncio]`) and import them under `try: ... except ImportError`. So for
the length of the first import of httpx and httpcore (which httpx would import
only when it builds its first client), a module not loaded yet is marked absent
in `sys.modules` (a None entry makes its import raise ImportError, as the import
system documents); they then take the path of an installation without the
extras, and the marks are taken off again, so anything else in the process still
imports those modules as usual. Only the asynchronous side of httpx in this
process is affected (an AsyncClient would find no async backend): e3's client
never builds one, and e3-api-server, which runs on anyio, never imports this
module. A module already loaded is left as it is; a version of either library
that cannot do without them is imported again, plainly.
"""
from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

NOT_FOR_A_SYNCHRONOUS_CLIENT = ("httpx._main", "trio", "anyio")
"""What httpx and httpcore import if installed, for their CLI and for async code only."""
_LIBRARIES = ("httpcore", "httpx")
"""Imported under the marks: httpx imports httpcore (its transport) only when a client is first built."""
_first_import = threading.Lock()


def httpx() -> ModuleType:
    """The httpx module, imported (the first time) without NOT_FOR_A_SYNCHRONOUS_CLIENT."""
    with _first_import:  # the marks are the first importer's alone
        marked = [] if all(n in sys.modules for n in _LIBRARIES) else [n for n in NOT_FOR_A_SYNCHRONOUS_CLIENT if n not in sys.modules]
        for name in marked:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            for name in _LIBRARIES:
                try:
                    importlib.import_module(name)
                except ImportError:
                    pass  # a version that cannot do without them: imported plainly, below or on first use
        finally:
            for name in marked:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]
        import httpx as module  # also waits for an import of httpx under way elsewhere
    return module
