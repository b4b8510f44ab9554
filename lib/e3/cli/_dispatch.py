"""`e3 CMD ARGS…`: run a built-in command, or else `e3-CMD` found on PATH (git's rule).

Built-in commands are the modules of `e3.cli`; a user's own `e3-foo` on PATH
becomes `e3 foo`. `e3 help CMD` shows the command's man page.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import e3
import e3.cli
from e3.cli._command import guarded
from e3.errors import EXIT_FATAL, EXIT_USAGE

PROG = "e3"
GROUPS = ("porcelain", "plumbing")


def builtin_commands() -> list[str]:
    import pkgutil  # here, with difflib and subprocess: a command run by name needs none of them

    return sorted(
        m.name.replace("_", "-") for m in pkgutil.iter_modules(e3.cli.__path__) if not m.name.startswith("_")
    )


def path_commands() -> list[str]:
    found = set()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        try:
            for name in os.listdir(d or "."):
                if name.startswith("e3-") and os.access(os.path.join(d or ".", name), os.X_OK):
                    found.add(name[3:])
        except OSError:
            continue
    return sorted(found)


def command_module(name: str):
    """The built-in module for `name`, or None."""
    if not name or name.startswith(("_", "-")) or "." in name or "/" in name:
        return None
    modname = "e3.cli." + name.replace("-", "_")
    if importlib.util.find_spec(modname) is None:
        return None
    return importlib.import_module(modname)


def main(argv: list[str] | None = None) -> int:
    return guarded(PROG, lambda: _main(list(sys.argv[1:] if argv is None else argv)))


def _main(argv: list[str]) -> int:
    if "_ARGCOMPLETE" in os.environ:
        _complete()
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_usage())
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        print(f"e3 version {e3.__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name == "help":
        return show_help(rest[0] if rest else None)
    module = command_module(name)
    if module is not None:
        return module.main(rest)
    external = shutil.which(f"e3-{name}")
    if external:
        try:
            os.execv(external, [external, *rest])
        except OSError as e:
            sys.stderr.write(f"e3: fatal: cannot run e3-{name}: {e.strerror}\n")
            return EXIT_FATAL
    import difflib

    close = difflib.get_close_matches(name, builtin_commands() + path_commands() + ["help"], n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; see 'e3 --help'"
    sys.stderr.write(f"e3: error: {name!r} is not an e3 command{hint}\n")
    return EXIT_USAGE


def _usage() -> str:
    lines = [
        "usage: e3 [--version] [--help] <command> [<args>]",
        "",
        "Built-in commands:",
    ]
    for name in builtin_commands():
        module = command_module(name)
        summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        lines.append(f"   {name:<16}{summary}")
    extra = [c for c in path_commands() if c not in builtin_commands()]
    if extra:
        lines += ["", "Commands found on PATH:", *(f"   {c}" for c in extra)]
    lines += ["", "'e3 help <command>' shows a command's manual page; 'e3 help' shows e3(1)."]
    return "\n".join(lines) + "\n"


def man_page(name: str | None) -> Path | None:
    """The roff page for `e3-NAME` (or e3 itself): installed, else rendered from the source tree."""
    page = "e3" if name is None else f"e3-{name}"
    for section in ("1", "5", "7"):
        for base in (Path(sys.prefix) / "share" / "man", Path(sys.base_prefix) / "share" / "man"):
            candidate = base / f"man{section}" / f"{page}.{section}"
            if candidate.is_file():
                return candidate
        source = Path(__file__).resolve().parents[3] / "man" / f"{page}.{section}.rst"
        if source.is_file():
            sys.path.insert(0, str(source.parent))
            from build_man import build_page

            import tempfile

            return Path(build_page(str(source), tempfile.mkdtemp(prefix="e3-man-")))
    return None


TOPICS = ("repository", "sdk")
"""Pages that are not commands: e3-repository(5), e3-sdk(7)."""


def show_help(name: str | None) -> int:
    if name is not None and command_module(name) is None and not shutil.which(f"e3-{name}") and name not in TOPICS:
        from e3.errors import UsageError

        raise UsageError(f"no manual entry for {name!r}: not an e3 command")
    page = man_page(name)
    if page is None:
        from e3.errors import NotFound

        raise NotFound(f"no manual entry for e3-{name}")
    if shutil.which("man"):
        import subprocess

        return subprocess.call(["man", "-l", str(page)])
    sys.stdout.write(page.read_text())
    return 0


def _complete() -> None:
    import argcomplete

    from e3.cli._command import Parser

    top = Parser(prog="e3")
    sub = top.add_subparsers(dest="command")
    for name in builtin_commands():
        module = command_module(name)
        build = getattr(module, "build_parser", None)
        if build is None:
            sub.add_parser(name)
            continue
        child = build()
        sub.add_parser(name, parents=[child], add_help=False, conflict_handler="resolve", description=child.description)
    commands = builtin_commands()
    for name in path_commands():
        if name not in commands:
            sub.add_parser(name)
    topics = sorted({*commands, *path_commands(), *TOPICS})
    sub.add_parser("help").add_argument("topic", nargs="?", choices=topics)  # `e3 help <TAB>`: command names
    from e3.cli import _complete

    _complete.attach(top)
    argcomplete.autocomplete(top)
