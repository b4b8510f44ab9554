"""e3 auth status|token|whoami: the stored credentials (see e3 login)."""
from e3.cli.login import auth_main as main, build_auth_parser as build_parser

__all__ = ["build_parser", "main"]
