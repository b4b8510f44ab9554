"""Render man/*.rst to roff with docutils' manpage writer, warnings as errors.

Used by setup.py at install time and by `make man`; `tests/test_man.py` runs it
too, so a page that does not build fails the suite.
"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _writer():
    """docutils' manpage writer, with the NAME heading in capitals like every other section.

    docutils 0.22 changed the heading it writes itself from `NAME` to `Name`; our
    pages spell their sections as git's do (SYNOPSIS, DESCRIPTION, ...), so NAME
    stays NAME whichever docutils the install brings.
    """
    from docutils.writers import manpage

    class Translator(manpage.Translator):
        def header(self):
            return super().header().replace("\n.SH Name\n", "\n.SH NAME\n")

    class Writer(manpage.Writer):
        def __init__(self):
            super().__init__()
            self.translator_class = Translator

    return Writer()


def build_page(source: str, out_dir: str) -> str:
    from docutils.core import publish_file

    name = os.path.basename(source)[: -len(".rst")]  # e3-hash-object.1
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, name)
    publish_file(
        source_path=source,
        destination_path=target,
        writer=_writer(),
        settings_overrides={"halt_level": 2, "report_level": 2, "exit_status_level": 2},
    )
    return target


def build_all(out_dir: str) -> list[str]:
    return [build_page(src, out_dir) for src in sorted(glob.glob(os.path.join(HERE, "*.rst")))]


if __name__ == "__main__":
    for page in build_all(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "man")):
        print(page)
