"""e3-api-server: serve repositories over HTTP (the original engine's API)."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command
from e3.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        "e3-api-server",
        "Serve e3 repositories over HTTP, with the original engine's routes and encodings.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--repos", metavar="DIR", help="serve every repository in DIR (DIR/NAME/.e3), as /repos/NAME")
    which.add_argument("--repo", metavar="PATH", help="serve one repository, as /repos/default")
    p.add_argument("-H", "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("-p", "--port", type=_port, default=3000, help="port to listen on; 0 picks a free one (default: 3000)")
    p.add_argument("--cors", action="store_true", help="allow cross-origin requests from any origin")
    p.add_argument("--oidc", action="store_true", help="run the built-in OpenID provider (device flow for `e3 login`) and require its tokens")
    p.add_argument("--public-url", metavar="URL", help="the server's URL as clients see it: the built-in provider's issuer (default: http://HOST:PORT)")
    p.add_argument("--token-expiry", default="1h", metavar="DURATION", help="lifetime of access tokens from --oidc (default: 1h)")
    p.add_argument("--refresh-token-expiry", default="90d", metavar="DURATION", help="lifetime of refresh tokens from --oidc (default: 90d)")
    p.add_argument("--auth-key", metavar="PEM", help="require RS256 bearer tokens signed by this public key")
    p.add_argument("--auth-issuer", metavar="ISS", help="the `iss` that tokens must carry (with --auth-key)")
    p.add_argument("--auth-audience", metavar="AUD", help="the `aud` that tokens must carry (with --auth-key)")
    p.add_argument(
        "--keep-jobs", default="1h", metavar="DURATION",
        help="how long the outcome of a finished import, export or gc is kept for its poller (default: 1h)",
    )
    p.add_argument(
        "--executor", metavar="URL",
        help="where the runs it starts execute tasks: local, or a Dask cluster dask://HOST:PORT (default: each repository's e3.executor, else local)",
    )
    return p


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text}")
    return n


def _handle(args: argparse.Namespace) -> int:
    from e3.server import serve

    key_opts = (args.auth_key, args.auth_issuer, args.auth_audience)
    if any(key_opts) and not all(key_opts):
        raise UsageError("--auth-key, --auth-issuer and --auth-audience go together")
    if args.auth_key and args.oidc:
        raise UsageError("--oidc and --auth-key are two ways of checking tokens: choose one")
    server = serve.prepare(
        repos=args.repos,
        repo=args.repo,
        host=args.host,
        port=args.port,
        cors=args.cors,
        oidc=args.oidc,
        public_url=args.public_url,
        token_expiry=args.token_expiry,
        refresh_token_expiry=args.refresh_token_expiry,
        auth_key=args.auth_key,
        auth_issuer=args.auth_issuer,
        auth_audience=args.auth_audience,
        executor=args.executor,
        keep_jobs=args.keep_jobs,
    )
    out = sys.stdout
    out.write(f"e3-api-server listening on {server.url}\n")
    if server.config.single:
        out.write(f"serving one repository: {server.config.repo_path} as {server.url}/repos/default\n")
    else:
        out.write(f"serving repositories in {server.config.repos_dir} as {server.url}/repos/NAME\n")
    if server.config.provider is not None:
        out.write(f"built-in OpenID provider: log in with `e3 login {server.url}`\n")
    elif server.config.check is None:
        out.write("no authentication: listening on loopback only\n")
    out.flush()
    server.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    return command.run("e3-api-server", build_parser, _handle, argv)
