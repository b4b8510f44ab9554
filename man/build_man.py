"""Render man/*.rst to roff with docutils' manpage writer, warnings as errors.

Used by setup.py at install time and by `make man`; `tests/test_man.py` runs it
too, so a page that does not build fails the suite.
"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def build_page(source: str, out_dir: str) -> str:
    from docutils.core import publish_file
    from docutils.writers import manpage

    name = os.path.basename(source)[: -len(".rst")]  # e3-hash-object.1
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, name)
    publish_file(
        source_path=source,
        destination_path=target,
        writer=manpage.Writer(),
        settings_overrides={"halt_level": 2, "report_level": 2, "exit_status_level": 2},
    )
    return target


def build_all(out_dir: str) -> list[str]:
    return [build_page(src, out_dir) for src in sorted(glob.glob(os.path.join(HERE, "*.rst")))]


if __name__ == "__main__":
    for page in build_all(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "man")):
        print(page)
