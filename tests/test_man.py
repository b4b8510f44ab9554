"""Man pages: one per command, each builds without warnings and has git's sections."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from e3_testing.commands import BIN, LIB, ROOT

sys.path.insert(0, str(ROOT / "man"))
from build_man import build_page  # noqa: E402

PAGES = sorted((ROOT / "man").glob("*.rst"))


def commands() -> list[str]:
    names = {p.name[3:] for p in BIN.glob("e3-*")}
    names |= {p.stem.replace("_", "-") for p in (LIB / "e3" / "cli").glob("*.py") if not p.stem.startswith("_")}
    return sorted(names)


@pytest.mark.parametrize("name", commands())
def test_every_command_has_a_man_page(name):
    assert (ROOT / "man" / f"e3-{name}.1.rst").is_file(), f"man/e3-{name}.1.rst missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_man_page_builds_without_warnings_and_has_sections(page, tmp_path):
    out = build_page(str(page), str(tmp_path))
    text = page.read_text()
    for section in ("SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert f"\n{section}\n" in text, f"{page.name} lacks {section}"
    assert shutil.which("man", path="/usr/bin:/bin"), "the tests need man and groff (README: Tests)"
    rendered = subprocess.run(["man", "-l", out], capture_output=True, text=True, env={"MANPAGER": "cat", "PATH": "/usr/bin:/bin"})
    assert rendered.returncode == 0, rendered.stderr
    # Headings as git's pages have them, whichever docutils rendered the page (0.22 wrote `Name`).
    headings = [line for line in rendered.stdout.splitlines() if line and not line[0].isspace()][1:]
    assert headings[:3] == ["NAME", "SYNOPSIS", "DESCRIPTION"], headings
    assert "SEE ALSO" in headings, headings


def test_every_plumbing_executable_has_a_command_module():
    for exe in BIN.glob("e3-*"):
        module = LIB / "e3" / "cli" / (exe.name[3:].replace("-", "_") + ".py")
        assert module.is_file(), f"{exe.name} has no {module}"
