"""`e3 watch`: deploy a package source again whenever it changes, and optionally run it."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from e3.cli import _command as command
from e3.cli import _complete
from e3.errors import E3Error


def build_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 watch", "Deploy a Python package source to a workspace on every save, and optionally run it.")
    command.add_repository(p)
    p.add_argument("workspace", metavar="WS", help="workspace (created if missing)").completer = _complete.workspaces
    p.add_argument("source", metavar="SOURCE", help="Python file defining the package (e3.sdk.package)")
    p.add_argument("--start", action="store_true", help="run the dataflow after each deploy")
    p.add_argument("--abort-on-change", action="store_true", help="stop a running dataflow when the source changes")
    p.add_argument("--concurrency", "-j", type=command.positive_int, default=4, metavar="N", help="tasks at once for --start (default 4)")
    p.add_argument("--interval", type=command.positive_float, default=0.2, metavar="SECONDS", help="how often to look for changes (default 0.2)")
    p.add_argument("--once", action="store_true", help="deploy (and run) once, then exit: for scripts")
    return p


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


def _say(text: str) -> None:
    command.write_line(f"[{_stamp()}] {text}")
    sys.stdout.flush()


class _Watch:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.repo = command.open_repository(args.repo)
        self.files = [os.path.abspath(args.source)]
        self.child: subprocess.Popen | None = None

    def deploy(self) -> bool:
        """Load and build the source, import it (replacing a changed build of the same version), deploy it."""
        import io

        from e3 import sdk
        from e3.sdk.watch import load_definition

        ws = self.args.workspace
        try:
            zip_bytes = io.BytesIO()
            built = sdk.export(load_definition(self.args.source), zip_bytes)
            zip_bytes.seek(0)
            imported = self.repo.package_import(zip_bytes, replace=True)
            deployed = self.repo.workspace_deploy(ws, built.name, built.version, create=True)
        except E3Error as e:
            _say(f"error: {e}")
            return False
        if deployed.created:
            _say(f"created workspace {ws}")
        note = " (replaced the previous build of this version)" if imported.replaced else ""
        _say(f"deployed {built.name}@{built.version} to {ws}{note}")
        for path in deployed.dropped:
            _say(f"dropped input {'.'.join(path)}: it no longer matches the package")
        return True

    def start(self) -> None:
        argv = ["e3", "start", self.repo.location, self.args.workspace, "--concurrency", str(self.args.concurrency)]
        _say("starting dataflow")
        self.child = subprocess.Popen(argv, start_new_session=True)

    def stop_child(self) -> None:
        if self.child is not None and self.child.poll() is None:
            os.killpg(self.child.pid, signal.SIGINT)
            try:
                self.child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.child.pid, signal.SIGKILL)
                self.child.wait()
        self.child = None

    def child_done(self) -> bool:
        if self.child is None:
            return True
        code = self.child.poll()
        if code is None:
            return False
        _say("dataflow complete" if code == 0 else ("dataflow aborted" if code == 130 else f"dataflow failed (exit {code})"))
        self.child = None
        return True

    def cycle(self) -> bool:
        ok = self.deploy()
        if ok and self.args.start:
            self.start()
        return ok

    def run(self) -> int:
        from e3.sdk.watch import mtimes

        # Ctrl-C is how a watch ends: a parent may have left SIGINT ignored (a shell's `&`
        # does), and Python then never raises KeyboardInterrupt; the watch would run for ever.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _say(f"watching {self.args.source} for workspace {self.args.workspace}")
        seen = mtimes(self.files)
        deployed = self.cycle()
        if self.args.once:
            if self.child is not None:
                code = self.child.wait()
                self.child_done()
                return 0 if code == 0 else 1
            return 0 if deployed else 1
        pending = False
        try:
            while True:
                time.sleep(self.args.interval)
                now = mtimes(self.files)
                if now != seen:
                    seen = now
                    if not self.child_done():
                        if self.args.abort_on_change:
                            _say("source changed: aborting the running dataflow")
                            self.stop_child()
                        else:
                            _say("source changed: will redeploy when the running dataflow ends")
                            pending = True
                            continue
                    _say("source changed: reloading")
                    self.cycle()
                elif pending and self.child_done():
                    pending = False
                    self.cycle()
                else:
                    self.child_done()
        except KeyboardInterrupt:
            self.stop_child()
            _say("stopped watching")
            return 0


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 watch", build_parser, lambda a: _Watch(a).run(), argv)
