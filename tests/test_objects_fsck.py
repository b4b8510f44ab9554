"""e3-fsck: every object re-hashed; corrupt, misnamed and leftover files reported."""
from __future__ import annotations

import hashlib

import pytest

from e3_testing.commands import assert_one_line_error, run
from test_objects import NUMBERS_BEAST2, objects_in


@pytest.fixture
def stored(repo) -> str:
    return run("e3-hash-object", "-w", "--stdin", input=NUMBERS_BEAST2, cwd=repo).out.strip()


def test_fsck_of_a_sound_repository_prints_nothing_and_exits_0(repo, stored):
    r = run("e3-fsck", cwd=repo)
    assert r.out == "" and r.err == ""


def test_fsck_verbose_says_how_many_objects_it_checked(repo, stored):
    err = run("e3-fsck", "-v", cwd=repo).err
    assert err.startswith("e3-fsck: checked 1 objects") and err.endswith("; 0 problems\n")
    assert "checked 1 objects" in run("e3-fsck", "--verbose", cwd=repo).err


def test_fsck_reports_an_object_whose_bytes_changed(repo, stored):
    path = objects_in(repo)[0]
    path.chmod(0o644)
    path.write_bytes(NUMBERS_BEAST2[:-1] + b"\x07")
    actual = hashlib.sha256(NUMBERS_BEAST2[:-1] + b"\x07").hexdigest()
    r = run("e3-fsck", cwd=repo, expect=1)
    assert r.out == f"corrupt objects/{stored[:2]}/{stored[2:]}.beast2: bytes hash to {actual}\n"


def test_fsck_decode_reports_an_object_that_is_not_beast2_though_named_right(repo):
    data = b"plain text, not a value"
    h = hashlib.sha256(data).hexdigest()
    (repo / ".e3" / "objects" / h[:2]).mkdir()
    (repo / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2").write_bytes(data)
    run("e3-fsck", cwd=repo)  # the store keeps bytes as they came: by default only their names are checked
    assert "not beast2 data" in run("e3-fsck", "--decode", cwd=repo, expect=1).out


def test_fsck_reports_misnamed_files_among_the_objects(repo, stored):
    bucket = repo / ".e3" / "objects" / stored[:2]
    (bucket / "notes.txt").write_text("x")
    (bucket / (stored[2:].upper() + ".beast2")).write_bytes(NUMBERS_BEAST2)
    (repo / ".e3" / "objects" / "zz").mkdir()
    lines = run("e3-fsck", cwd=repo, expect=1).out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        f"misnamed objects/{stored[:2]}/{stored[2:].upper()}.beast2",
        f"misnamed objects/{stored[:2]}/notes.txt",
        "misnamed objects/zz",
    ]


def test_fsck_ignores_gits_own_objects(repo, stored):
    run("git", "--git-dir", repo / ".e3", "hash-object", "-w", "--stdin", input="a git blob\n")
    run("e3-fsck", cwd=repo)


def test_fsck_lists_leftover_temp_files_as_warnings_and_exits_0(repo, stored):
    (repo / ".e3" / "tmp" / "obj-abc.tmp").write_bytes(b"12345")
    (repo / ".e3" / "tmp" / "export.partial").write_bytes(b"")
    r = run("e3-fsck", cwd=repo)
    assert r.out == (
        "temp tmp/export.partial: temporary file left behind (0 bytes)\n"
        "temp tmp/obj-abc.tmp: partial object left behind (5 bytes)\n"
    )


def test_fsck_decode_also_decodes_every_value(repo):
    # Bytes that hash to their name and start like Beast2 but do not decode: only --decode sees it.
    data = NUMBERS_BEAST2[:-2]
    h = hashlib.sha256(data).hexdigest()
    (repo / ".e3" / "objects" / h[:2]).mkdir()
    (repo / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2").write_bytes(data)
    run("e3-fsck", cwd=repo)
    assert "malformed beast2 value" in run("e3-fsck", "--decode", cwd=repo, expect=1).out


def test_fsck_repo_option_names_the_repository(repo, stored, tmp_path):
    assert "checked 1 objects" in run("e3-fsck", "-v", "--repo", repo, cwd=tmp_path).err


def test_fsck_outside_a_repository_is_fatal(tmp_path):
    assert_one_line_error(run("e3-fsck", cwd=tmp_path, expect=128), "not an e3 repository")


def test_fsck_checks_large_objects_streaming(repo, tmp_path):
    from e3 import east

    big = tmp_path / "big.beast2"
    big.write_bytes(east.encode(bytes(3 << 20), east.BlobType))
    h = run("e3-hash-object", "-w", big, cwd=repo).out.strip()
    run("e3-fsck", cwd=repo)
    path = repo / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2"
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(2 << 20)
        f.write(b"\x01")
    assert run("e3-fsck", cwd=repo, expect=1).out.startswith(f"corrupt objects/{h[:2]}/")



def test_fsck_in_several_processes_finds_the_same_as_in_one(repo):
    from e3.repo.fsck import Options, check
    from e3.storage.repository import open_repository

    from e3 import east

    r = open_repository(repo)
    hashes = [r.objects.write(east.encode(i, east.IntegerType)) for i in range(40)]
    victim = r.objects.path(hashes[7])
    victim.chmod(0o644)
    victim.write_bytes(b"changed")
    (r.objects.objects_dir / hashes[9][:2] / "stray").write_text("x")
    one, three = check(r, Options(jobs=1)), check(r, Options(jobs=3))
    assert one.objects == three.objects == 40
    assert one.problems == three.problems
    assert sorted(p.kind for p in one.problems) == ["corrupt", "misnamed"]
