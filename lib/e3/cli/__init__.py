"""Commands: argument parsing and output, nothing else.

A command is a module `e3.cli.<name>` (dashes become underscores) with
`build_parser()` and `main(argv)`. Adding such a module adds `e3 <name>`;
modules whose names start with `_` are the frame, not commands.
"""
