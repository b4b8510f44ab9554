"""The frame every command runs in: parsing, completion, errors, exit codes.

A command's `main` calls `run(prog, build_parser, handler, argv)`. Library
errors (`E3Error`) become one line on stderr and their exit code; Ctrl-C is 130;
a closed stdout ends quietly; anything unexpected is one line too, with the
traceback only under `E3_DEBUG=1`.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import BinaryIO, Callable, Iterable, Iterator, NoReturn, Sequence

from e3.cli._repository import names_repository, open_repository  # noqa: F401 - commands call command.open_repository
from e3.errors import EXIT_FATAL, EXIT_INTERRUPTED, EXIT_OK, E3Error

Handler = Callable[[argparse.Namespace], "int | None"]


class Parser(argparse.ArgumentParser):
    """argparse with git's usage exit code (2 is argparse's own, kept) and one-line errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n{self.format_usage()}")


def parser(prog: str, description: str, **kwargs) -> Parser:
    return Parser(prog=prog, description=description, **kwargs)


def complete(p: argparse.ArgumentParser) -> None:
    """Tab completion; argcomplete is imported only when the shell is asking."""
    if "_ARGCOMPLETE" in os.environ:
        import argcomplete

        from e3.cli import _complete

        _complete.attach(p)
        argcomplete.autocomplete(p)


def run(prog: str, build_parser: Callable[[], argparse.ArgumentParser], handler: Handler, argv: Sequence[str] | None = None) -> int:
    def body() -> "int | None":
        p = build_parser()
        complete(p)
        return handler(settle_repository(p.parse_args(argv)))

    return guarded(prog, body)


# ---------------------------------------------------------------- naming the repository
#
# Every command, plumbing or porcelain, names its repository the same way: a first
# argument REPO (optional), or `--repo PATH`; without either, $E3_REPO, then $E3_DIR,
# then the nearest directory upward from the current one that holds `.e3` (e3.api.discover).
# REPO `.` searches upward from here too. When REPO is left out and the command's other
# arguments are optional as well, argparse fills REPO first; a word that names no
# repository is then moved along to the argument it was meant for (`e3 list dev`).

REPO_HELP = "the repository: a directory holding .e3, or a server's URL (default: $E3_REPO, else found upward from here)"


def add_repository(p: argparse.ArgumentParser, help: str = REPO_HELP) -> argparse.ArgumentParser:
    """Give a parser the repository arguments: an optional first positional REPO, and --repo."""
    p.add_argument("repo", nargs="?", metavar="REPO", help=help)
    p.add_argument("--repo", dest="repo_option", metavar="REPO", help="the repository, as an option (for scripts)")
    p.set_defaults(_repository_parser=p)
    return p


def settle_repository(args: argparse.Namespace) -> argparse.Namespace:
    """One `args.repo` from REPO and --repo; REPO moved along when it was another argument."""
    p = getattr(args, "_repository_parser", None)
    if p is None:
        return args
    del args._repository_parser
    option = args.__dict__.pop("repo_option", None)
    if args.repo is not None and option is None and not names_repository(args.repo):
        _move_along(p, args)
    if option is not None:
        if args.repo is not None:
            _move_along(p, args)  # with --repo, every positional is what comes after REPO
            if args.repo is not None:
                from e3.errors import UsageError

                raise UsageError(f"two repositories named: {args.repo!r} and --repo {option!r}")
        args.repo = option
    return args


def _move_along(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Shift REPO's word into the next positional, and so on, if the last one has room."""
    positionals = [a for a in p._actions if not a.option_strings and a.dest != "repo" and a.nargs != argparse.PARSER]
    if not positionals:
        return
    last = positionals[-1]
    has_room = last.nargs in ("*", argparse.ZERO_OR_MORE) or getattr(args, last.dest) is None
    if not has_room:
        return
    carry = args.repo
    for a in positionals:
        if a.nargs in ("*", "+"):
            setattr(args, a.dest, [carry, *(getattr(args, a.dest) or [])])
            break
        carry, value = getattr(args, a.dest), carry
        setattr(args, a.dest, value)
        if carry is None:
            break
    args.repo = None


def guarded(prog: str, body: Callable[[], "int | None"]) -> int:
    """Run `body`, turning every failure into one line on stderr and an exit code."""
    try:
        code = body()
        sys.stdout.flush()
        return EXIT_OK if code is None else code
    except E3Error as e:
        kind = "fatal" if e.exit_code == EXIT_FATAL else "error"
        _say(f"{prog}: {kind}: {e}")
        return e.exit_code
    except KeyboardInterrupt:
        _say(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except SystemExit:  # argparse after --help or a usage error: what it printed may meet a closed pipe
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_stdout()
        raise
    except MemoryError:
        _say(f"{prog}: fatal: out of memory")
        return EXIT_FATAL
    except OSError as e:
        if os.environ.get("E3_DEBUG"):
            raise
        where = f" ({e.filename})" if e.filename else ""
        _say(f"{prog}: fatal: {(e.strerror or str(e)).lower()}{where}")
        return EXIT_FATAL
    except Exception as e:  # a bug of ours: still one line, unless debugging
        if os.environ.get("E3_DEBUG"):
            raise
        _say(f"{prog}: fatal: internal error: {type(e).__name__}: {e} (set E3_DEBUG=1 for details)")
        return EXIT_FATAL


def _say(line: str) -> None:
    try:
        sys.stderr.write(line.splitlines()[0] if line else line)
        sys.stderr.write("\n")
        sys.stderr.flush()
    except OSError:
        pass


def _quiet_stdout() -> None:
    # Python would complain again at exit while flushing the dead pipe.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def stdout_closed() -> bool:
    """True when stdout is a pipe whose reader has gone (`e3 logs … | head -1` after its line).

    A command that also writes to stderr asks this first, so that nothing more
    reaches the terminal once the pipe is closed: it ends as quietly as a write
    to stdout would have ended it.
    """
    import select

    try:
        p = select.poll()
        p.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in p.poll(0))
    except (OSError, ValueError):
        return False


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return n


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return x


def write_line(text: str, end: str = "\n") -> None:
    sys.stdout.write(text + end)


def read_input(path: str | None) -> bytes:
    """All bytes of a file argument, or of stdin for None or '-'."""
    with open_input(path) as f:
        return f.read()


def open_input(path: str | None) -> BinaryIO:
    """A file argument opened for reading, or stdin for None or '-' (not closed when done)."""
    if path is None or path == "-":
        return contextlib.nullcontext(sys.stdin.buffer)  # type: ignore[return-value]
    return open(path, "rb")


def open_zip(path: str) -> BinaryIO:
    """A zip named on the command line, opened for reading; a one-line error naming it if it cannot be."""
    from e3.errors import E3Error

    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise E3Error(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise E3Error(f"cannot read {path}: is a directory") from None
    except OSError as e:
        raise E3Error(f"cannot read {path}: {(e.strerror or str(e)).lower()}") from None


@contextlib.contextmanager
def output_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A user's output file, written whole or not at all: into `PATH.partial`, fsynced, renamed
    over PATH when the block ends; removed if it raises. A reader of PATH never sees half a file."""
    from e3.errors import StorageError

    partial = f"{os.fspath(path)}.partial"
    try:
        f = open(partial, "wb")
    except OSError as e:
        raise StorageError(f"cannot write {partial}: {(e.strerror or str(e)).lower()}") from None
    try:
        with f:
            yield f
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise StorageError(f"cannot write {path}: {(e.strerror or str(e)).lower()}") from None
        try:
            os.replace(partial, path)
            _sync_directory(os.path.dirname(os.path.abspath(partial)))
        except OSError as e:
            raise StorageError(f"cannot write {path}: {(e.strerror or str(e)).lower()}") from None
    except BaseException:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
        raise


def _sync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def value_format(path: str, explicit: str | None) -> str:
    """The value format of a file argument: `explicit`, else its extension."""
    from e3.formats import FORMATS, format_of_path
    from e3.errors import UsageError

    if explicit:
        if explicit not in FORMATS:
            raise UsageError(f"unknown format {explicit!r} (expected {', '.join(FORMATS)})")
        return explicit
    fmt = format_of_path(path)
    if fmt is None:
        names = ", ".join("." + f for f in FORMATS)
        raise UsageError(f"cannot tell the format of {path!r} from its name (expected {names}, or give --from)")
    return fmt


def format_size(n: int) -> str:
    """42 B, 1.5 KB, 3 MB: the original engine's sizes (a KB is 1024 bytes); e3's one size format."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def replay(chunks: Iterable[tuple[str, bytes]]) -> None:
    """A task's output as it wrote it: (stream, bytes) pairs, stderr's to stderr, the rest to stdout, flushed as they come."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    sys.stdout.flush()
    for stream, data in chunks:
        if stream == "stderr" and stdout_closed():
            raise BrokenPipeError  # the reader of stdout has gone: end quietly, as a write there would
        target = err if stream == "stderr" else out
        target.write(data)
        target.flush()
