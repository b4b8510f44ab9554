"""Starting e3-api-server: checks, the listening socket, and uvicorn.

The socket is bound here, before uvicorn starts, so that `--port 0` can name
the port it got (and the built-in provider its issuer URL) before the first
request. A server without authentication may listen only on loopback
addresses: anyone who can connect could otherwise read and change every
repository it serves.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e3.errors import UsageError
from e3.server.app import ServerConfig, build_app
from e3.server.auth import Provider, TokenCheck, auto_approve_from_env, parse_duration


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


@dataclass
class Prepared:
    config: ServerConfig
    sock: socket.socket
    url: str
    app: Any

    def run(self) -> None:
        import uvicorn

        cfg = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        uvicorn.Server(cfg).run(sockets=[self.sock])


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"cannot resolve --host {host}: {e.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror.lower()}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def prepare(
    *,
    repos: str | None,
    repo: str | None,
    host: str = "127.0.0.1",
    port: int = 3000,
    cors: bool = False,
    oidc: bool = False,
    public_url: str | None = None,
    token_expiry: str = "1h",
    refresh_token_expiry: str = "90d",
    auth_key: str | None = None,
    auth_issuer: str | None = None,
    auth_audience: str | None = None,
    executor: str | None = None,
    keep_jobs: str = "1h",
) -> Prepared:
    from e3.api.local import LocalRepository
    from e3.errors import NotARepository

    if repos is not None:
        d = Path(repos).resolve()
        if not d.is_dir():
            raise UsageError(f"--repos {repos}: not a directory")
        config = ServerConfig(repos_dir=d)
    else:
        p = Path(repo).resolve()  # type: ignore[arg-type]
        try:
            LocalRepository.open(p).close()
        except NotARepository:
            raise UsageError(f"--repo {repo}: not an e3 repository") from None
        config = ServerConfig(repo_path=p)
    config.cors = cors
    config.keep_jobs = parse_duration(keep_jobs)
    if executor is not None:
        from e3.exec.dask_executor import parse_address

        parse_address(executor)  # a malformed one is a usage error now, not at the first run
        config.executor = executor
    if auth_key:
        config.check = TokenCheck.from_pem_file(auth_key, auth_issuer or "", auth_audience or "")
    access = parse_duration(token_expiry)
    refresh = parse_duration(refresh_token_expiry)
    if not (oidc or auth_key) and not is_loopback(host):
        raise UsageError(
            f"refusing to listen on {host} without authentication "
            "(use --oidc or --auth-key, or a loopback address such as 127.0.0.1)"
        )
    sock = _bind(host, port)
    url = _url(host, sock.getsockname()[1])
    if oidc:
        config.provider = Provider(
            (public_url or url), access_lifetime=access, refresh_lifetime=refresh, auto_approve=auto_approve_from_env()
        )
        config.check = config.provider.check()
    return Prepared(config, sock, url, build_app(config))
