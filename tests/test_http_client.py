"""e3.api.http_client: httpx imported without what a synchronous client never runs, and TLS verified
as httpx's default verifies it, its certificates read on the first TLS connection.

What a command by URL loads is test_cli_remote's (real commands against a real server); this checks
the module's own promises: what it skips stays importable, and https is verified exactly as before.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from e3_testing.commands import command_env


def test_what_the_client_skips_stays_importable():
    """e3.api.http_client marks trio, anyio and httpx's CLI absent only while it imports httpx and
    httpcore: afterwards they import as usual, and an anyio loaded before is the one httpcore uses.
    trio, click and pygments are no dependency of e3: checked where installed (anyio, httpx's own
    dependency, and rich, e3's, always are), never skipped."""
    present = [n for n in ("trio", "anyio", "click", "rich", "pygments") if importlib.util.find_spec(n) is not None]
    assert {"anyio", "rich"} <= set(present)
    later = present + (["httpx._main"] if {"click", "pygments"} <= set(present) else [])  # its CLI imports them

    def probe(code: str) -> str:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=command_env(), check=True).stdout

    after = probe(
        "import importlib, sys\n"
        "from e3.api import http_client\n"
        "httpx = http_client.httpx()\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(present)!r}), 'httpx._main' in sys.modules)\n"
        f"print([importlib.import_module(n).__name__ for n in {later!r}])\n"
    )
    assert after == f"[] False\n{later!r}\n"
    before = probe(
        "import anyio\n"
        "from e3.api import http_client\n"
        "http_client.httpx()\n"
        "import httpcore._synchronization as s\n"
        "print(s.anyio is anyio)\n"
    )
    assert before == "True\n"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An https server on 127.0.0.1 with a self-signed certificate: (its URL, the certificate's file)."""
    import datetime
    import http.server
    import ipaddress
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/", d / "cert.pem"
    httpd.shutdown()
    httpd.server_close()


def _get(url: str, env: dict[str, str]) -> str:
    """GET `url` through a client of e3.api.http_client and through the standard library with its
    context (the capability download's way), in a new process; what each got, or its error's class."""
    probe = (
        "import http.client, sys, urllib.parse\n"
        "from e3.api import http_client\n"
        "tls = http_client.tls_context()\n"
        "try:\n"
        "    print(http_client.client(tls).get(sys.argv[1]).text)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, 'CERTIFICATE_VERIFY_FAILED' in str(e))\n"
        "u = urllib.parse.urlsplit(sys.argv[1])\n"
        "try:\n"
        "    c = http.client.HTTPSConnection(u.hostname, u.port, context=tls)\n"
        "    c.request('GET', '/')\n"
        "    print(c.getresponse().read().decode())\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, 'CERTIFICATE_VERIFY_FAILED' in str(e))\n"
    )
    full = command_env(env)
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if name not in env:
            full.pop(name, None)
    return subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, env=full, check=True).stdout


def test_https_is_verified_against_the_certificates_httpx_would_read(tls_server):
    url, cert = tls_server
    assert _get(url, {"SSL_CERT_FILE": str(cert)}) == "hello\nhello\n"
    # certifi's bundle (the default) does not hold this certificate: refused, whichever way the GET goes.
    assert _get(url, {}) == "ConnectError True\nSSLCertVerificationError True\n"
