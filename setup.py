"""Build hook: every bin/ script is installed, and man/*.rst become roff pages.

Metadata lives in setup.cfg; this file only adds what must be computed: the
list of executables (adding a file to bin/ adds a command) and the man pages,
rendered with docutils' manpage writer so the toolchain stays pure Python.
"""
import glob
import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "man"))
from build_man import build_all  # noqa: E402

pages = build_all(out_dir=os.path.join("build", "man"))
data_files = {}
for page in pages:
    section = page.rsplit(".", 1)[-1]
    data_files.setdefault(f"share/man/man{section}", []).append(page)

setup(
    scripts=sorted(glob.glob("bin/e3*")),
    data_files=sorted(data_files.items()),
)
