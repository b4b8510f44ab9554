"""The client's tokens: stored per server, refreshed when they expire, `E3_TOKEN` first.

As the original CLI: `~/.e3/credentials.json` (or `$E3_CREDENTIALS_PATH`), a
JSON file `{"version": 1, "credentials": {SERVER: {accessToken, refreshToken,
expiresAt}}}` keyed by the server's origin (`http://host:port`), readable by its
owner only (0600, in a 0700 directory). `e3 login` fills it through the OAuth
2.0 device flow (RFC 8628) against the server's OpenID discovery; a stored
token past its expiry is refreshed with its refresh token before use. With
`E3_TOKEN` set (scripts, CI), that token is sent to every server and the file is
not read.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from e3.api import http_client
from e3.errors import E3Error, UsageError

CLIENT_ID = "e3-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EXPIRY_MARGIN = 30
"""Seconds before its expiry that a stored access token is refreshed rather than sent."""


class AuthError(E3Error):
    """Logging in, or the token for a server, failed; the message says what to run."""


def origin(url: str) -> str:
    """`http://host:port/anything` -> `http://host:port`: the key credentials are stored under."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"not a server URL: {url!r} (expected http(s)://HOST[:PORT])")
    return f"{parts.scheme}://{parts.netloc}".lower()


def credentials_path() -> Path:
    env = os.environ.get("E3_CREDENTIALS_PATH")
    return Path(env) if env else Path.home() / ".e3" / "credentials.json"


def load() -> dict[str, dict[str, str]]:
    """Every stored credential by server; an absent or unreadable file is none."""
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    creds = data.get("credentials") if isinstance(data, dict) else None
    return {k: v for k, v in creds.items() if isinstance(v, dict)} if isinstance(creds, dict) else {}


def _save(creds: dict[str, dict[str, str]]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"version": 1, "credentials": creds}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One writer of the file at a time (two commands refreshing at once)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def store(server: str, tokens: dict[str, Any]) -> dict[str, str]:
    """Save a token endpoint's answer for `server`; returns the entry."""
    entry = {
        "accessToken": tokens["access_token"],
        "refreshToken": tokens.get("refresh_token", ""),
        "expiresAt": _iso(time.time() + float(tokens.get("expires_in", 3600))),
    }
    with _locked():
        creds = load()
        creds[origin(server)] = entry
        _save(creds)
    return entry


def remove(server: str) -> bool:
    """Forget `server`'s tokens; False if there were none."""
    with _locked():
        creds = load()
        if creds.pop(origin(server), None) is None:
            return False
        _save(creds)
    return True


def expired(entry: dict[str, str], margin: float = 0) -> bool:
    try:
        when = datetime.fromisoformat(entry["expiresAt"].replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return True
    return when - margin <= time.time()


def claims(token: str) -> dict[str, Any]:
    """A JWT's payload, read without checking it (for `auth whoami`; the server checks)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise AuthError("stored token is not a JWT") from None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------ talking to the provider


def _client() -> Any:
    return http_client.client(timeout=30, follow_redirects=False)


def _json(server: str, what: str, send: Callable[[Any], Any]) -> tuple[int, dict]:
    """(status, JSON object) of a request; a body that is no JSON object is an empty dict."""
    httpx = http_client.httpx()

    try:
        with _client() as c:
            r = send(c)
    except httpx.HTTPError as e:
        raise AuthError(f"{server}: cannot {what}: {_net_problem(e)}") from None
    try:
        body = r.json()
    except ValueError:
        body = None
    return r.status_code, body if isinstance(body, dict) else {}


def _net_problem(e: Exception) -> str:
    httpx = http_client.httpx()

    if isinstance(e, httpx.ConnectError):
        return "connection refused or host unreachable"
    if isinstance(e, httpx.TimeoutException):
        return "timed out"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def discovery(server: str) -> dict:
    """The server's OpenID configuration (it must run the built-in provider, or another)."""
    server = origin(server)
    status, body = _json(server, "read its OpenID configuration",
                         lambda c: c.get(f"{server}/.well-known/openid-configuration"))
    if status != 200 or "token_endpoint" not in body or "device_authorization_endpoint" not in body:
        raise AuthError(f"{server} offers no login (is it running with --oidc?)")
    return body


def start_device(server: str, disc: dict) -> dict:
    """RFC 8628 3.1: ask for a device code and the user code to approve."""
    status, body = _json(origin(server), "start the login",
                         lambda c: c.post(disc["device_authorization_endpoint"], data={"client_id": CLIENT_ID}))
    if status != 200 or "device_code" not in body:
        raise AuthError(f"{origin(server)}: cannot start the login: {body.get('error', status)}")
    return body


def poll_tokens(server: str, disc: dict, device: dict, sleep: Callable[[float], None] = time.sleep) -> dict:
    """RFC 8628 3.4-3.5: poll the token endpoint until the code is approved, denied or expired."""
    interval = float(device.get("interval", 5))
    deadline = time.monotonic() + float(device.get("expires_in", 300))
    while time.monotonic() < deadline:
        sleep(interval)
        status, body = _json(origin(server), "finish the login", lambda c: c.post(disc["token_endpoint"], data={
            "grant_type": DEVICE_GRANT, "device_code": device["device_code"], "client_id": CLIENT_ID}))
        if status == 200 and "access_token" in body:
            return body
        err = body.get("error")
        if err == "authorization_pending":
            continue
        if err == "slow_down":
            interval += 5
            continue
        if err == "access_denied":
            raise AuthError(f"{origin(server)}: login denied")
        if err == "expired_token":
            raise AuthError(f"{origin(server)}: login code expired before it was approved")
        raise AuthError(f"{origin(server)}: login failed: {err or status}")
    raise AuthError(f"{origin(server)}: login code expired before it was approved")


def refresh(server: str, entry: dict[str, str]) -> dict[str, str]:
    """Trade the refresh token for new tokens and store them."""
    server = origin(server)
    disc = discovery(server)
    status, body = _json(server, "refresh the login", lambda c: c.post(disc["token_endpoint"], data={
        "grant_type": "refresh_token", "refresh_token": entry.get("refreshToken", ""), "client_id": CLIENT_ID}))
    if status != 200 or "access_token" not in body:
        raise AuthError(f"session with {server} expired and cannot be refreshed ({body.get('error', status)}); run: e3 login {server}")
    return store(server, body)


def token_for(server: str, required: bool = False) -> str | None:
    """The bearer token to send to `server`: `E3_TOKEN`, else the stored one (refreshed if due).

    None when there is none and it is not `required` (a server without auth
    needs none; if it wants one, it answers 401 and the caller says to log in).
    """
    env = os.environ.get("E3_TOKEN")
    if env:
        return env
    server = origin(server)
    entry = load().get(server)
    if entry is None:
        if required:
            raise AuthError(f"not logged in to {server}; run: e3 login {server}")
        return None
    if expired(entry, EXPIRY_MARGIN):
        if not entry.get("refreshToken"):
            raise AuthError(f"session with {server} expired; run: e3 login {server}")
        with _locked():
            fresh = load().get(server)  # another command may have refreshed it meanwhile
        if fresh and not expired(fresh, EXPIRY_MARGIN):
            return fresh["accessToken"]
        entry = refresh(server, entry)
    return entry["accessToken"]
