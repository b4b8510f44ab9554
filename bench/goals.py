"""A benchmark's goals: each printed with "ok" or "MISSED", so nobody compares columns by eye.

Every bench/*.py keeps one `Goals`, marks each goal as it measures it, and ends
with `goals.finish(args.check)`: a summary line, and exit status 1 under
`--check` when any goal was missed (0 otherwise, so a plain run reports
everything it measured). A goal that could not be measured in this run (a peer
not installed, a size skipped) is not marked at all: the summary says how many
were marked.
"""
from __future__ import annotations

import argparse
import sys


def add_check_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a goal is missed")


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


class Goals:
    def __init__(self, source: str, none_set: bool = False):
        self.source = source
        """Where the goals come from (an issue), printed with the summary."""
        self.none_set = none_set
        """True for a benchmark that reports figures only (`source` says why): it says so instead of marking."""
        self.marked: list[tuple[str, bool]] = []

    def check(self, what: str, ok: bool, figure: str, goal: str) -> bool:
        """Mark one goal and print it at once: `goal <what>: <figure> (goal <goal>) ok|MISSED`."""
        self.marked.append((what, ok))
        print(f"  goal {what}: {figure} (goal {goal}) {mark(ok)}", flush=True)
        return ok

    @property
    def missed(self) -> list[str]:
        return [what for what, ok in self.marked if not ok]

    def finish(self, check: bool) -> int:
        """Print the summary; the exit status (1 only under --check with a goal missed)."""
        missed = self.missed
        if self.none_set:
            print(f"\ngoals: none set ({self.source})")
        elif not self.marked:
            print(f"\ngoals ({self.source}): none measured in this run")
        elif missed:
            print(f"\ngoals ({self.source}): {len(self.marked) - len(missed)} ok, {len(missed)} MISSED: {'; '.join(missed)}")
        else:
            print(f"\ngoals ({self.source}): all {len(self.marked)} ok")
        sys.stdout.flush()
        return 1 if check and missed else 0
