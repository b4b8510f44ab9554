"""e3 login / logout / auth: tokens for servers that want them (the OAuth 2.0 device flow)."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command


def build_login_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 login", "Log in to an e3 server with the OAuth 2.0 device flow and store its tokens.")
    p.add_argument("server", metavar="SERVER", help="the server, http(s)://HOST[:PORT] (a repository URL on it will do)")
    p.add_argument("--no-browser", action="store_true", help="print the approval URL and code; do not open a browser")
    return p


def build_logout_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 logout", "Forget the tokens stored for a server.")
    p.add_argument("server", metavar="SERVER", help="the server, http(s)://HOST[:PORT]")
    return p


def build_auth_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 auth", "Show stored credentials, print a token, or say who you are on a server.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("status", help="list the servers you are logged in to, and whether each token is still valid")
    t = sub.add_parser("token", help="print a valid access token for SERVER (refreshed if due), for curl and scripts")
    t.add_argument("server", metavar="SERVER")
    w = sub.add_parser("whoami", help="the identity in your token for SERVER (or for every server)")
    w.add_argument("server", metavar="SERVER", nargs="?")
    return p


def _login(args: argparse.Namespace) -> None:
    from e3.api import credentials as cred

    server = cred.origin(args.server)
    disc = cred.discovery(server)
    device = cred.start_device(server, disc)
    out = sys.stdout
    out.write(f"To log in to {server}, open {device['verification_uri']} and enter the code {device['user_code']}\n")
    out.write(f"(or open {device.get('verification_uri_complete', device['verification_uri'])})\n")
    out.flush()
    if not args.no_browser:
        import webbrowser

        try:
            webbrowser.open(device.get("verification_uri_complete", device["verification_uri"]))
        except Exception:  # no browser here: the URL is printed above
            pass
    tokens = cred.poll_tokens(server, disc, device)
    entry = cred.store(server, tokens)
    sub = cred.claims(entry["accessToken"]).get("sub", "unknown")
    command.write_line(f"Logged in to {server} as {sub} (token expires {entry['expiresAt']})")


def _logout(args: argparse.Namespace) -> None:
    from e3.api import credentials as cred

    server = cred.origin(args.server)
    if cred.remove(server):
        command.write_line(f"Logged out of {server}")
    else:
        command.write_line(f"Not logged in to {server}")


def _auth(args: argparse.Namespace) -> int | None:
    from e3.api import credentials as cred

    if args.action == "token":
        command.write_line(cred.token_for(args.server, required=True))
        return None
    creds = cred.load()
    if args.action == "status":
        if not creds:
            command.write_line(f"No stored credentials ({cred.credentials_path()})")
            return None
        for server, entry in sorted(creds.items()):
            state = "expired" if cred.expired(entry) else "valid"
            command.write_line(f"{server}\t{state}\texpires {entry.get('expiresAt', '?')}")
        return None
    servers = [cred.origin(args.server)] if args.server else sorted(creds)
    if not servers:
        command.write_line("Not logged in to any server")
        return None
    missing = 0
    for server in servers:
        entry = creds.get(server)
        if entry is None:
            command.write_line(f"{server}\tnot logged in")
            missing += 1
            continue
        c = cred.claims(entry["accessToken"])
        state = " (expired)" if cred.expired(entry) else ""
        command.write_line(f"{server}\t{c.get('sub', 'unknown')}\tissuer {c.get('iss', 'unknown')}{state}")
    return 1 if missing and args.server else None


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 login", build_login_parser, _login, argv)


def logout_main(argv: list[str] | None = None) -> int:
    return command.run("e3 logout", build_logout_parser, _logout, argv)


def auth_main(argv: list[str] | None = None) -> int:
    return command.run("e3 auth", build_auth_parser, _auth, argv)
