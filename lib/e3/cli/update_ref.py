"""Move, create or delete refs atomically, with compare-and-swap and a reflog."""
from __future__ import annotations

import argparse
import sys

from e3.cli import _command as command

PROG = "e3-update-ref"
USAGE = "e3-update-ref [-m MSG] REF NEW [OLD] | -d REF [OLD] | --stdin"


def build_parser() -> argparse.ArgumentParser:
    p = command.parser(
        PROG,
        "Point REF at commit NEW (with OLD: only if REF is still at OLD; an empty or all-zero OLD: only if REF "
        "does not exist). With -d delete REF. With --stdin apply update/create/delete/verify lines all or nothing.",
        usage=USAGE,
    )
    p.add_argument("-m", dest="message", metavar="MSG", help="reflog message (default: 'update-ref')")
    p.add_argument("-d", dest="delete", action="store_true", help="delete REF (checking OLD if given)")
    p.add_argument("--stdin", action="store_true", help="read a transaction from standard input")
    command.add_repository(p)
    p.add_argument("args", nargs="*", metavar="REF NEW OLD", help="the ref, its new value, its expected old value")
    return p


def _run(args: argparse.Namespace) -> None:
    from e3.storage import refs
    from e3.errors import UsageError
    from e3.storage.repository import discover_repository

    message = args.message if args.message is not None else "update-ref"
    if args.stdin:
        if args.args or args.delete:
            raise UsageError("--stdin takes no REF arguments and no -d")
        repo = discover_repository(args.repo)
        refs.transaction(repo, parse_stdin(repo, sys.stdin.buffer.read()), message)
        return
    if args.delete:
        if len(args.args) not in (1, 2):
            raise UsageError("-d takes REF [OLD]")
        repo = discover_repository(args.repo)
        name = refs.check_ref_name(args.args[0])
        old = _value(repo, args.args[1], old=True) if len(args.args) == 2 else None
        refs.transaction(repo, [refs.RefUpdate(name, refs.ZERO, old)], message)
        return
    if len(args.args) not in (2, 3):
        raise UsageError("expected REF NEW [OLD]")
    repo = discover_repository(args.repo)
    name = refs.check_ref_name(args.args[0])
    new = _value(repo, args.args[1], old=False)
    old = _value(repo, args.args[2], old=True) if len(args.args) == 3 else None
    refs.transaction(repo, [refs.RefUpdate(name, new, old)], message)


def _value(repo, text: str, old: bool) -> str:  # noqa: ANN001 - a Repository
    """A commit id from a revision; as OLD, '' or all zeros means 'must not exist'; as NEW zeros delete."""
    from e3.storage import refs
    from e3.repo import revision

    if text == refs.ZERO or (old and text == ""):
        return refs.ZERO
    return revision.resolve_commit(repo, text)


def parse_stdin(repo, data: bytes) -> list:  # noqa: ANN001 - a Repository
    """git's `update-ref --stdin` lines -> RefUpdates; any bad line is an error naming its number."""
    from e3.storage import refs
    from e3.errors import E3Error, FormatError

    ops = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("standard input is not utf-8") from None
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        words = line.split(" ")
        verb, rest = words[0], words[1:]
        try:
            if verb == "option" and rest == ["no-deref"]:
                continue  # e3 has no symbolic refs to dereference
            arity = {"update": (2, 3), "create": (2, 2), "delete": (1, 2), "verify": (1, 2)}.get(verb)
            if arity is None:
                raise FormatError(f"unknown command {verb!r} (expected update, create, delete or verify)")
            if not arity[0] <= len(rest) <= arity[1] or any(w == "" for w in rest[:1]):
                raise FormatError(f"{verb} takes {' '.join(_SHAPES[verb])}, got {len(rest)} argument(s)")
            name = refs.check_ref_name(rest[0])
            if verb == "update":
                new = _value(repo, rest[1], old=False)
                op = refs.RefUpdate(name, new, _value(repo, rest[2], old=True) if len(rest) == 3 else None)
            elif verb == "create":
                new = _value(repo, rest[1], old=False)
                if new == refs.ZERO:
                    raise FormatError(f"create {name} with a zero value")
                op = refs.RefUpdate(name, new, refs.ZERO)
            elif verb == "delete":
                old = _value(repo, rest[1], old=True) if len(rest) == 2 else None
                if old == refs.ZERO:
                    raise FormatError(f"delete {name} with a zero old value")
                op = refs.RefUpdate(name, refs.ZERO, old)
            else:
                op = refs.RefUpdate(name, None, _value(repo, rest[1], old=True) if len(rest) == 2 else refs.ZERO)
        except E3Error as e:
            raise type(e)(f"stdin line {number}: {e}") from None
        ops.append(op)
    return ops


_SHAPES = {"update": ("REF", "NEW", "[OLD]"), "create": ("REF", "NEW"), "delete": ("REF", "[OLD]"), "verify": ("REF", "[OLD]")}


def main(argv: list[str] | None = None) -> int:
    return command.run(PROG, build_parser, _run, argv)
