"""Import, export, list and remove packages."""
from __future__ import annotations

import argparse

from e3.cli import _command as command
from e3.cli import _complete


def build_parser() -> argparse.ArgumentParser:
    p = command.parser("e3 package", "Import, export, list and remove packages.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return command.add_repository(sub.add_parser(name, help=help, description=help))

    imp = add("import", "import a package zip (all or nothing; the same zip twice is a no-op)")
    imp.add_argument("zip", metavar="ZIP")
    exp = add("export", "write a package and every object it reaches as a zip")
    exp.add_argument("pkg", metavar="NAME[@VERSION]").completer = _complete.packages
    exp.add_argument("zip", metavar="ZIP")
    lst = add("list", "list imported packages, one NAME@VERSION per line")
    lst.add_argument("-l", "--long", action="store_true", help="also print each package object's hash")
    lst.add_argument("--json", action="store_true", help="print the packages as one JSON document")
    rm = add("remove", "remove a package's ref (objects stay until gc)")
    rm.add_argument("pkg", metavar="NAME[@VERSION]").completer = _complete.packages
    return p


def _repo(args: argparse.Namespace):  # noqa: ANN202 - an e3.api.Repository
    return command.open_repository(args.repo)


def _import(args: argparse.Namespace) -> None:
    repo = _repo(args)
    with command.open_zip(args.zip) as f:
        result = repo.package_import(f)
    p = result.package
    if result.imported:
        command.write_line(f"Imported {p.spec} (package {p.hash}, {result.object_count} objects)")
    else:
        command.write_line(f"{p.spec} is already imported (package {p.hash})")


def _export(args: argparse.Namespace) -> None:
    from e3.api import names

    name, version = names.package_spec(args.pkg)
    repo = _repo(args)
    with command.output_file(args.zip) as f:
        result = repo.package_export(name, version, f)
    p = result.package
    command.write_line(f"Exported {p.spec} to {args.zip} (package {p.hash}, {result.object_count} objects)")


def _list(args: argparse.Namespace) -> None:
    packages = _repo(args).package_list()
    if args.json:
        from e3.cli import _json

        _json.dump(packages)
        return
    for p in packages:
        command.write_line(f"{p.hash} {p.spec}" if args.long else p.spec)


def _remove(args: argparse.Namespace) -> None:
    from e3.api import names

    name, version = names.package_spec(args.pkg)
    removed = _repo(args).package_remove(name, version)
    command.write_line(f"Removed {removed.spec} (its objects stay until 'e3 repo gc')")


ACTIONS = {"import": _import, "export": _export, "list": _list, "remove": _remove}


def main(argv: list[str] | None = None) -> int:
    return command.run("e3 package", build_parser, lambda a: ACTIONS[a.action](a), argv)
