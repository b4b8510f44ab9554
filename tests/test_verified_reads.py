"""Verified reads: a stored object whose bytes no longer hash to its name is never used as a value.

Every read that feeds a task, `e3 get`, `e3-cat-object` and an export checks the
bytes against their name while reading; a mismatch is one line naming the object,
and a task whose input is damaged fails with it and records nothing as a success.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from e3_testing.commands import assert_one_line_error, copy_repository, deployed, run

from e3 import sdk
from e3.east import East, IntegerType


def _package():
    """inputs.x; f = x + 1; s = f * 10 (East, in a warm worker); c = cp f (a shell task, spawned)."""
    x = sdk.input("x", IntegerType, 14)
    f = sdk.task("f", [x], East.function([IntegerType], IntegerType, lambda b, v: v + 1))
    s = sdk.task("s", [f.output], East.function([IntegerType], IntegerType, lambda b, v: v * 10))
    c = sdk.custom_task("c", [f.output], IntegerType, lambda b, inputs, output: East.str("cp ", sdk.quote(inputs.get(0)), " ", sdk.quote(output)))
    return sdk.package("integrity", "1.0.0", s, c)


@pytest.fixture(scope="module")
def _ran_once(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("ran")
    zip_path = where / "integrity.zip"
    sdk.export(_package(), zip_path)
    repo = deployed(where, zip_path, "integrity@1.0.0")
    run("e3", "start", repo, "dev", "-q")
    return repo


@pytest.fixture
def ran(tmp_path, _ran_once) -> Path:
    """A repository with the package deployed in `dev` and run once (f = 15, s = 150, c = 15): each
    test damages its own copy of one made per module."""
    return copy_repository(_ran_once, tmp_path / "repo")


def _object_path(repo: Path, h: str) -> Path:
    return repo / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2"


def flip_last_byte(repo: Path, h: str) -> bytes:
    """Flip the low bit of the object's last byte (15 reads as 14); return its original bytes."""
    path = _object_path(repo, h)
    original = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    return original


def output_of(repo: Path, task: str) -> str:
    return run("e3-rev-parse", "--repo", repo, f"dev.tasks.{task}.output").out.strip()


@pytest.mark.parametrize("fmt", ["east", "json", "beast2"])
def test_get_of_a_damaged_value_is_one_line_naming_the_object_and_prints_nothing(ran, fmt):
    h = output_of(ran, "f")
    assert run("e3", "get", ran, "dev.tasks.f.output").out == "15\n"
    flip_last_byte(ran, h)
    r = run("e3", "get", ran, "dev.tasks.f.output", "-f", fmt, expect=128)
    assert r.stdout == b""
    assert_one_line_error(r, f"object {h} is corrupt")


@pytest.mark.parametrize("mode", [["-p"], ["-f", "beast2"], ["-f", "json"], ["-t"]])
def test_cat_object_of_a_damaged_object_is_one_line_naming_it(ran, mode):
    h = output_of(ran, "f")
    flip_last_byte(ran, h)
    r = run("e3-cat-object", "--repo", ran, *mode, h, expect=128)
    assert r.stdout == b""
    assert_one_line_error(r, f"object {h} is corrupt")


def test_cat_object_batch_answers_corrupt_for_a_damaged_object_and_goes_on(ran):
    h, sound = output_of(ran, "f"), output_of(ran, "s")
    flip_last_byte(ran, h)
    for batch in ("--batch", "--batch-check"):
        out = run("e3-cat-object", "--repo", ran, batch, input=f"{h}\n{sound}\n").stdout
        assert out.startswith(f"{h} corrupt\n{sound} ".encode()), out


@pytest.mark.parametrize("task", ["s", "c"])
def test_a_task_whose_input_is_damaged_fails_naming_it_and_records_no_success(ran, task):
    """The issue's reproducer: s (in a warm worker) and c (spawned) read f's output, whose last byte flipped."""
    h = output_of(ran, "f")
    before = output_of(ran, task)
    original = flip_last_byte(ran, h)
    r = run("e3", "start", ran, "dev", "--filter", task, "--force", expect=1)
    assert f"failed: {task}: object {h} is corrupt" in r.out, r.out
    assert output_of(ran, task) == before  # nothing computed from 14 reached the workspace
    assert f"object {h} is corrupt" in run("e3", "logs", ran, f"dev.{task}").err  # the log's stderr
    # The repair e3-fsck(1) describes: remove the damaged object, run again. f's recorded output
    # is missing, so f runs and stores it anew; the task has no wrong result memoized: it runs, from 15.
    _object_path(ran, h).unlink()
    r = run("e3", "start", ran, "dev")
    assert "ran f" in r.out and f"ran {task}" in r.out, r.out
    assert _object_path(ran, h).read_bytes() == original
    assert run("e3", "get", ran, f"dev.tasks.{task}.output").out == ("150\n" if task == "s" else "15\n")
    run("e3-fsck", "--repo", ran)


def test_e3_run_of_a_task_with_a_damaged_memoized_output_fails_naming_it(ran, tmp_path):
    (tmp_path / "x.east").write_text("14")
    run("e3", "run", ran, "integrity/f", tmp_path / "x.east", "-o", tmp_path / "out.east")
    h = output_of(ran, "f")
    flip_last_byte(ran, h)
    r = run("e3", "run", ran, "integrity/f", tmp_path / "x.east", "-o", tmp_path / "again.east", expect=128)
    assert_one_line_error(r, f"object {h} is corrupt")
    assert not (tmp_path / "again.east").exists()


def test_package_export_with_a_damaged_object_is_one_line_and_leaves_no_zip(ran, tmp_path):
    pkg = run("git", "--git-dir", ran / ".e3", "cat-file", "blob", "refs/packages/integrity/1.0.0:package").out.strip()
    flip_last_byte(ran, pkg)
    out = tmp_path / "out.zip"
    r = run("e3", "package", "export", ran, "integrity@1.0.0", out, expect=128)
    assert_one_line_error(r, f"object {pkg} is corrupt")
    assert not out.exists() and list(tmp_path.glob("out.zip*")) == []


def test_workspace_export_with_a_damaged_value_is_one_line_and_leaves_no_zip(ran, tmp_path):
    h = output_of(ran, "f")
    flip_last_byte(ran, h)
    out = tmp_path / "ws.zip"
    r = run("e3", "workspace", "export", ran, "dev", out, expect=128)
    assert_one_line_error(r, f"object {h} is corrupt")
    assert list(tmp_path.glob("ws.zip*")) == []


def test_verified_reader_withholds_the_last_bytes_of_a_damaged_object(tmp_path):
    """The streaming reader hashes while reading: a consumer never gets the end of a damaged object."""
    from e3.errors import CorruptObject
    from e3.storage.repository import create_repository

    repo = create_repository(tmp_path / "r")
    data = bytes(range(256)) * 20000  # 5 MB: several chunks
    h = repo.objects.write(data)
    assert repo.objects.read(h) == data
    with repo.objects.open(h) as f:
        assert f.read() == data
    path = Path(repo.objects.fspath(h))
    path.chmod(0o644)
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptObject, match=f"object {h} is corrupt: its bytes hash to {hashlib.sha256(damaged).hexdigest()}"):
        repo.objects.read(h)
    got = bytearray()
    with pytest.raises(CorruptObject):
        with repo.objects.open(h) as f:
            while chunk := f.read(1 << 20):
                got += chunk
    assert len(got) < len(data)  # the last chunk never reached the consumer
    with pytest.raises(CorruptObject):
        repo.objects.copy(h, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


@pytest.mark.parametrize("size", [1, 19, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 300_000])
def test_a_read_of_any_size_gives_the_whole_object_and_refuses_it_damaged_short_or_long(tmp_path, size):
    """ObjectStore.read takes a small object in one read without asking its size, a larger one by
    its size: either way a flipped byte, a lost tail or an added one is CorruptObject, never bytes."""
    from e3.errors import CorruptObject
    from e3.storage.repository import create_repository

    repo = create_repository(tmp_path / "r")
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    h = repo.objects.write(data, durable=False)
    assert repo.objects.read(h) == data
    path = Path(repo.objects.fspath(h))
    path.chmod(0o644)
    flipped = bytearray(data)
    flipped[-1] ^= 1
    for damaged in (bytes(flipped), data[:-1], data + b"\0"):
        path.write_bytes(damaged)
        with pytest.raises(CorruptObject, match=f"object {h} is corrupt"):
            repo.objects.read(h)


def test_a_server_answers_a_read_of_a_damaged_object_with_an_error_naming_it(ran):
    """Over e3-api-server: the object and dataset routes refuse a damaged value before any byte is sent."""
    from e3_testing.api_server import ApiServer

    import e3.api
    from e3.errors import CorruptObject

    h = output_of(ran, "f")
    flip_last_byte(ran, h)
    with ApiServer(["--repo", ran / ".e3"]) as server:
        remote = e3.api.open(server.repo_url())
        for read in (lambda: remote.object_read(h), lambda: remote.dataset_get("dev", ("tasks", "f", "output"))):
            with pytest.raises(CorruptObject, match=f"object {h} is corrupt"):
                with read() as f:
                    f.read()
