"""e3-api-server's authentication and start-up checks, and the client's credentials (real servers)."""
from __future__ import annotations

import http.client
import json
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from e3_testing.api_server import ApiServer
from e3_testing.commands import BIN, assert_one_line_error, command_env, run

ISS, AUD = "https://issuer.test", "e3-tests"


def _keypair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem


@pytest.fixture(scope="module")
def keys():
    return _keypair()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, keys):
    """A server requiring tokens signed by `keys` (--auth-key), serving one repository."""
    d = tmp_path_factory.mktemp("keyed")
    run("e3", "repo", "create", d / "r")
    (d / "pub.pem").write_bytes(keys[1])
    with ApiServer(["--repos", d, "--auth-key", d / "pub.pem", "--auth-issuer", ISS, "--auth-audience", AUD]) as s:
        yield s


def token(key, **over) -> str:
    now = int(time.time())
    claims = {"sub": "alice", "iss": ISS, "aud": AUD, "iat": now, "nbf": now, "exp": now + 600}
    claims.update(over)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256")


def _get(url: str, tok: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return httpx.get(url, headers=headers, timeout=30)


def test_server_without_auth_refuses_a_non_loopback_host(tmp_path):
    r = run(BIN / "e3-api-server", "--repos", tmp_path, "--host", "0.0.0.0", "--port", "0", expect=2)
    assert_one_line_error(r, "refusing to listen on 0.0.0.0 without authentication")


def test_server_wants_exactly_one_of_repos_and_repo(tmp_path):
    run(BIN / "e3-api-server", "--repos", tmp_path, "--repo", tmp_path, expect=2)
    run(BIN / "e3-api-server", expect=2)


def test_auth_key_options_go_together(tmp_path):
    r = run(BIN / "e3-api-server", "--repos", tmp_path, "--auth-key", tmp_path / "k.pem", "--port", "0", expect=2)
    assert_one_line_error(r, "go together")


def test_server_without_auth_says_it_listens_on_loopback_only(tmp_path):
    with ApiServer(["--repos", tmp_path]) as s:
        banner = s.proc.stdout.readline().decode() + s.proc.stdout.readline().decode()
        assert "no authentication: listening on loopback only" in banner
        assert s.url.startswith("http://127.0.0.1:")
        assert _get(s.url + "/api/repos").status_code == 200


def test_valid_token_is_accepted(keyed, keys):
    r = _get(keyed.url + "/api/repos", token(keys[0]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/beast2"


@pytest.mark.parametrize(
    "why, make",
    [
        ("missing", lambda k, other: None),
        ("expired", lambda k, other: token(k, exp=int(time.time()) - 120)),
        ("not yet valid", lambda k, other: token(k, nbf=int(time.time()) + 600)),
        ("wrongly signed", lambda k, other: token(other)),
        ("wrong issuer", lambda k, other: token(k, iss="https://elsewhere")),
        ("wrong audience", lambda k, other: token(k, aud="someone-else")),
        ("no exp", lambda k, other: token(k, exp=None)),
        ("HS256", lambda k, other: jwt.encode({"iss": ISS, "aud": AUD, "exp": int(time.time()) + 60}, "s" * 32, algorithm="HS256")),
        ("garbage", lambda k, other: "not.a.jwt"),
    ],
)
def test_bad_token_is_401(keyed, keys, why, make):
    other, _ = _keypair()
    r = _get(keyed.url + "/api/repos/r/status", make(keys[0], other))
    assert r.status_code == 401, (why, r.status_code, r.text)
    assert r.text.startswith("Unauthorized")


def test_oidc_discovery_and_jwks(tmp_path):
    with ApiServer(["--repos", tmp_path, "--oidc"]) as s:
        disc = httpx.get(s.url + "/.well-known/openid-configuration").json()
        assert disc["issuer"] == s.url
        assert disc["device_authorization_endpoint"] == s.url + "/oauth2/device_authorization"
        assert "urn:ietf:params:oauth:grant-type:device_code" in disc["grant_types_supported"]
        jwks = httpx.get(disc["jwks_uri"]).json()
        assert jwks["keys"][0]["alg"] == "RS256" and jwks["keys"][0]["kty"] == "RSA"
        assert _get(s.url + "/api/repos").status_code == 401


# ------------------------------------------------------------------ the device flow, end to end


@pytest.fixture(scope="module")
def oidc(tmp_path_factory):
    d = tmp_path_factory.mktemp("oidc")
    run("e3", "repo", "create", d / "r")
    with ApiServer(["--repos", d, "--oidc", "--token-expiry", "10s"]) as s:
        yield s


def _login(server_url: str, creds: Path, decision: str = "approve") -> subprocess.CompletedProcess:
    env = command_env({"E3_CREDENTIALS_PATH": str(creds)})
    env.pop("E3_TOKEN", None)
    p = subprocess.Popen([str(BIN / "e3"), "login", server_url, "--no-browser"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    first = p.stdout.readline().decode()
    code = re.search(r"enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})", first).group(1)
    # A person opens the page, sees the code, and decides.
    page = httpx.get(f"{server_url}/device", params={"user_code": code})
    assert page.status_code == 200 and code in page.text
    r = httpx.post(f"{server_url}/device/approve", data={"user_code": code, "decision": decision})
    assert r.status_code == 200
    out, err = p.communicate(timeout=60)
    return subprocess.CompletedProcess(p.args, p.returncode, first.encode() + out, err)


def test_device_flow_login_then_a_request_works(oidc, tmp_path):
    creds = tmp_path / "creds.json"
    done = _login(oidc.url, creds)
    assert done.returncode == 0, done.stderr
    assert b"Logged in to " + oidc.url.encode() + b" as dev-user" in done.stdout
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    entry = json.loads(creds.read_text())["credentials"][oidc.url]
    assert _get(oidc.url + "/api/repos", entry["accessToken"]).status_code == 200
    env = {"E3_CREDENTIALS_PATH": str(creds)}
    who = run("e3", "auth", "whoami", oidc.url, env=env)
    assert who.out.startswith(f"{oidc.url}\tdev-user\tissuer {oidc.url}")
    assert "\tvalid\t" in run("e3", "auth", "status", env=env).out


def test_device_flow_denied_is_one_line(oidc, tmp_path):
    done = _login(oidc.url, tmp_path / "creds.json", decision="deny")
    assert done.returncode == 128
    assert done.stderr.decode().strip() == f"e3 login: fatal: {oidc.url}: login denied"
    assert not (tmp_path / "creds.json").exists()


def test_expired_access_token_is_refreshed(oidc, tmp_path):
    creds = tmp_path / "creds.json"
    assert _login(oidc.url, creds).returncode == 0
    # Access tokens of this server last 10 s, less than the refresh margin: every use refreshes.
    before = json.loads(creds.read_text())["credentials"][oidc.url]
    fresh = run("e3", "auth", "token", oidc.url, env={"E3_CREDENTIALS_PATH": str(creds)}).out.strip()
    after = json.loads(creds.read_text())["credentials"][oidc.url]
    assert fresh == after["accessToken"] and after["refreshToken"] != before["refreshToken"]
    assert _get(oidc.url + "/api/repos", fresh).status_code == 200


def test_logout_forgets_the_server(oidc, tmp_path):
    creds = tmp_path / "creds.json"
    assert _login(oidc.url, creds).returncode == 0
    env = {"E3_CREDENTIALS_PATH": str(creds)}
    assert run("e3", "logout", oidc.url + "/repos/r", env=env).out == f"Logged out of {oidc.url}\n"
    r = run("e3", "auth", "token", oidc.url, env=env, expect=128)
    assert_one_line_error(r, f"not logged in to {oidc.url}", f"e3 login {oidc.url}")
    assert run("e3", "auth", "whoami", oidc.url, env=env, expect=1).out == f"{oidc.url}\tnot logged in\n"


def test_e3_token_is_used_instead_of_stored_credentials(tmp_path):
    r = run("e3", "auth", "token", "http://127.0.0.1:9", env={"E3_TOKEN": "abc", "E3_CREDENTIALS_PATH": str(tmp_path / "none")})
    assert r.out == "abc\n"


def test_login_to_a_server_without_provider_is_one_line(tmp_path):
    with ApiServer(["--repos", tmp_path]) as s:
        r = run("e3", "login", s.url, "--no-browser", env={"E3_CREDENTIALS_PATH": str(tmp_path / "c")}, expect=128)
        assert_one_line_error(r, s.url, "--oidc")


def test_login_to_nothing_listening_is_one_line(tmp_path):
    from e3_testing.api_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    r = run("e3", "login", url, "--no-browser", env={"E3_CREDENTIALS_PATH": str(tmp_path / "c")}, expect=128)
    assert_one_line_error(r, url, "connection refused")


# ------------------------------------------------------------------ paths checked before the disk


@pytest.mark.parametrize("raw", [
    "/api/repos/..%2F..%2Fetc/status",
    "/api/repos/%2e%2e/status",
    "/api/repos/r/workspaces/dev/datasets/inputs%2Fx",
    "/api/repos/r/workspaces/dev/datasets/../../x",
    "/api/repos/r%00/status",
    "/api/repos/r/workspaces/dev/datasets/a%5cb",
])
def test_traversal_in_the_request_path_is_400(keyed, keys, raw):
    host, port = keyed.url.rsplit("//", 1)[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.putrequest("GET", raw, skip_host=False)  # sent exactly as written, not normalised
    c.putheader("Authorization", f"Bearer {token(keys[0])}")
    c.endheaders()
    r = c.getresponse()
    assert r.status == 400, (raw, r.status, r.read())
    c.close()


def test_public_url_and_token_lifetimes_shape_the_provider(tmp_path):
    with ApiServer(["--repos", tmp_path, "--oidc", "--public-url", "https://e3.example.test",
                    "--token-expiry", "15m", "--refresh-token-expiry", "2d"]) as s:
        disc = httpx.get(s.url + "/.well-known/openid-configuration").json()
        assert disc["issuer"] == "https://e3.example.test"
        assert disc["token_endpoint"] == "https://e3.example.test/oauth2/token"
        code = httpx.post(s.url + "/oauth2/device_authorization", data={"client_id": "t"}).json()
        assert code["verification_uri"] == "https://e3.example.test/device"
        httpx.post(s.url + "/device/approve", data={"user_code": code["user_code"]})
        tokens = httpx.post(s.url + "/oauth2/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": code["device_code"]}).json()
        assert tokens["expires_in"] == 900
        access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        refresh = jwt.decode(tokens["refresh_token"], options={"verify_signature": False})
        assert access["iss"] == access["aud"] == "https://e3.example.test"
        assert access["exp"] - access["iat"] == 900 and refresh["exp"] - refresh["iat"] == 2 * 86400
        # The token works against the server that issued it, whatever URL it is reached by.
        assert _get(s.url + "/api/repos", tokens["access_token"]).status_code == 200


def test_a_bad_duration_is_a_usage_error(tmp_path):
    r = run(BIN / "e3-api-server", "--repos", tmp_path, "--oidc", "--token-expiry", "soon", "--port", "0", expect=2)
    assert_one_line_error(r, "invalid duration")


def test_cors_answers_a_preflight_only_when_asked(tmp_path):
    pre = {"Origin": "https://app.example.test", "Access-Control-Request-Method": "GET"}
    with ApiServer(["--repos", tmp_path, "--cors"]) as s:
        r = httpx.options(s.url + "/api/repos", headers=pre)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    with ApiServer(["--repos", tmp_path]) as s:
        r = httpx.options(s.url + "/api/repos", headers=pre)
        assert "access-control-allow-origin" not in r.headers
