"""httpx for e3's HTTP client: the one place it is imported, and its clients built, paying only for what is used.

`httpx()` returns the httpx module; `client(**options)` an `httpx.Client` whose TLS
certificates are read on its first TLS connection.

The import. Imported plainly, httpx loads its command-line tool (`httpx._main`:
click, rich, pygments) and httpcore loads trio and anyio for its asynchronous
locks, whenever those are installed: together they cost a remote command most of
its start-up, and e3's client (e3.api.remote, e3.api.credentials) is synchronous
and has no use for either.

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

The certificates. httpx's default (`verify=True`) builds its SSL context when a
client is built, reading every certificate of the CA bundle, though a client of
an http:// server never makes a TLS connection. `tls_context()` is that same
context (`ssl.create_default_context` over `$SSL_CERT_FILE`, else `$SSL_CERT_DIR`,
else certifi's bundle, as httpx chooses) reading them when it first wraps a
socket, before any handshake: every https:// connection is verified as before.
"""
from __future__ import annotations

import importlib
import os
import ssl
import sys
import threading
from types import ModuleType
from typing import Any

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


def client(tls: ssl.SSLContext | None = None, **options: Any) -> Any:
    """`httpx.Client(**options)` verifying TLS with `tls` (default: a new `tls_context()`)."""
    return httpx().Client(verify=tls if tls is not None else tls_context(), **options)


def tls_context() -> ssl.SSLContext:
    """The SSL context httpx's `verify=True` makes, its certificates read on its first TLS connection."""
    ctx = _CertificatesOnFirstUse(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode CERT_REQUIRED, check_hostname on
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:  # as ssl.create_default_context does
        ctx.keylog_filename = keylog
    return ctx


class _CertificatesOnFirstUse(ssl.SSLContext):
    _loaded = False
    _loading = threading.Lock()

    def _certificates(self) -> None:
        with self._loading:
            if self._loaded:
                return
            if os.environ.get("SSL_CERT_FILE"):
                self.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
            elif os.environ.get("SSL_CERT_DIR"):
                self.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
            else:
                import certifi

                self.load_verify_locations(cafile=certifi.where())
            self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._certificates()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._certificates()
        return super().wrap_bio(*args, **kwargs)
