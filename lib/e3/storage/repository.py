"""A repository: the `.e3` directory, finding it, creating it, and its parts.

`.e3` is a bare git repository (refs and history through pygit2) that e3 also
uses as its root for objects, execution records, logs and the queue. Opening a
repository is cheap: pygit2 (about 100 ms to import) loads only when refs are
first touched, so plumbing that reads objects starts fast.
"""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from e3.errors import NotARepository, RepositoryExists, StorageError
from e3.storage.objects import ObjectStore

if TYPE_CHECKING:
    import pygit2

    from e3.storage.git_odb import ObjectDatabase

DIRNAME = ".e3"
FORMAT_VERSION = 1
SUBDIRS = ("tasks", "logs", "queue", "tmp", "locks")


class Repository:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._root = str(self.root)
        self.objects = ObjectStore(self.root)

    def __repr__(self) -> str:
        return f"Repository({str(self.root)!r})"

    @property
    def work_dir(self) -> Path:
        """The directory that holds `.e3` (what users name on the command line)."""
        return self.root.parent

    @cached_property
    def git(self) -> "pygit2.Repository":
        import pygit2

        return pygit2.Repository(str(self.root))

    @cached_property
    def git_odb(self) -> "ObjectDatabase":
        """The git objects e3 itself writes, read and written without libgit2 (e3.storage.git_odb)."""
        from e3.storage.git_odb import ObjectDatabase

        return ObjectDatabase(os.path.join(self._root, "objects"))

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def config(self, key: str) -> str | None:
        """A setting `SECTION.NAME` of the repository's config (`git --git-dir=.e3 config`), or None
        if it is unset. Read from `.e3/config` as git reads it, without loading pygit2 (e3 start
        asks for `e3.executor` on every run). Only the repository's own file counts: e3's
        settings belong to a repository, not to the user's global git config."""
        section, _, name = key.rpartition(".")
        path = self.fspath("config")
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror or e}") from None
        return config_value(text, section, name)

    def fspath(self, *parts: str) -> str:
        """`path` as a string, without pathlib's cost: for paths built once per task (names below
        the root, joined as they are: an absolute one does not replace the root as in os.path.join)."""
        return os.sep.join((self._root, *parts))


def config_value(text: str, section: str, name: str) -> str | None:
    """The value of `section.name` (no subsection) in the text of a git config file, the last one
    if set more than once; a name without `=` is "" (as `git config --get` prints it). Section and name match
    without regard to case; the value is git's: quotes group, backslash escapes, `#` and `;`
    start a comment outside quotes, a backslash at the end of a line continues it."""
    want_section, want_name = section.lower(), name.lower()
    current: str | None = None
    value: str | None = None
    lines = iter(text.splitlines())
    for line in lines:
        s = line.strip()
        if s.startswith("["):
            end = s.find("]")
            if end < 0:
                continue
            header = s[1:end].strip()
            current = None if '"' in header else header.lower()  # [section "subsection"] is another section
            s = s[end + 1 :].strip()  # git allows a variable after the header, on the same line
        if not s or s[0] in "#;" or current != want_section:
            continue
        key, eq, raw = s.partition("=")
        if key.strip().lower() != want_name:
            continue
        if not eq:
            value = ""
            continue
        while (len(raw) - len(raw.rstrip("\\"))) % 2 == 1:  # an odd number of trailing backslashes
            raw = raw[:-1] + next(lines, "")
        value = _config_text(raw.strip())
    return value


def _config_text(raw: str) -> str:
    out: list[str] = []
    keep = 0  # how much of `out` stays: whitespace at the end is dropped unless quoted
    quoted = False
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            i += 1
            out.append({"n": "\n", "t": "\t", "b": "\b"}.get(raw[i], raw[i]))
            keep = len(out)
        elif c == '"':
            quoted = not quoted
        elif not quoted and c in "#;":
            break
        else:
            out.append(c)
            if quoted or not c.isspace():
                keep = len(out)
        i += 1
    return "".join(out[:keep])


def is_repository(root: Path) -> bool:
    """True if `root` is an e3 repository directory (the `.e3` itself)."""
    try:
        with open(root / "config", encoding="utf-8") as f:
            return "[e3]" in f.read()
    except OSError:
        return False


URL_SCHEMES = ("http://", "https://")


def refuse_url(target: str | os.PathLike[str]) -> None:
    """A repository named by URL is one behind a server, reached through e3.api; what opens a
    directory (the plumbing that works on `.e3` itself) refuses it with one line, and never
    makes a local directory named `http:`."""
    if isinstance(target, str) and target[:8].lower().startswith(URL_SCHEMES):
        raise NotARepository(f"{target} is a server: this command works on a local repository only")


def open_repository(path: str | os.PathLike[str]) -> Repository:
    """Open the repository named by a command-line path: a directory holding `.e3`, or `.e3` itself."""
    refuse_url(path)
    p = Path(path)
    for root in (p / DIRNAME, p):
        if is_repository(root):
            return Repository(root)
    raise NotARepository(f"not an e3 repository: {path} (create one with 'e3 repo create {path}')")


def discover_repository(explicit: str | None = None, start: str | os.PathLike[str] | None = None) -> Repository:
    """The repository a command names: `explicit` (REPO or --repo), else `$E3_REPO`, else `$E3_DIR`,
    else upward from the current directory. `explicit` "." searches upward from here too."""
    if explicit and explicit != ".":
        return open_repository(explicit)
    env = None if explicit == "." else os.environ.get("E3_REPO") or os.environ.get("E3_DIR")
    if env:
        return open_repository(env)
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        for root in (d / DIRNAME, d):
            if is_repository(root):
                return Repository(root)
    raise NotARepository(f"not an e3 repository (or any parent up to /): {here}")


def create_repository(path: str | os.PathLike[str]) -> Repository:
    """Make `<path>/.e3`; refuse if a repository is already there."""
    import pygit2

    refuse_url(path)
    work = Path(path)
    root = work / DIRNAME
    if root.exists():
        raise RepositoryExists(f"repository already exists: {root}")
    try:
        work.mkdir(parents=True, exist_ok=True)
        staging = Path(os.path.join(work, f".e3-creating-{os.getpid()}"))
        git = pygit2.init_repository(str(staging), bare=True)
        config = git.config
        config["gc.auto"] = 0
        config["core.logAllRefUpdates"] = "always"
        config["e3.formatVersion"] = FORMAT_VERSION
        for sub in SUBDIRS:
            (staging / sub).mkdir(exist_ok=True)
        # Publish the finished directory in one step, so a crash never leaves a half-made repository.
        os.rename(staging, root)
    except OSError as e:
        raise StorageError(f"cannot create repository at {work}: {e.strerror or e}") from None
    except pygit2.GitError as e:
        raise StorageError(f"cannot create repository at {work}: {e}") from None
    return Repository(root)


def remove_repository(repo: Repository) -> None:
    """Delete a repository's `.e3` directory (never the directory that holds it).

    The directory is first renamed aside, so a crash half way through leaves no
    half-deleted directory that still looks like a repository.
    """
    import shutil

    root = repo.root
    if not is_repository(root):
        raise NotARepository(f"not an e3 repository: {root}")
    doomed = root.with_name(f"{root.name}-removing-{os.getpid()}")
    try:
        os.rename(root, doomed)
        shutil.rmtree(doomed)
    except OSError as e:
        raise StorageError(f"cannot remove repository {root}: {e.strerror or e}") from None
