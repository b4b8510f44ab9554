"""A real e3-api-server process on 127.0.0.1 for tests: started on a free port, stopped after.

`ApiServer(["--repos", d])` starts `bin/e3-api-server ... --port 0`, reads the
URL it prints, and waits until it answers. `stop()` sends SIGTERM and waits;
`kill()` sends SIGKILL (a server dying mid-request). Use it as a context
manager, or through a module-scoped fixture so one server serves a whole
test module.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from e3_testing.commands import BIN, command_env


class ApiServer:
    def __init__(self, args: list[str | os.PathLike], env: dict[str, str] | None = None, timeout: float = 30):
        self.args = [str(a) for a in args]
        argv = [str(BIN / "e3-api-server"), *self.args, "--port", "0"]
        # stderr to a file: a pipe nobody reads would block a chatty server.
        self.stderr_file = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self.stderr_file, env=command_env(env), start_new_session=True
        )
        line = self.proc.stdout.readline().decode()
        if not line.startswith("e3-api-server listening on "):
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise RuntimeError(f"e3-api-server did not start: {line}{self.proc.stdout.read().decode()}{self.stderr()}")
        self.url = line.split()[-1]
        self.banner = [line]
        # The socket is bound before the line is printed: connecting works at once.
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        import socket

        host, port = self.url.rsplit("//", 1)[1].rsplit(":", 1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("e3-api-server is not answering")
                time.sleep(0.02)

    def repo_url(self, name: str = "default") -> str:
        return f"{self.url}/repos/{name}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._close()

    def kill(self) -> None:
        """SIGKILL: the server dies with requests in flight."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close()

    def stderr(self) -> str:
        """What the server wrote on stderr so far."""
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")

    def _close(self) -> None:
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()

    def __enter__(self) -> "ApiServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_dir(path: Path, *extra: str, env: dict[str, str] | None = None) -> ApiServer:
    return ApiServer(["--repos", path, *extra], env=env)


class SharedServer:
    """One server per test process, started on first use, serving a temporary directory.

    For factories that cannot take a fixture (the contract suite's IMPLEMENTATIONS):
    `create(d)` makes a new repository on it, named after `d`, and opens it by URL.
    The server stops when the process exits.
    """

    def __init__(self) -> None:
        self.server: ApiServer | None = None
        self.dir: Path | None = None
        self.count = 0

    def url(self) -> str:
        if self.server is None:
            import atexit

            self.dir = Path(tempfile.mkdtemp(prefix="e3-served-"))
            self.server = ApiServer(["--repos", self.dir])
            atexit.register(self._stop)
        return self.server.url

    def _stop(self) -> None:
        import shutil

        if self.server is not None:
            self.server.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def create(self, d: Path):
        import e3.api as api

        base = self.url()
        self.count += 1
        return api.create(f"{base}/repos/r{self.count}-{os.getpid()}")


shared = SharedServer()
