"""e3 logout: forget a server's tokens (see e3 login)."""
from e3.cli.login import build_logout_parser as build_parser, logout_main as main

__all__ = ["build_parser", "main"]
