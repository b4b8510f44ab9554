"""Who may use the server: RS256 bearer tokens, and a built-in provider that issues them.

As the original engine: every repository route wants `Authorization: Bearer
<JWT>`, signed RS256, with `exp`, `iss` and `aud` present and right and `nbf`
(when present) passed. The key is either a PEM public key given to the server
(`--auth-key`, with `--auth-issuer` and `--auth-audience`: tokens from your own
identity provider), or the key pair of the built-in provider (`--oidc`), which
publishes OpenID discovery and a JWKS, and hands out tokens through the OAuth 2.0
device authorization grant (RFC 8628): a CLI asks for a device code, a person
approves the user code on the `/device` page, the CLI's polling then receives an
access token (1 h by default) and a refresh token (90 days).

The built-in provider has no user accounts: whoever can open `/device` can
approve a code (as in the original, where it is meant for development and single
users). The JWT work is PyJWT's; nothing here parses or signs tokens by hand.
"""
from __future__ import annotations

import html
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from e3.errors import UsageError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_CODE_LIFETIME = 300
"""Seconds a device code waits for approval (the original's 5 minutes)."""
POLL_INTERVAL = 1
"""Seconds a client waits between polls of the token endpoint (RFC 8628 `interval`)."""
_USER_CODE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


class Unauthorized(Exception):
    """A request without a token the server accepts; the message says why (one line)."""


def parse_duration(text: str) -> int:
    """`5s`, `15m`, `1h`, `90d` -> seconds (the original's spelling of token lifetimes)."""
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not m:
        raise UsageError(f"invalid duration {text!r} (use e.g. 30s, 15m, 1h, 90d)")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


@dataclass
class TokenCheck:
    """Verifies bearer tokens against one RS256 public key, issuer and audience."""

    public_key: Any
    issuer: str
    audience: str

    @classmethod
    def from_pem_file(cls, path: str, issuer: str, audience: str) -> "TokenCheck":
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise UsageError(f"cannot read --auth-key {path}: {e.strerror}") from None
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            raise UsageError(f"--auth-key {path}: not a PEM public key") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise UsageError(f"--auth-key {path}: not an RSA key (tokens are RS256)")
        return cls(key, issuer, audience)

    def claims(self, authorization: str | None) -> dict:
        """The claims of the request's bearer token, or Unauthorized saying why not."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("missing bearer token")
        token = authorization[len("Bearer "):].strip()
        try:
            return jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("token not yet valid") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("invalid signature") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("invalid issuer") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("invalid audience") from None
        except jwt.PyJWTError as e:
            raise Unauthorized(f"invalid token: {e}") from None


@dataclass
class _Pending:
    user_code: str
    expires_at: float
    approved: bool = False
    denied: bool = False
    last_poll: float = 0.0


@dataclass
class Provider:
    """The built-in OpenID provider (`--oidc`): one key pair per server process."""

    base_url: str
    access_lifetime: int = 3600
    refresh_lifetime: int = 90 * 86400
    auto_approve: bool = False
    subject: str = "dev-user"
    _key: Any = field(default=None, repr=False)
    kid: str = ""
    _pending: dict[str, _Pending] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)

    def check(self) -> TokenCheck:
        """The bearer check for this provider's own tokens (issuer = audience = base URL)."""
        return TokenCheck(self._key.public_key(), self.base_url, self.base_url)

    # -------------------------------------------------------------- discovery

    def discovery(self) -> dict:
        b = self.base_url
        return {
            "issuer": b,
            "device_authorization_endpoint": f"{b}/oauth2/device_authorization",
            "token_endpoint": f"{b}/oauth2/token",
            "jwks_uri": f"{b}/.well-known/jwks.json",
            "response_types_supported": ["token"],
            "grant_types_supported": [DEVICE_GRANT, "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none"],
        }

    def jwks(self) -> dict:
        import json

        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    # -------------------------------------------------------------- device flow

    def start_device(self) -> dict:
        """RFC 8628 3.2: a new device code and the user code a person approves."""
        device_code = secrets.token_hex(32)
        user_code = "".join(secrets.choice(_USER_CODE_CHARS) for _ in range(8))
        user_code = f"{user_code[:4]}-{user_code[4:]}"
        now = time.time()
        with self._lock:
            for code in [c for c, p in self._pending.items() if p.expires_at < now]:
                del self._pending[code]
            self._pending[device_code] = _Pending(user_code, now + DEVICE_CODE_LIFETIME, approved=self.auto_approve)
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": f"{self.base_url}/device",
            "verification_uri_complete": f"{self.base_url}/device?user_code={user_code}",
            "expires_in": DEVICE_CODE_LIFETIME,
            "interval": POLL_INTERVAL,
        }

    def decide(self, user_code: str, approve: bool) -> bool:
        """A person approved (or denied) a user code on /device; False if no such live code."""
        user_code = user_code.strip().upper()
        now = time.time()
        with self._lock:
            for p in self._pending.values():
                if p.user_code == user_code and p.expires_at > now:
                    p.approved, p.denied = approve, not approve
                    return True
        return False

    def token(self, form: dict) -> tuple[int, dict]:
        """The token endpoint: (HTTP status, JSON body) for a device-code or refresh grant."""
        grant = form.get("grant_type", "")
        if grant == DEVICE_GRANT:
            code = form.get("device_code", "")
            now = time.time()
            with self._lock:
                p = self._pending.get(code)
                if p is None or p.expires_at < now:
                    self._pending.pop(code, None)
                    return 400, {"error": "expired_token"}
                if p.denied:
                    del self._pending[code]
                    return 400, {"error": "access_denied"}
                if not p.approved:
                    too_fast = now - p.last_poll < POLL_INTERVAL * 0.5
                    p.last_poll = now
                    return 400, {"error": "slow_down" if too_fast else "authorization_pending"}
                del self._pending[code]
            return 200, self._tokens(self.subject)
        if grant == "refresh_token":
            try:
                claims = jwt.decode(
                    form.get("refresh_token", ""),
                    self._key.public_key(),
                    algorithms=["RS256"],
                    issuer=self.base_url,
                    audience=self.base_url,
                    options={"require": ["exp", "iss", "aud"]},
                )
            except jwt.PyJWTError:
                return 400, {"error": "invalid_grant", "error_description": "invalid refresh token"}
            if claims.get("token_type") != "refresh":
                return 400, {"error": "invalid_grant", "error_description": "not a refresh token"}
            return 200, self._tokens(claims.get("sub", self.subject))
        return 400, {"error": "unsupported_grant_type"}

    def _sign(self, sub: str, kind: str, lifetime: int) -> str:
        now = int(time.time())
        payload = {
            "sub": sub, "iss": self.base_url, "aud": self.base_url,
            "iat": now, "nbf": now, "exp": now + lifetime, "token_type": kind,
            "jti": secrets.token_hex(8),  # two tokens issued in the same second still differ
        }
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self.kid})

    def _tokens(self, sub: str) -> dict:
        return {
            "access_token": self._sign(sub, "access", self.access_lifetime),
            "refresh_token": self._sign(sub, "refresh", self.refresh_lifetime),
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
        }

    # -------------------------------------------------------------- the /device page

    def device_page(self, user_code: str) -> str:
        code = html.escape(user_code or "")
        return _PAGE.format(
            body=f"""<p>Confirm that this code is the one shown in your terminal:</p>
<form method="POST" action="/device/approve">
<input name="user_code" value="{code}" autofocus size="10">
<button name="decision" value="approve" type="submit">Approve</button>
<button name="decision" value="deny" type="submit">Deny</button>
</form>""")

    def decided_page(self, ok: bool, approved: bool) -> str:
        if not ok:
            return _PAGE.format(body="<p>Invalid or expired code. Run <code>e3 login</code> again.</p>")
        word = "Approved" if approved else "Denied"
        return _PAGE.format(body=f"<p>{word}. You can close this window and return to your terminal.</p>")


_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>e3 device login</title></head>
<body><h1>e3 device login</h1>
{body}
</body></html>
"""


def auto_approve_from_env() -> bool:
    """`E3_AUTH_AUTO_APPROVE=1`: approve every device code at once (CI, as the original)."""
    return os.environ.get("E3_AUTH_AUTO_APPROVE") == "1"
