"""Running the real executables of this checkout, for tests and benchmarks alike (no pytest here).

Every command run through `run` is checked for a Python traceback on stderr: a
traceback reaching a user is always a bug.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "bin"
LIB = ROOT / "lib"


def command_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{LIB}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(LIB)
    env.pop("E3_DIR", None)
    env.pop("E3_DEBUG", None)
    env["E3_AUTHOR_NAME"] = "e3-test"
    if extra:
        env.update(extra)
    return env


class Result(subprocess.CompletedProcess):
    @property
    def out(self) -> str:
        return self.stdout.decode() if isinstance(self.stdout, bytes) else self.stdout

    @property
    def err(self) -> str:
        return self.stderr.decode() if isinstance(self.stderr, bytes) else self.stderr


def run(*argv: str | os.PathLike, input: bytes | str | None = None, expect: int | None = 0, cwd=None, env=None, timeout: float = 120) -> Result:
    """Run a command; check its exit code (unless `expect=None`) and that no traceback escaped."""
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run(
        [str(a) for a in argv], input=input, capture_output=True, cwd=cwd, env=command_env(env), timeout=timeout
    )
    result = Result(proc.args, proc.returncode, proc.stdout, proc.stderr)
    assert b"Traceback" not in proc.stderr, f"traceback from {argv}:\n{proc.stderr.decode()}"
    if expect is not None:
        assert proc.returncode == expect, (
            f"{' '.join(map(str, argv))} exited {proc.returncode}, expected {expect}\n"
            f"stdout: {proc.stdout.decode(errors='replace')}\nstderr: {proc.stderr.decode(errors='replace')}"
        )
    return result


_LOADED_PROBE = (
    "import atexit, runpy, sys\n"
    "roots = sys.argv[1].split(',')\n"
    "atexit.register(lambda: sys.stderr.write('\\nloaded: ' + ' '.join(sorted({m.split('.')[0] for m in sys.modules} & set(roots))) + '\\n'))\n"
    "sys.argv = sys.argv[2:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def run_loading(roots: tuple[str, ...], *argv: str | os.PathLike) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `e3 ARGV...` in a Python process that says at exit which of the top-level modules
    `roots` it loaded (its last line of stderr, taken off); return (the run, those loaded)."""
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _LOADED_PROBE, ",".join(roots), str(BIN / "e3"), *map(str, argv)], capture_output=True, env=command_env()
    )
    err, _, last = proc.stderr.rstrip(b"\n").rpartition(b"\n")
    assert last.startswith(b"loaded:"), proc.stderr.decode(errors="replace")
    proc.stderr = err.rstrip(b"\n") + b"\n" if err.strip() else b""
    return proc, set(last.decode()[len("loaded:"):].split())


def assert_one_line_error(result: Result, *needles: str) -> None:
    """A failure is one line on stderr that names the problem."""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {result.err!r}"
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in {lines[0]!r}"


def start_states(out: str) -> dict[str, str]:
    """`e3 start`'s 'ran NAME (..s)' lines -> {NAME: 'ran'}."""
    states = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("ran", "cached", "failed", "skipped", "stuck", "cancelled"):
            states[parts[1]] = parts[0]
    return states


def run_workers(repo: Path, count: int) -> list[str]:
    """Run `count` `e3-run-task REPO --once` processes at once; return all their output lines."""
    procs = [
        subprocess.Popen(["e3-run-task", str(repo), "--once"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
        for _ in range(count)
    ]
    lines = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        lines += out.decode().splitlines()
    return lines


TEMPLATES: Path | None = None
"""Where `from_template` keeps the repositories it made once (tests/conftest.py sets it to a
directory of the test session's); None (benchmarks): every repository is made anew."""


def from_template(path: Path, recipe: str, inputs: tuple[bytes | str, ...], make) -> Path:
    """The repository `make(path)` would make at `path`, copied from one `make` made once per
    session for the same `recipe` and `inputs` (e.g. a package zip's bytes and the spec deployed).

    `make` must run the real commands and depend on nothing but `inputs`; four e3 processes
    (create, import, create, deploy) cost seconds on a loaded machine, a copy milliseconds."""
    if TEMPLATES is None:
        make(path)
        return path
    import hashlib

    h = hashlib.sha256(recipe.encode())
    for item in inputs:
        data = item.encode() if isinstance(item, str) else item
        h.update(len(data).to_bytes(8, "big") + data)
    import shutil

    home = TEMPLATES / h.hexdigest()[:32]
    if not home.exists():  # made aside and renamed: a `make` that failed leaves no template
        building = TEMPLATES / (home.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        make(building / "repo")
        building.rename(home)
    return copy_repository(home / "repo", path)


def deployed(tmp_path: Path, zip_path: Path, spec: str) -> Path:
    """A new repository `tmp_path/repo` with the package zip imported and deployed (PKG@VERSION
    `spec`) in workspace `dev` (copied from one made the same way earlier in the session, if any);
    returns the directory that holds `.e3`."""

    def make(repo: Path) -> None:
        run("e3", "repo", "create", repo)
        run("e3", "package", "import", repo, zip_path)
        run("e3", "workspace", "create", repo, "dev")
        run("e3", "workspace", "deploy", repo, "dev", spec)

    return from_template(tmp_path / "repo", "deployed", (Path(zip_path).read_bytes(), spec), make)


def workspace_imported(path: Path, zip_path: Path, workspace: str = "dev") -> Path:
    """A new repository at `path` with the package zip imported into `workspace` by `e3 workspace
    import` (copied from one made the same way earlier in the session, if any); returns `path`."""

    def make(repo: Path) -> None:
        run("e3", "repo", "create", repo)
        run("e3", "workspace", "import", repo, workspace, zip_path)

    return from_template(Path(path), "workspace import", (Path(zip_path).read_bytes(), workspace), make)


def copy_repository(template: Path, path: Path) -> Path:
    """A copy at `path` of a repository made once for many tests (by the real commands): nothing in
    `.e3` names its directory, so the copy is what the same commands would have made at `path`."""
    import shutil

    shutil.copytree(template, path, symlinks=True)
    return path


def read_until(proc: subprocess.Popen, needle: str, timeout: float = 60) -> str:
    """Read `proc`'s stdout line by line until a line holds `needle`; everything read. Fails after `timeout`."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} never appeared in: {''.join(seen)}")


def write(directory: Path, name: str, data: str | bytes) -> Path:
    """Write `data` (text or bytes) to directory/name; return the path."""
    p = directory / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p
