"""The README names the licence of every package `pip install` brings, from the packages' own metadata."""
from __future__ import annotations

import configparser
import importlib.metadata as md
from packaging.requirements import Requirement

from e3_testing.commands import ROOT


def runtime_distributions() -> dict[str, str]:
    """Every distribution setup.cfg's install_requires brings, directly or not: name -> declared licence."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    todo = [r for r in cfg["options"]["install_requires"].split("\n") if r.strip()]
    found: dict[str, str] = {}
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # for another Python, or an extra nobody asked for
        name = req.name.lower().replace("_", "-")
        if name in found:
            continue
        dist = md.distribution(name)
        meta = dist.metadata
        found[name] = meta.get("License-Expression") or meta.get("License") or ""
        todo += dist.requires or []
    return found


def licence_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Licences")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_names_every_runtime_dependency():
    section = licence_section().lower()
    missing = sorted(name for name in runtime_distributions() if name not in section)
    assert missing == [], f"README's licence section does not name {missing}"


def test_the_east_runtime_is_bsl_and_the_readme_says_what_that_means():
    licences = runtime_distributions()
    assert licences["elaraai-east-py"] == "BSL-1.1"
    section = licence_section()
    assert "BSL-1.1" in section and "production use by or for a for-profit" in section
