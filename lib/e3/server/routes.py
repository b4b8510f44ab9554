"""The repository routes of e3-api-server (the original engine's, see upstream-api.md)."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from e3.api import wire as W


def beast2(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=W.BEAST2)


def routes(config: Any) -> list[Route]:
    async def list_repos(request: Request) -> Response:
        return beast2(W.success(W.Arr(W.S), config.repo_names()))

    return [Route("/api/repos", list_repos, methods=["GET"])]
