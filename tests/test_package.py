"""`e3 package import|export|list|remove`: refs, determinism, and every kind of bad zip."""
from __future__ import annotations

import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from e3_testing.commands import ROOT, assert_one_line_error, run

from e3 import east, sdk
from e3.model.package import DatasetRef, decode_package
from e3.model.types import PackageObjectType
from e3.storage.objects import hash_bytes

from e3_testing import packages


@pytest.fixture(scope="module")
def built():
    return sdk.build(packages.chain(2, name="demo", version="1.0.0", start=5))


@pytest.fixture
def good_zip(built, tmp_path) -> Path:
    path = tmp_path / "demo.zip"
    sdk.export(built, path)
    return path


def entries_of(built) -> list[tuple[str, bytes]]:
    out = [(f"packages/{built.name}/{built.version}", (built.package_hash + "\n").encode())]
    out += [(f"objects/{h[:2]}/{h[2:]}.beast2", data) for h, data in built.sorted_objects()]
    return out


def make_zip(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests write on purpose
        with zipfile.ZipFile(path, "w") as z:
            for name, data in entries:
                z.writestr(name, data)
    return path


def with_package(built, change) -> list[tuple[str, bytes]]:
    """The entries of `built` with its package object replaced by change(package) (re-encoded, re-hashed)."""
    _, value = east.decode(built.objects[built.package_hash], PackageObjectType)
    package = change(decode_package(built.objects[built.package_hash]))
    data = east.encode(package.to_east(), PackageObjectType)
    h = hash_bytes(data)
    objects = dict(built.objects)
    del objects[built.package_hash]
    objects[h] = data
    out = [(f"packages/{built.name}/{built.version}", (h + "\n").encode())]
    return out + [(f"objects/{o[:2]}/{o[2:]}.beast2", d) for o, d in sorted(objects.items())]


def snapshot(repo: Path) -> dict[str, bytes]:
    """Every file of the repository but scratch space, with its bytes: 'unchanged' means equal snapshots."""
    root = repo / ".e3"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in ("tmp", "locks")
    }


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo / '.e3'}", *args], capture_output=True, text=True, check=True).stdout


# ---------------------------------------------------------------- import, list, export, remove


def test_import_creates_a_package_ref_whose_commit_holds_the_package_hash(repo, e3, good_zip, built):
    out = e3("package", "import", repo, good_zip).out
    assert out.startswith(f"Imported demo@1.0.0 (package {built.package_hash}")
    assert git(repo, "show", "refs/packages/demo/1.0.0:package").strip() == built.package_hash
    assert git(repo, "ls-tree", "--name-only", "refs/packages/demo/1.0.0").split() == ["package"]
    for h in built.objects:
        assert (repo / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2").is_file()


def test_importing_the_same_zip_twice_changes_nothing(repo, e3, good_zip):
    e3("package", "import", repo, good_zip)
    before = snapshot(repo)
    out = e3("package", "import", repo, good_zip).out
    assert "already imported" in out
    assert snapshot(repo) == before


def test_another_package_under_an_existing_name_and_version_is_refused(repo, e3, good_zip, tmp_path):
    e3("package", "import", repo, good_zip)
    before = snapshot(repo)
    other = sdk.export(packages.chain(3, name="demo", version="1.0.0"), tmp_path / "other.zip")
    r = e3("package", "import", repo, tmp_path / "other.zip", expect=128)
    assert_one_line_error(r, "demo@1.0.0 already exists with different contents", other.package_hash[:12])
    assert snapshot(repo) == before


def test_list_prints_one_name_at_version_per_line_in_version_order(repo, e3, tmp_path):
    for v in ("1.10.0", "1.9.0", "2.0.0-rc1"):
        sdk.export(packages.chain(1, name="demo", version=v), tmp_path / f"{v}.zip")
        e3("package", "import", repo, tmp_path / f"{v}.zip")
    sdk.export(packages.chain(1, name="alpha", version="1"), tmp_path / "alpha.zip")
    e3("package", "import", repo, tmp_path / "alpha.zip")
    assert e3("package", "list", repo).out.split("\n") == ["alpha@1", "demo@1.9.0", "demo@1.10.0", "demo@2.0.0-rc1", ""]


def test_list_long_prints_the_package_hash_first(repo, e3, good_zip, built):
    e3("package", "import", repo, good_zip)
    assert e3("package", "list", "-l", repo).out == f"{built.package_hash} demo@1.0.0\n"


def test_list_as_json_gives_name_version_and_hash(repo, e3, good_zip, built):
    import json

    e3("package", "import", repo, good_zip)
    assert json.loads(e3("package", "list", repo, "--json").out) == [{"name": "demo", "version": "1.0.0", "hash": built.package_hash}]


def test_list_of_a_repository_without_packages_prints_nothing(repo, e3):
    assert e3("package", "list", repo).out == ""


def test_export_writes_the_same_bytes_as_the_sdk(repo, e3, good_zip, tmp_path):
    e3("package", "import", repo, good_zip)
    out = tmp_path / "out" / "again.zip"
    out.parent.mkdir()
    e3("package", "export", repo, "demo@1.0.0", out)
    assert out.read_bytes() == good_zip.read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["again.zip"]


def test_export_then_import_into_another_repository_round_trips(repo, e3, good_zip, built, tmp_path):
    e3("package", "import", repo, good_zip)
    e3("package", "export", repo, "demo", tmp_path / "x.zip")
    other = tmp_path / "other"
    e3("repo", "create", other)
    e3("package", "import", other, tmp_path / "x.zip")
    assert e3("package", "list", "-l", other).out == f"{built.package_hash} demo@1.0.0\n"


def test_export_of_an_unknown_package_is_one_line_and_writes_no_file(repo, e3, tmp_path):
    r = e3("package", "export", repo, "nope@1", tmp_path / "x.zip", expect=128)
    assert_one_line_error(r, "package nope@1 not found")
    assert list(tmp_path.glob("x.zip*")) == []


def test_remove_deletes_the_ref_and_keeps_the_objects(repo, e3, good_zip, built):
    e3("package", "import", repo, good_zip)
    e3("package", "remove", repo, "demo@1.0.0")
    assert e3("package", "list", repo).out == ""
    assert (repo / ".e3" / "objects" / built.package_hash[:2] / f"{built.package_hash[2:]}.beast2").is_file()


def test_remove_of_an_unknown_package_is_one_line(repo, e3):
    assert_one_line_error(e3("package", "remove", repo, "nope@1", expect=128), "package nope@1 not found")


def test_name_without_version_means_the_only_version(repo, e3, good_zip):
    e3("package", "import", repo, good_zip)
    assert "Removed demo@1.0.0" in e3("package", "remove", repo, "demo").out


def test_name_without_version_is_refused_when_several_versions_exist(repo, e3, tmp_path):
    for v in ("1", "2"):
        sdk.export(packages.chain(1, name="demo", version=v), tmp_path / f"{v}.zip")
        e3("package", "import", repo, tmp_path / f"{v}.zip")
    r = e3("package", "remove", repo, "demo", expect=2)
    assert_one_line_error(r, "package demo has 2 versions (1, 2)", "demo@VERSION")


def test_unknown_version_lists_the_imported_ones(repo, e3, good_zip):
    e3("package", "import", repo, good_zip)
    assert_one_line_error(e3("package", "remove", repo, "demo@9", expect=128), "demo@9 not found", "1.0.0")


def test_command_on_a_directory_without_a_repository_is_one_line(e3, good_zip, tmp_path):
    assert_one_line_error(e3("package", "import", tmp_path, good_zip, expect=128), "not an e3 repository")


def test_example_package_imports_from_the_makefile_zip(repo, e3, tmp_path):
    zip_path = tmp_path / "my-package.zip"
    run(sys.executable, ROOT / "examples" / "my_package.py", zip_path)
    assert "Imported my-package@1.0.0" in e3("package", "import", repo, zip_path).out


def test_a_thousand_task_package_imports(repo, e3, tmp_path):
    zip_path = packages.chain_zip(tmp_path, 1000)
    assert "1004 objects" in e3("package", "import", repo, zip_path).out


# ---------------------------------------------------------------- bad zips: one line, non-zero, nothing written


def refused(repo: Path, e3, zip_path: Path, *needles: str) -> None:
    before = snapshot(repo)
    r = e3("package", "import", repo, zip_path, expect=128)
    assert_one_line_error(r, *needles)
    assert snapshot(repo) == before


def test_zip_slip_entry_is_refused(repo, e3, built, tmp_path):
    z = make_zip(tmp_path / "bad.zip", entries_of(built) + [("objects/../../evil", b"x")])
    refused(repo, e3, z, "zip-slip", "objects/../../evil")


def test_absolute_path_entry_is_refused(repo, e3, built, tmp_path):
    z = make_zip(tmp_path / "bad.zip", [("/etc/evil", b"x")] + entries_of(built))
    refused(repo, e3, z, "absolute path")


def test_duplicate_entries_with_different_bytes_are_refused(repo, e3, built, tmp_path):
    entries = entries_of(built)
    name, data = entries[1]
    z = make_zip(tmp_path / "bad.zip", entries + [(name, data + b"!")])
    refused(repo, e3, z, "appears twice with different contents")


def test_identical_duplicate_entries_are_accepted(repo, e3, built, tmp_path):
    entries = entries_of(built)
    z = make_zip(tmp_path / "dup.zip", entries + entries[1:3])
    assert "Imported demo@1.0.0" in e3("package", "import", repo, z).out


def test_missing_object_is_refused(repo, e3, built, tmp_path):
    task_hash = built.package.tasks["t00001"]
    entries = [(n, d) for n, d in entries_of(built) if task_hash[2:] not in n]
    z = make_zip(tmp_path / "bad.zip", entries)
    refused(repo, e3, z, "task t00001", "is missing")


def test_object_whose_bytes_do_not_match_its_name_is_refused(repo, e3, built, tmp_path):
    entries = entries_of(built)
    name, data = entries[2]
    entries[2] = (name, data[:-1] + bytes([data[-1] ^ 1]))
    refused(repo, e3, make_zip(tmp_path / "bad.zip", entries), "does not match its contents")


def test_truncated_zip_is_refused(repo, e3, good_zip, tmp_path):
    data = good_zip.read_bytes()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(data[: len(data) // 2])
    refused(repo, e3, bad, "not a zip file or is truncated")


def test_zip_with_a_damaged_entry_is_refused(repo, e3, good_zip, built, tmp_path):
    data = bytearray(good_zip.read_bytes())
    i = data.index(b"packages/demo/1.0.0") + len("packages/demo/1.0.0") + 2
    data[i] ^= 0xFF  # inside the first entry's compressed bytes
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    refused(repo, e3, bad, "damaged or truncated")


def test_file_that_is_not_a_zip_is_refused(repo, e3, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"hello, not a zip\n" * 10)
    refused(repo, e3, bad, "not a zip file")


def test_missing_zip_file_is_one_line(repo, e3, tmp_path):
    refused(repo, e3, tmp_path / "absent.zip", "no such file")


def test_zip_without_a_package_entry_is_refused(repo, e3, built, tmp_path):
    refused(repo, e3, make_zip(tmp_path / "bad.zip", entries_of(built)[1:]), "no package entry")


def test_zip_from_the_typescript_tools_names_the_container_version(repo, e3, built, tmp_path):
    # The TypeScript East runtime writes Beast2 container version 1: same magic, version byte 0x01.
    old = bytearray(built.objects[built.package_hash])
    assert old[7] == 5
    old[7] = 1
    h = hash_bytes(bytes(old))
    entries = [(f"packages/demo/1.0.0", (h + "\n").encode()), (f"objects/{h[:2]}/{h[2:]}.beast2", bytes(old))]
    entries += [e for e in entries_of(built)[1:] if built.package_hash[2:] not in e[0]]
    refused(repo, e3, make_zip(tmp_path / "ts.zip", entries), "container version 1", "typescript")


def test_package_entry_pointing_at_a_value_that_is_not_a_package_is_refused(repo, e3, built, tmp_path):
    value = built.package.refs[("inputs", "x")].hash
    entries = [("packages/demo/1.0.0", (value + "\n").encode())] + entries_of(built)[1:]
    refused(repo, e3, make_zip(tmp_path / "bad.zip", entries), "package object", "wrong type")


def test_initial_value_of_the_wrong_type_is_refused(repo, e3, built, tmp_path):
    text = east.encode("five", east.StringType)
    h = hash_bytes(text)

    def change(pkg):
        pkg.refs[("inputs", "x")] = DatasetRef("value", h, {})
        return pkg

    entries = with_package(built, change) + [(f"objects/{h[:2]}/{h[2:]}.beast2", text)]
    refused(repo, e3, make_zip(tmp_path / "bad.zip", entries), "inputs.x", "has type String, expected Integer")


def test_value_for_an_undeclared_dataset_is_refused(repo, e3, built, tmp_path):
    def change(pkg):
        pkg.refs[("inputs", "ghost")] = pkg.refs[("inputs", "x")]
        return pkg

    refused(repo, e3, make_zip(tmp_path / "bad.zip", with_package(built, change)), "inputs.ghost", "does not declare")


def test_entries_outside_objects_and_packages_are_ignored(repo, e3, built, tmp_path):
    z = make_zip(tmp_path / "extra.zip", entries_of(built) + [("data/inputs/x.ref", b"anything"), ("README", b"hi")])
    assert "Imported demo@1.0.0" in e3("package", "import", repo, z).out


def test_objects_the_package_does_not_reach_are_not_stored(repo, e3, built, tmp_path):
    stray = east.encode(42, east.IntegerType)
    h = hash_bytes(stray)
    z = make_zip(tmp_path / "extra.zip", entries_of(built) + [(f"objects/{h[:2]}/{h[2:]}.beast2", stray)])
    e3("package", "import", repo, z)
    assert not (repo / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2").exists()


def test_an_object_entry_the_package_does_not_reach_is_never_read(repo, e3, built, tmp_path):
    """Only what the package reaches is read (and hashed): a stray entry, however large or damaged, costs nothing."""
    stray = east.encode(b"\0" * (4 << 20), east.BlobType)
    h = hash_bytes(stray)
    damaged = stray[:-1] + b"!"  # its bytes no longer hash to its name: reading it would say so
    entries = entries_of(built) + [(f"objects/{h[:2]}/{h[2:]}.beast2", damaged), (f"objects/{h[:2]}/{h[2:]}.beast2", stray)]
    z = make_zip(tmp_path / "stray.zip", entries)
    assert "Imported demo@1.0.0" in e3("package", "import", repo, z).out
    assert not (repo / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2").exists()
    e3("package", "remove", repo, "demo@1.0.0")
    # The objects it reaches are still each checked, duplicates of them too.
    name, data = entries_of(built)[2]
    refused(repo, e3, make_zip(tmp_path / "dup.zip", entries_of(built) + [(name, data + b"!")]), "appears twice with different contents")


def test_package_name_that_cannot_be_a_ref_is_refused(repo, e3, built, tmp_path):
    entries = [("packages/bad name/1", (built.package_hash + "\n").encode())] + entries_of(built)[1:]
    refused(repo, e3, make_zip(tmp_path / "bad.zip", entries), "invalid package name")


def test_values_bigger_than_a_mebibyte_are_streamed_and_round_trip(repo, e3, tmp_path):
    blob = bytes(range(256)) * 8192  # 2 MiB: above the in-memory limit, read from the zip twice
    x = sdk.input("x", east.BlobType, blob)
    built = sdk.export(sdk.package("big", "1", x), tmp_path / "big.zip")
    e3("package", "import", repo, tmp_path / "big.zip")
    h = built.package.refs[("inputs", "x")].hash
    stored = (repo / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2").read_bytes()
    assert east.decode(stored, east.BlobType)[1] == blob
    e3("package", "export", repo, "big", tmp_path / "again.zip")
    assert (tmp_path / "again.zip").read_bytes() == (tmp_path / "big.zip").read_bytes()


def test_a_package_of_more_values_than_open_files_allowed_imports(repo, tmp_path):
    """Every value of a package is checked before any is stored; none may hold a file open
    until then (300 tasks, each with its own function, imported with 64 descriptors allowed)."""
    import resource

    from e3.east import East, IntegerType
    from e3_testing.commands import command_env

    x = sdk.input("x", IntegerType, 1)

    def add(i: int):
        return East.function([IntegerType], IntegerType, lambda b, v: v + i)

    tasks = [sdk.task(f"t{i:03d}", [x], add(i)) for i in range(300)]
    sdk.export(sdk.package("wide", "1.0.0", x, *tasks), tmp_path / "wide.zip")

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    proc = subprocess.run(
        ["e3", "package", "import", str(repo), str(tmp_path / "wide.zip")],
        capture_output=True, text=True, env=command_env(), preexec_fn=few_files, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Imported wide@1.0.0" in proc.stdout
    run("e3", "workspace", "create", repo, "dev")
    run("e3", "workspace", "deploy", repo, "dev", "wide@1.0.0")
    run("e3", "start", repo, "dev")
    assert run("e3", "get", repo, "dev.tasks.t299.output").out.strip() == "300"
