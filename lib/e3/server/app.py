"""The e3-api-server application: a Starlette app over the local repository implementation.

`build_app(config)` assembles it: the guard (path checks and bearer tokens, in
front of everything), the built-in OpenID provider's routes when `--oidc` is on,
the capability-URL data routes (`/api/uploads/:id`, `/api/downloads/:id`, which
take no token: the unguessable id is the capability, as in the original), and
the repository routes of `e3.server.routes`.

Serving a directory (`--repos DIR`): each repository is `DIR/NAME` (a directory
holding `.e3`). Serving one repository (`--repo PATH`): it is named `default`,
and creating or removing repositories answers 405.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from e3.server import names
from e3.server.auth import Provider, TokenCheck, Unauthorized

SINGLE_NAME = "default"
"""The name of the one repository a `--repo PATH` server serves."""


@dataclass
class ServerConfig:
    repos_dir: Path | None = None
    repo_path: Path | None = None
    check: TokenCheck | None = None
    provider: Provider | None = None
    cors: bool = False
    staging: str | None = None
    """Where uploads are staged (default: $TMPDIR)."""
    keep_jobs: float = 3600.0
    """Seconds a finished import, export or gc job is kept for its poller, once it ended."""
    executor: str | None = None
    """Where the runs it starts execute tasks (e3-api-server --executor); None: each repository's own choice."""

    @property
    def single(self) -> bool:
        return self.repo_path is not None

    def repo_dir(self, name: str) -> Path:
        """Where repository `name` lives; the name is checked before it becomes a path."""
        if self.single:
            return self.repo_path  # type: ignore[return-value]
        return self.repos_dir / names.check_repo_name(name)  # type: ignore[operator]

    def repo_names(self) -> list[str]:
        if self.single:
            return [SINGLE_NAME]
        from e3.api.local import repositories_in

        return repositories_in(self.repos_dir)  # type: ignore[arg-type]


class Guard:
    """ASGI middleware in front of every route: path checks, then bearer tokens on /api/repos.

    Pure ASGI (not BaseHTTPMiddleware) so that streamed bodies pass through
    untouched in both directions.
    """

    def __init__(self, app: Any, config: ServerConfig):
        self.app = app
        self.config = config

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            names.check_raw_path(scope.get("raw_path") or scope["path"].encode())
        except names.BadName as e:
            await _plain(send, 400, str(e), [(b"x-e3-error-kind", b"invalid_input"),
                                             (b"x-e3-error-message", quote(str(e), safe="").encode())])
            return
        path = scope["path"]
        if self.config.check is not None and (path == "/api/repos" or path.startswith("/api/repos/")):
            auth = None
            for k, v in scope["headers"]:
                if k == b"authorization":
                    auth = v.decode("latin-1")
            try:
                scope.setdefault("state", {})["claims"] = self.config.check.claims(auth)
            except Unauthorized as e:
                await _plain(send, 401, f"Unauthorized: {e}", [(b"www-authenticate", b'Bearer realm="e3"')])
                return
        await self.app(scope, receive, send)


async def _plain(send: Any, status: int, text: str, headers: list | None = None) -> None:
    body = text.encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())] + (headers or []),
    })
    await send({"type": "http.response.body", "body": body})


def _oidc_routes(provider: Provider) -> list[Route]:
    async def discovery(request: Request) -> Response:
        return JSONResponse(provider.discovery())

    async def jwks(request: Request) -> Response:
        return JSONResponse(provider.jwks())

    async def device_authorization(request: Request) -> Response:
        return JSONResponse(provider.start_device())

    async def token(request: Request) -> Response:
        form = await _form(request)
        status, body = provider.token(form)
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    async def device(request: Request) -> Response:
        return HTMLResponse(provider.device_page(request.query_params.get("user_code", "")))

    async def approve(request: Request) -> Response:
        form = await _form(request)
        approved = form.get("decision", "approve") != "deny"
        ok = provider.decide(form.get("user_code", ""), approved)
        return HTMLResponse(provider.decided_page(ok, approved), status_code=200 if ok else 400)

    return [
        Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/oauth2/device_authorization", device_authorization, methods=["POST"]),
        Route("/oauth2/token", token, methods=["POST"]),
        Route("/device", device, methods=["GET"]),
        Route("/device/approve", approve, methods=["POST"]),
    ]


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (OAuth requests, the approval page), read without python-multipart."""
    body = await request.body()
    if len(body) > 65536:
        return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def build_app(config: ServerConfig) -> Any:
    from e3.server import routes

    route_list: list[Any] = []
    if config.provider is not None:
        route_list += _oidc_routes(config.provider)
    route_list += routes.routes(config)
    app: Any = Starlette(routes=route_list)
    app.state.config = config
    if config.cors:
        from starlette.middleware.cors import CORSMiddleware

        app = CORSMiddleware(app, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"],
                             expose_headers=["X-Content-SHA256", "X-Content-Length"])
    return Guard(app, config)
