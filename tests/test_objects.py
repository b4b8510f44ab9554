"""Plumbing over the object store: e3-hash-object and e3-cat-object, good input and bad."""
from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from e3_testing.commands import BIN, assert_one_line_error, command_env, run

ARRAY = "Array<Integer>"
NUMBERS_EAST = "[1, 2, 3]\n"
# Canonical Beast2 (v5, codec none) of [1, 2, 3] : Array<Integer>, and its hash (pinned; see test_east_vectors.py).
NUMBERS_BEAST2 = bytes.fromhex("894561737 40d0a0500050102020a00010000060600030204 0600".replace(" ", ""))
NUMBERS_HASH = hashlib.sha256(NUMBERS_BEAST2).hexdigest()


def objects_in(repo: Path) -> list[Path]:
    return sorted((repo / ".e3" / "objects").glob("??/*.beast2"))


def temp_files(repo: Path) -> list[Path]:
    return sorted((repo / ".e3" / "tmp").iterdir())


@pytest.fixture
def stored(repo, tmp_path) -> str:
    """A repository holding [1, 2, 3] : Array<Integer>; returns its hash."""
    (tmp_path / "n.east").write_text(NUMBERS_EAST)
    return run("e3-hash-object", "-w", "-t", ARRAY, tmp_path / "n.east", cwd=repo).out.strip()


# ---------------------------------------------------------------- e3-hash-object


def test_hash_object_of_east_text_is_hash_of_canonical_beast2(tmp_path):
    (tmp_path / "n.east").write_text(NUMBERS_EAST)
    assert run("e3-hash-object", "-t", ARRAY, tmp_path / "n.east").out == NUMBERS_HASH + "\n"


def test_hash_object_without_w_needs_no_repository_and_writes_nothing(tmp_path):
    (tmp_path / "n.beast2").write_bytes(NUMBERS_BEAST2)
    assert run("e3-hash-object", tmp_path / "n.beast2", cwd=tmp_path).out.strip() == NUMBERS_HASH
    assert not (tmp_path / ".e3").exists()


def test_hash_object_w_stores_beast2_bytes_as_they_came(repo, tmp_path):
    (tmp_path / "n.beast2").write_bytes(NUMBERS_BEAST2)
    h = run("e3-hash-object", "-w", tmp_path / "n.beast2", cwd=repo).out.strip()
    [path] = objects_in(repo)
    assert path == repo / ".e3" / "objects" / h[:2] / f"{h[2:]}.beast2"
    assert path.read_bytes() == NUMBERS_BEAST2
    assert temp_files(repo) == []


def test_hash_object_w_twice_is_a_no_op(repo, tmp_path):
    (tmp_path / "n.beast2").write_bytes(NUMBERS_BEAST2)
    run("e3-hash-object", "-w", tmp_path / "n.beast2", cwd=repo)
    before = objects_in(repo)[0].stat()
    run("e3-hash-object", "-w", tmp_path / "n.beast2", cwd=repo)
    assert objects_in(repo)[0].stat().st_ino == before.st_ino and temp_files(repo) == []


def test_hash_object_w_rewrites_an_object_a_power_loss_left_short(repo, tmp_path):
    # A write without fsync can leave the object's name with fewer bytes: storing the same
    # bytes again (from a file, or streamed from stdin) repairs it instead of reusing it.
    (tmp_path / "n.beast2").write_bytes(NUMBERS_BEAST2)
    for args, stdin in ((["-w", tmp_path / "n.beast2"], None), (["-w", "--stdin"], NUMBERS_BEAST2)):
        run("e3-hash-object", "-w", tmp_path / "n.beast2", cwd=repo)
        [path] = objects_in(repo)
        os.chmod(path, 0o644)
        path.write_bytes(NUMBERS_BEAST2[:5])
        run("e3-hash-object", *args, cwd=repo, input=stdin)
        assert path.read_bytes() == NUMBERS_BEAST2 and temp_files(repo) == []


def test_hash_object_stdin_reads_beast2_by_its_magic(repo):
    assert run("e3-hash-object", "-w", "--stdin", input=NUMBERS_BEAST2, cwd=repo).out.strip() == NUMBERS_HASH
    assert objects_in(repo)[0].read_bytes() == NUMBERS_BEAST2


def test_hash_object_stdin_reads_east_text_with_a_type():
    assert run("e3-hash-object", "-t", ARRAY, "--stdin", input=NUMBERS_EAST).out.strip() == NUMBERS_HASH


def test_hash_object_from_json_encodes_the_same_value(tmp_path):
    (tmp_path / "n.json").write_text('["1", "2", "3"]')
    assert run("e3-hash-object", "-t", ARRAY, tmp_path / "n.json").out.strip() == NUMBERS_HASH
    out = run("e3-hash-object", "-t", ARRAY, "--from", "json", "--stdin", input='["1","2","3"]').out
    assert out.strip() == NUMBERS_HASH


def test_hash_object_several_files_print_one_hash_each_in_order(tmp_path):
    (tmp_path / "a.east").write_text("1")
    (tmp_path / "b.east").write_text("2")
    out = run("e3-hash-object", "-t", "Integer", tmp_path / "a.east", tmp_path / "b.east").out.split()
    single = [run("e3-hash-object", "-t", "Integer", tmp_path / n).out.strip() for n in ("a.east", "b.east")]
    assert out == single and out[0] != out[1]


def test_hash_object_stdin_paths_answers_each_path_line_by_line(repo, tmp_path):
    paths = []
    for i in range(5):
        p = tmp_path / f"v {i}.east"  # a space in the name is part of the path
        p.write_text(str(i))
        paths.append(str(p))
    out = run("e3-hash-object", "-w", "-t", "Integer", "--stdin-paths", input="\n".join(paths) + "\n", cwd=repo).out
    hashes = out.split()
    assert len(hashes) == 5 and len(set(hashes)) == 5
    assert len(objects_in(repo)) == 5


def test_hash_object_beast2_must_have_the_given_type(tmp_path):
    (tmp_path / "n.beast2").write_bytes(NUMBERS_BEAST2)
    assert run("e3-hash-object", "-t", ARRAY, tmp_path / "n.beast2").out.strip() == NUMBERS_HASH
    r = run("e3-hash-object", "-t", "Array<String>", tmp_path / "n.beast2", expect=128)
    assert_one_line_error(r, "n.beast2", "has type Array<Integer>, expected Array<String>")


def test_hash_object_repo_option_names_the_repository(repo, tmp_path):
    run("e3-hash-object", "-w", "--repo", repo, "--stdin", input=NUMBERS_BEAST2, cwd=tmp_path)
    assert len(objects_in(repo)) == 1


def test_hash_object_finds_repository_from_e3_dir(repo, tmp_path):
    run("e3-hash-object", "-w", "--stdin", input=NUMBERS_BEAST2, cwd=tmp_path, env={"E3_DIR": str(repo)})
    assert len(objects_in(repo)) == 1


def test_hash_object_finds_repository_upward_from_a_subdirectory(repo):
    sub = repo / "a" / "b"
    sub.mkdir(parents=True)
    run("e3-hash-object", "-w", "--stdin", input=NUMBERS_BEAST2, cwd=sub)
    assert len(objects_in(repo)) == 1


# ---------------------------------------------------------------- e3-hash-object: bad input


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"", "not beast2 data (empty)"),
        (b"hello, world\n", "not beast2 data (bad magic bytes)"),
        (bytes(range(256)) * 4, "not beast2 data"),
        (b"\x89East\r\n\x01" + bytes(20), "unsupported beast2 container version 1"),
        (NUMBERS_BEAST2[:-3], "malformed beast2 value"),
        (NUMBERS_BEAST2[:12], "malformed beast2"),
    ],
    ids=["empty", "text", "random", "typescript-v1", "truncated-value", "truncated-header"],
)
def test_hash_object_refuses_bytes_that_are_not_one_beast2_value(repo, data, needle):
    r = run("e3-hash-object", "-w", "--stdin", input=data, cwd=repo, expect=128)
    assert_one_line_error(r, "<stdin>", needle)
    assert objects_in(repo) == [] and temp_files(repo) == []


def test_hash_object_refuses_a_truncated_file_without_writing(repo, tmp_path):
    (tmp_path / "t.beast2").write_bytes(NUMBERS_BEAST2[:-1])
    r = run("e3-hash-object", "-w", tmp_path / "t.beast2", cwd=repo, expect=128)
    assert_one_line_error(r, "t.beast2", "malformed beast2 value")
    assert objects_in(repo) == [] and temp_files(repo) == []


def test_hash_object_literally_checks_only_the_header(tmp_path):
    (tmp_path / "t.beast2").write_bytes(NUMBERS_BEAST2[:-1])
    out = run("e3-hash-object", "--literally", tmp_path / "t.beast2").out.strip()
    assert out == hashlib.sha256(NUMBERS_BEAST2[:-1]).hexdigest()
    (tmp_path / "x.beast2").write_bytes(b"not beast2")
    assert_one_line_error(run("e3-hash-object", "--literally", tmp_path / "x.beast2", expect=128), "not beast2")


def test_hash_object_refuses_east_text_that_does_not_match_the_type(repo, tmp_path):
    (tmp_path / "bad.east").write_text('["a", "b"]')
    r = run("e3-hash-object", "-w", "-t", ARRAY, tmp_path / "bad.east", cwd=repo, expect=128)
    assert_one_line_error(r, "bad.east", "invalid .east value for type Array<Integer>")
    assert objects_in(repo) == []


def test_hash_object_refuses_json_that_does_not_match_the_type(tmp_path):
    (tmp_path / "bad.json").write_text('{"a": 1}')
    assert_one_line_error(run("e3-hash-object", "-t", ARRAY, tmp_path / "bad.json", expect=128), "invalid json value")


def test_hash_object_east_text_without_type_is_a_usage_error(tmp_path):
    (tmp_path / "n.east").write_text(NUMBERS_EAST)
    assert_one_line_error(run("e3-hash-object", tmp_path / "n.east", expect=2), "needs a type")


def test_hash_object_bad_type_spec_is_a_usage_error(tmp_path):
    (tmp_path / "n.east").write_text(NUMBERS_EAST)
    assert_one_line_error(run("e3-hash-object", "-t", "Array<Nope>", tmp_path / "n.east", expect=2), "invalid type")


def test_hash_object_missing_file_is_fatal(tmp_path):
    assert_one_line_error(run("e3-hash-object", tmp_path / "nope.beast2", expect=128), "nope.beast2", "no such file")


def test_hash_object_w_outside_a_repository_is_fatal(tmp_path):
    r = run("e3-hash-object", "-w", "--stdin", input=NUMBERS_BEAST2, cwd=tmp_path, expect=128)
    assert_one_line_error(r, "not an e3 repository")


def test_hash_object_repo_that_is_not_a_repository_is_fatal(tmp_path):
    r = run("e3-hash-object", "-w", "--repo", tmp_path, "--stdin", input=NUMBERS_BEAST2, expect=128)
    assert_one_line_error(r, "not an e3 repository")


def test_hash_object_with_nothing_to_hash_is_a_usage_error():
    assert_one_line_error(run("e3-hash-object", expect=2), "nothing to hash")


def test_hash_object_stdin_and_stdin_paths_exclude_each_other():
    assert "not allowed with" in run("e3-hash-object", "--stdin", "--stdin-paths", expect=2).err


def unwritable(path: Path):
    """Make a directory refuse writes even to root (chattr +i); returns an undo function."""
    if os.geteuid() != 0:
        path.chmod(0o500)
        return lambda: path.chmod(0o700)
    subprocess.run(["chattr", "+i", str(path)], check=True)
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def test_hash_object_into_an_unwritable_store_is_one_line_and_leaves_nothing(repo):
    tmp = repo / ".e3" / "tmp"
    undo = unwritable(tmp)
    try:
        r = run("e3-hash-object", "-w", "--stdin", input=NUMBERS_BEAST2, cwd=repo, expect=128)
    finally:
        undo()
    assert_one_line_error(r, "cannot write", "tmp")
    assert objects_in(repo) == [] and temp_files(repo) == []


def test_hash_object_into_an_unwritable_bucket_removes_its_temp_file(repo):
    bucket = repo / ".e3" / "objects" / NUMBERS_HASH[:2]
    bucket.mkdir()
    undo = unwritable(bucket)
    try:
        r = run("e3-hash-object", "-w", "--stdin", input=NUMBERS_BEAST2, cwd=repo, expect=128)
    finally:
        undo()
    assert_one_line_error(r, "cannot write", NUMBERS_HASH[:2])
    assert objects_in(repo) == [] and temp_files(repo) == []


# ---------------------------------------------------------------- e3-cat-object


def test_cat_object_t_prints_the_type(repo, stored):
    assert run("e3-cat-object", "-t", stored, cwd=repo).out == "Array<Integer>\n"


def test_cat_object_t_reads_on_past_the_head_for_a_type_wider_than_it(repo):
    from e3 import east

    names = [f"field_{i:03d}_" + "x" * 40 for i in range(200)]  # ~10 KB of header
    wide = east.StructType([(name, east.IntegerType) for name in names])
    data = east.encode(east.struct({name: 0 for name in names}), wide)
    h = run("e3-hash-object", "-w", "--stdin", cwd=repo, input=data).out.strip()
    want = east.format_type(wide) + "\n"
    assert len(want) > 4096
    assert run("e3-cat-object", "-t", h, cwd=repo).out == want
    assert run("e3-cat-object", "--batch-check=%(objecttype)", cwd=repo, input=h + "\n").out == want


def test_cat_object_s_prints_the_size_in_bytes(repo, stored):
    assert run("e3-cat-object", "-s", stored, cwd=repo).out == f"{len(NUMBERS_BEAST2)}\n"


def test_cat_object_p_prints_east_text(repo, stored):
    assert run("e3-cat-object", "-p", stored, cwd=repo).out == "[1, 2, 3]\n"


@pytest.mark.parametrize("fmt, expected", [("east", b"[1, 2, 3]\n"), ("json", b'["1","2","3"]\n'), ("beast2", NUMBERS_BEAST2)])
def test_cat_object_f_prints_each_format(repo, stored, fmt, expected):
    assert run("e3-cat-object", "-f", fmt, stored, cwd=repo).stdout == expected


def test_cat_object_e_exits_0_for_present_and_1_silently_for_missing(repo, stored):
    assert run("e3-cat-object", "-e", stored, cwd=repo).out == ""
    r = run("e3-cat-object", "-e", "0" * 64, cwd=repo, expect=1)
    assert r.out == "" and r.err == ""


def test_cat_object_accepts_a_unique_prefix_of_four_hex_digits(repo, stored):
    assert run("e3-cat-object", "-t", stored[:4], cwd=repo).out == "Array<Integer>\n"


def test_cat_object_repo_option_and_e3_dir(repo, stored, tmp_path):
    assert run("e3-cat-object", "--repo", repo, "-e", stored, cwd=tmp_path).returncode == 0
    assert run("e3-cat-object", "-e", stored, cwd=tmp_path, env={"E3_DIR": str(repo / ".e3")}).returncode == 0


def test_cat_object_batch_check_answers_each_line_like_git(repo, stored):
    lines = f"{stored}\n{stored[:6]}\n{'0' * 64}\nzz\n"
    out = run("e3-cat-object", "--batch-check", input=lines, cwd=repo).out.splitlines()
    assert out == [
        f"{stored} {len(NUMBERS_BEAST2)} Array<Integer>",
        f"{stored} {len(NUMBERS_BEAST2)} Array<Integer>",
        f"{'0' * 64} missing",
        "zz missing",
    ]


def test_cat_object_batch_check_takes_a_format(repo, stored):
    out = run("e3-cat-object", "--batch-check=%(objecttype)|%(objectname)|%(rest)", input=f"{stored} a b\n", cwd=repo).out
    assert out == f"Array<Integer>|{stored}|a b\n"


def test_cat_object_batch_prints_header_then_raw_content(repo, stored):
    out = run("e3-cat-object", "--batch", input=f"{stored}\nffff\n", cwd=repo).stdout
    header = f"{stored} {len(NUMBERS_BEAST2)} Array<Integer>\n".encode()
    assert out == header + NUMBERS_BEAST2 + b"\nffff missing\n"


def test_cat_object_batch_with_f_converts_and_counts_converted_bytes(repo, stored):
    out = run("e3-cat-object", "--batch=%(objectsize)", "-f", "json", input=f"{stored}\n", cwd=repo).stdout
    assert out == b'14\n["1","2","3"]\n\n'


def test_cat_object_batch_buffer_gives_the_same_answers(repo, stored):
    lines = f"{stored}\n" * 3
    assert run("e3-cat-object", "--batch-check", "--buffer", input=lines, cwd=repo).out == run(
        "e3-cat-object", "--batch-check", input=lines, cwd=repo
    ).out


def test_cat_object_batch_answers_one_line_at_a_time(repo, stored):
    proc = subprocess.Popen(
        ["e3-cat-object", "--batch-check"], cwd=repo, env=command_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        proc.stdin.write(f"{stored}\n".encode())
        proc.stdin.flush()
        assert proc.stdout.readline().decode().startswith(stored)  # answered while stdin is still open
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


# ---------------------------------------------------------------- e3-cat-object: bad input


def test_cat_object_unknown_hash_is_fatal(repo):
    assert_one_line_error(run("e3-cat-object", "-p", "0" * 64, cwd=repo, expect=128), "not found")


def test_cat_object_ambiguous_prefix_is_fatal(repo):
    from e3 import east

    seen: dict[str, bytes] = {}
    for i in range(100_000):  # two integers whose hashes share 4 hex digits (birthday: a few hundred tries)
        data = east.encode(i, east.IntegerType)
        prefix = hashlib.sha256(data).hexdigest()[:4]
        if prefix in seen:
            break
        seen[prefix] = data
    for value in (seen[prefix], data):
        run("e3-hash-object", "-w", "--stdin", input=value, cwd=repo)
    assert_one_line_error(run("e3-cat-object", "-t", prefix, cwd=repo, expect=128), "ambiguous")
    assert_one_line_error(run("e3-cat-object", "-e", prefix, cwd=repo, expect=128), "ambiguous")
    assert run("e3-cat-object", "--batch-check", input=prefix + "\n", cwd=repo).out == f"{prefix} ambiguous\n"


def test_cat_object_invalid_hash_is_fatal(repo):
    assert_one_line_error(run("e3-cat-object", "-t", "../../etc/passwd", cwd=repo, expect=128), "invalid object name")


def test_cat_object_short_prefix_is_fatal(repo):
    assert_one_line_error(run("e3-cat-object", "-t", "abc", cwd=repo, expect=128), "at least 4")


def test_cat_object_outside_a_repository_is_fatal(tmp_path):
    assert_one_line_error(run("e3-cat-object", "-e", "0" * 64, cwd=tmp_path, expect=128), "not an e3 repository")


def test_cat_object_of_a_corrupt_object_names_it(repo, stored):
    path = objects_in(repo)[0]
    path.chmod(0o644)
    path.write_bytes(NUMBERS_BEAST2[:-2])
    r = run("e3-cat-object", "-p", stored, cwd=repo, expect=128)
    assert_one_line_error(r, stored, "corrupt")


def test_cat_object_without_a_mode_is_a_usage_error(repo, stored):
    assert_one_line_error(run("e3-cat-object", stored, cwd=repo, expect=2), "give one of")


def test_cat_object_f_with_t_is_a_usage_error(repo, stored):
    assert_one_line_error(run("e3-cat-object", "-t", "-f", "json", stored, cwd=repo, expect=2), "cannot be combined")


def test_cat_object_two_modes_are_a_usage_error(repo, stored):
    assert "not allowed with" in run("e3-cat-object", "-t", "-s", stored, cwd=repo, expect=2).err


# ---------------------------------------------------------------- a writer killed mid-object


def test_writer_killed_mid_object_leaves_no_object_and_a_temp_file_fsck_reports(repo):
    proc = subprocess.Popen(
        ["e3-hash-object", "-w", "--stdin"], cwd=repo, env=command_env(), stdin=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        proc.stdin.write(NUMBERS_BEAST2[:20])
        proc.stdin.flush()
        tmp = wait_for_temp_file(repo, size=20)
        # While the writer lives, its temp file is a write in progress, not a problem.
        assert run("e3-fsck", cwd=repo).out == ""
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdin.close()
        proc.stderr.close()
    assert objects_in(repo) == [] and temp_files(repo) == [tmp]
    r = run("e3-fsck", cwd=repo)  # a leftover is a warning: listed, exit 0
    assert r.out == f"temp tmp/{tmp.name}: partial object left behind (20 bytes)\n"


def wait_for_temp_file(repo: Path, size: int, timeout: float = 30) -> Path:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = temp_files(repo)
        if files and files[0].stat().st_size >= size:
            return files[0]
        time.sleep(0.02)
    raise AssertionError("the writer never wrote its temp file")


def test_hash_object_stdin_paths_stores_and_reports_values_before_a_bad_one(repo, tmp_path):
    good = tmp_path / "good.beast2"
    good.write_bytes(NUMBERS_BEAST2)
    bad = tmp_path / "bad.beast2"
    bad.write_bytes(b"junk")
    r = run("e3-hash-object", "-w", "--stdin-paths", input=f"{good}\n{bad}\n{good}\n", cwd=repo, expect=128)
    assert r.out == NUMBERS_HASH + "\n"
    assert_one_line_error(r, "bad.beast2", "not beast2")
    assert objects_in(repo) and temp_files(repo) == []


def test_hash_object_w_of_many_files_stores_each_once(repo, tmp_path):
    (tmp_path / "a.beast2").write_bytes(NUMBERS_BEAST2)
    out = run("e3-hash-object", "-w", tmp_path / "a.beast2", tmp_path / "a.beast2", cwd=repo).out
    assert out == f"{NUMBERS_HASH}\n{NUMBERS_HASH}\n"
    assert len(objects_in(repo)) == 1 and temp_files(repo) == []


def test_hash_object_stdin_paths_over_several_groups_answers_in_order_and_stores_each(repo, tmp_path):
    paths = []
    for i in range(600):  # groups of 256: three, the last one partial
        p = tmp_path / f"v{i}.east"
        p.write_text(str(i % 550))  # and some values twice
        paths.append(str(p))
    names = "\n".join(paths) + "\n"
    expected = run("e3-hash-object", "-t", "Integer", "--stdin-paths", input=names).out
    assert run("e3-hash-object", "-w", "-t", "Integer", "--stdin-paths", input=names, cwd=repo).out == expected
    assert len(objects_in(repo)) == 550 and temp_files(repo) == []


def test_hash_object_stdin_paths_in_bulk_answers_in_order_up_to_a_bad_file(repo, tmp_path):
    paths = []
    for i in range(1100):  # enough names at once for forked workers
        p = tmp_path / f"v{i}.east"
        p.write_text(str(i))
        paths.append(str(p))
    expected = run("e3-hash-object", "-t", "Integer", "--stdin-paths", input="\n".join(paths[:700]) + "\n").out
    (tmp_path / "v700.east").write_text("not an integer")
    r = run("e3-hash-object", "-w", "-t", "Integer", "--stdin-paths", input="\n".join(paths) + "\n", cwd=repo, expect=128)
    assert r.out == expected
    assert_one_line_error(r, "v700.east")
    assert len(objects_in(repo)) >= 700 and temp_files(repo) == []


def test_store_batch_counts_a_write_durable_only_once_its_object_is_in_place(repo):
    from e3.storage.repository import open_repository

    store = open_repository(repo).objects
    values = [f"value {i % 7}".encode() for i in range(12)]
    written: list[str] = []
    seen_pipelined = False
    with store.batch(limit=2) as batch:
        for data in values:
            written.append(batch.write(data))
            assert all(store.exists(h) for h in written[: batch.durable])
            seen_pipelined |= 0 < batch.durable < len(written)
    assert batch.durable == len(values) and all(store.exists(h) for h in written)
    assert seen_pipelined and temp_files(repo) == []


def test_cat_object_e_loads_neither_the_east_runtime_nor_pygit2(repo, stored):
    r = run("python3", "-X", "importtime", BIN / "e3-cat-object", "-e", stored, cwd=repo)
    modules = {line.split("|")[-1].strip() for line in r.err.splitlines() if line.startswith("import time:")}
    assert "e3.storage.objects" in modules
    assert not {m for m in modules if m.split(".")[0] in ("east", "pygit2", "numpy")}


def test_cat_object_batch_check_prints_types_without_loading_the_east_runtime(repo, stored):
    r = run("python3", "-X", "importtime", BIN / "e3-cat-object", "--batch-check", input=f"{stored}\n", cwd=repo)
    assert r.out == f"{stored} {len(NUMBERS_BEAST2)} Array<Integer>\n"
    modules = {line.split("|")[-1].strip() for line in r.err.splitlines() if line.startswith("import time:")}
    assert "e3.beast2_type" in modules
    assert not {m for m in modules if m.split(".")[0] in ("east", "pygit2", "numpy")}


def test_cat_object_batch_check_of_a_corrupt_object_says_so_without_noise(repo, stored):
    path = objects_in(repo)[0]
    path.chmod(0o644)
    path.write_bytes(NUMBERS_BEAST2[:10] + bytes([NUMBERS_BEAST2[10] ^ 0x40]) + NUMBERS_BEAST2[11:])
    r = run("e3-cat-object", "--batch-check", input=f"{stored}\n", cwd=repo)
    assert r.out == f"{stored} corrupt\n" and r.err == ""


def test_hash_object_stdin_paths_answers_while_stdin_is_still_open(repo, tmp_path):
    (tmp_path / "n.beast2").write_bytes(NUMBERS_BEAST2)
    proc = subprocess.Popen(
        ["e3-hash-object", "-w", "--stdin-paths"], cwd=repo, env=command_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        proc.stdin.write(f"{tmp_path / 'n.beast2'}\n".encode())
        proc.stdin.flush()
        assert proc.stdout.readline().decode().strip() == NUMBERS_HASH
        assert objects_in(repo)  # durable and visible before the answer
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed-file", "temporary-name"])
def test_store_write_publishes_whole_read_only_objects_and_repairs_a_short_one(repo, monkeypatch, unnamed):
    from e3.storage import files
    from e3.storage.repository import open_repository

    monkeypatch.setattr(files, "_unnamed_files", unnamed and hasattr(os, "O_TMPFILE"))
    store = open_repository(repo).objects
    h = store.write(NUMBERS_BEAST2, durable=False)
    path = store.path(h)
    assert h == NUMBERS_HASH and store.read(h) == NUMBERS_BEAST2 and temp_files(repo) == []
    assert path.stat().st_mode & 0o222 == 0  # objects never change
    os.chmod(path, 0o644)
    path.write_bytes(NUMBERS_BEAST2[:5])  # what a power loss can leave of a write without fsync
    assert store.write(NUMBERS_BEAST2, durable=True) == h
    assert path.read_bytes() == NUMBERS_BEAST2 and temp_files(repo) == []


# ---------------------------------------------------------------- large values, read once


LOADED = (
    "import runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "finally:\n"
    "    print('loaded:', *sorted(sys.modules), file=sys.stderr)\n"
)
"""Runs a command (its path, then its arguments) and prints on stderr, at its end, every module
it loaded: -X importtime misses what is imported while a command silences fd 2."""


def large_floats(tmp_path: Path, name: str = "f.beast2") -> Path:
    """The canonical Beast2 of an Array<Float> of 2.4 MB: above the size read whole, so it streams."""
    from e3 import east

    path = tmp_path / name
    path.write_bytes(east.encode([i * 0.5 for i in range(300_000)], east.ArrayType(east.FloatType)))
    return path


def test_hash_object_w_stores_a_large_array_of_floats_without_loading_the_east_runtime(repo, tmp_path):
    value = large_floats(tmp_path)
    r = run("python3", "-c", LOADED, BIN / "e3-hash-object", "-w", value, cwd=repo)
    assert r.out.strip() == hashlib.sha256(value.read_bytes()).hexdigest()
    assert [p.read_bytes() for p in objects_in(repo)] == [value.read_bytes()] and temp_files(repo) == []
    loaded = set(r.err.split("loaded:")[1].split())
    assert "e3.beast2_stream" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("east", "pygit2")}


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda b: b[:-1], "malformed beast2 value"),
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b + b"\x00", "bytes after the end of the value"),
        (lambda b: b[:28] + b"\x01" + b[29:], "malformed beast2"),  # a frame's codec: deflate, which does not inflate
    ],
    ids=["last-byte-cut", "cut-in-half", "byte-after", "bad-frame"],
)
@pytest.mark.parametrize("write", [True, False], ids=["w", "hash-only"])
def test_hash_object_refuses_a_damaged_large_value_read_once_and_stores_nothing(repo, tmp_path, damage, needle, write):
    good = large_floats(tmp_path, "good.beast2").read_bytes()
    (tmp_path / "bad.beast2").write_bytes(damage(good))
    r = run("e3-hash-object", *(["-w"] if write else []), tmp_path / "bad.beast2", cwd=repo, expect=128)
    assert_one_line_error(r, "bad.beast2", needle)
    assert objects_in(repo) == [] and temp_files(repo) == []


def test_hash_object_refuses_a_large_value_of_another_type_than_t(repo, tmp_path):
    r = run("e3-hash-object", "-w", "-t", "Array<Integer>", large_floats(tmp_path), cwd=repo, expect=128)
    assert_one_line_error(r, "f.beast2", "value has type Array<Float>, expected Array<Integer>")
    assert objects_in(repo) == [] and temp_files(repo) == []


def test_hash_object_w_checks_a_large_value_the_runtime_must_read_and_stores_it_as_it_came(repo, tmp_path):
    from e3 import east

    # Strings are checked by the runtime, a piece at a time.
    t = east.ArrayType(east.StringType)
    data = east.encode([f"text {i}" for i in range(200_000)], t)
    (tmp_path / "s.beast2").write_bytes(data)
    assert run("e3-hash-object", "-w", tmp_path / "s.beast2", cwd=repo).out.strip() == hashlib.sha256(data).hexdigest()
    (tmp_path / "b.beast2").write_bytes(data[: len(data) // 2])
    assert_one_line_error(run("e3-hash-object", "-w", tmp_path / "b.beast2", cwd=repo, expect=128), "b.beast2")
    assert len(objects_in(repo)) == 1 and temp_files(repo) == []
