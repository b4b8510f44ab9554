"""git objects read and written without libgit2 (e3.storage.git_odb): the same bytes as libgit2
and git, never a damaged object's, and porcelain that reads or sets a value loads no pygit2."""
from __future__ import annotations

import os
import subprocess
import sys
import zlib

import pygit2
import pytest

from e3_testing.commands import LIB, run, run_loading
from e3.repo import workspace
from e3.storage import git_objects, git_pack
from e3.storage.git_odb import ObjectDatabase
from e3.storage.repository import open_repository

HASH = "%064x"


def git(repo_dir, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo_dir}/.e3", *args], check=True, capture_output=True, text=True).stdout


def every_git_object(r) -> list[bytes]:
    return [oid.raw for oid in r.git.odb]


def libgit2_read(r, oid: bytes) -> tuple[int, bytes]:
    kind, data = r.git.odb.read(pygit2.Oid(raw=oid))
    return int(kind), data


def history(r, batches: int, per: int) -> list[str]:
    """`batches` commits of workspace dev, each setting `per` outputs (a pack each from 8 objects up)."""
    workspace.create(r, "dev")
    commits = []
    for b in range(batches):
        outputs = {("tasks", f"t{i:04d}", "output"): HASH % (b * 1000 + i) for i in range(per)}
        commits.append(workspace.transact(r, "dev", lambda v, o=outputs: o, f"batch {b}").commit)
    return commits


def test_loose_objects_written_here_are_what_git_and_libgit2_read(repo):
    r = open_repository(repo)
    odb = ObjectDatabase(str(repo / ".e3" / "objects"))
    blob = odb.write_loose(git_pack.BLOB, b"hello\n")
    tree = odb.write_loose(git_pack.TREE, git_objects.tree_bytes({b"greeting": (git_objects.BLOB_MODE, blob)}))
    assert git(repo, "cat-file", "-p", blob.hex()) == "hello\n"
    assert git(repo, "cat-file", "-p", tree.hex()) == f"100644 blob {blob.hex()}\tgreeting\n"
    assert libgit2_read(r, blob) == (git_pack.BLOB, b"hello\n")
    path = repo / ".e3" / "objects" / blob.hex()[:2] / blob.hex()[2:]
    os.utime(path, (1_000_000, 1_000_000))
    assert odb.write_loose(git_pack.BLOB, b"hello\n") == blob  # stored already: freshened, as git does, for gc
    assert path.stat().st_mtime > 1_000_000
    assert oct(path.stat().st_mode & 0o777) == oct(0o444)
    assert not [n for n in os.listdir(path.parent) if n.startswith("tmp_object_git2_")]
    subprocess.run(["git", f"--git-dir={repo}/.e3", "fsck", "--strict", "--no-dangling"], check=True, capture_output=True)


def test_every_object_of_a_history_reads_as_libgit2_reads_it_before_and_after_git_repacks(repo, e3):
    r = open_repository(repo)
    history(r, 6, 30)  # packs of e3's own (no deltas)
    workspace.transact(r, "dev", lambda v: {("inputs", "x"): HASH % 7}, "one more")  # loose
    objects = every_git_object(r)
    odb = ObjectDatabase(str(repo / ".e3" / "objects"))
    assert objects and all(odb.read(oid) == libgit2_read(r, oid) for oid in objects)
    assert git_pack.pack_names(str(repo / ".e3" / "objects" / "pack")) and loose_count(repo) > 0

    e3("repo", "gc", repo, "--prune=now")  # git's own pack, with deltas between similar trees
    r = open_repository(repo)
    objects = every_git_object(r)
    odb = ObjectDatabase(str(repo / ".e3" / "objects"))
    read_here = [oid for oid in objects if odb.read(oid) is not None]
    assert all(odb.read(oid) == libgit2_read(r, oid) for oid in read_here)  # a delta is None: libgit2 answers it
    assert read_here, "objects stored whole in git's pack are read here too"
    assert all(git_objects.read_object(r, oid) == libgit2_read(r, oid) for oid in objects)


def loose_count(repo) -> int:
    d = repo / ".e3" / "objects"
    return sum(1 for b in os.listdir(d) if len(b) == 2 for n in os.listdir(d / b) if len(n) == 38)


def test_a_damaged_loose_object_is_never_read_as_a_value(repo):
    r = open_repository(repo)
    odb = ObjectDatabase(str(repo / ".e3" / "objects"))
    blob = odb.write_loose(git_pack.BLOB, (HASH % 1 + "\n").encode())
    path = repo / ".e3" / "objects" / blob.hex()[:2] / blob.hex()[2:]
    os.chmod(path, 0o644)
    path.write_bytes(zlib.compress(b"blob 65\0" + (HASH % 2 + "\n").encode()))  # well-formed, another object's bytes
    assert odb.read(blob) is None
    path.write_bytes(path.read_bytes()[:-3])  # truncated
    assert odb.read(blob) is None
    path.write_bytes(zlib.compress(b"blob 3\0" + b"x" * 100_000))  # more bytes than its header says
    assert odb.read(blob) is None
    path.write_bytes(zlib.compress(b"blob 300\0" + b"x" * 3))  # fewer
    assert odb.read(blob) is None
    path.write_bytes(b"not zlib")
    assert odb.read(blob) is None
    with pytest.raises(pygit2.GitError):  # libgit2, asked next, refuses it in its own words
        git_objects.read_object(r, blob)


def test_a_damaged_packed_object_is_never_read_as_a_value(repo):
    r = open_repository(repo)
    commit = history(r, 1, 30)[0]
    pack_dir = repo / ".e3" / "objects" / "pack"
    (name,) = git_pack.pack_names(str(pack_dir))
    entries = git_pack.read_index(str(pack_dir / f"{name}.idx"))
    oid, _, offset = max(entries, key=lambda e: e[2])  # the last record: its bytes end the pack's data
    pack = pack_dir / f"{name}.pack"
    data = bytearray(pack.read_bytes())
    data[offset + 4] ^= 0x01  # inside the record's stored bytes
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(data))
    assert ObjectDatabase(str(repo / ".e3" / "objects")).read(oid) is None
    assert commit


def test_a_pack_made_after_the_first_lookup_is_found(repo):
    r = open_repository(repo)
    first = history(r, 1, 30)[0]
    odb = ObjectDatabase(str(repo / ".e3" / "objects"))
    assert odb.read(bytes.fromhex(first))[0] == git_pack.COMMIT  # the packs are listed now
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); from e3.repo import workspace; from e3.storage.repository import open_repository\n"
        "r = open_repository(sys.argv[2])\n"
        "print(workspace.transact(r, 'dev', lambda v: {('tasks', f't{i}', 'output'): '%064x' % (5000 + i) for i in range(30)}, 'later').commit)"
    )
    later = subprocess.run([sys.executable, "-c", probe, str(LIB), str(repo)], capture_output=True, text=True, check=True).stdout.strip()
    assert len(git_pack.pack_names(str(repo / ".e3" / "objects" / "pack"))) == 2
    kind, data = odb.read(bytes.fromhex(later))
    assert kind == git_pack.COMMIT and data.startswith(b"tree ")


def test_getting_and_setting_a_value_loads_no_pygit2(demo_dev):
    (demo_dev / "a.json").write_text("21")
    set_run, loaded = run_loading(("pygit2",), "set", demo_dev, "dev.inputs.a", demo_dev / "a.json")
    assert set_run.returncode == 0, set_run.stderr
    assert loaded == set()
    get_run, loaded = run_loading(("pygit2",), "get", demo_dev, "dev.inputs.a")
    assert (get_run.returncode, get_run.stdout, loaded) == (0, b"21\n", set())
    assert git(demo_dev, "log", "--format=%an %s", "-1", "refs/workspaces/dev").strip() == "e3-test set .inputs.a"
    out = subprocess.run(["git", f"--git-dir={demo_dev}/.e3", "fsck", "--no-dangling"], capture_output=True, text=True)
    assert "error" not in out.stdout + out.stderr.replace("bad sha1 file", "")  # e3's values are not git's: git names them so


def test_a_bad_author_name_is_one_line_and_writes_nothing(demo_dev):
    before = git(demo_dev, "rev-parse", "refs/workspaces/dev")
    (demo_dev / "a.json").write_text("5")
    for name in ("  \t", "a <b>"):
        out = run("e3", "set", demo_dev, "dev.inputs.a", demo_dev / "a.json", env={"E3_AUTHOR_NAME": name}, expect=2)
        err = out.stderr.decode().strip()
        assert "\n" not in err and "invalid commit author name" in err and "E3_AUTHOR_NAME" in err
    assert git(demo_dev, "rev-parse", "refs/workspaces/dev") == before


def test_a_long_lived_reader_lets_go_of_packs_a_merge_removed(repo):
    """In a process without libgit2 (which maps packs too), so its map lists only this reader's."""
    history(open_repository(repo), 6, 30)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from e3.storage import git_pack; from e3.storage.git_odb import ObjectDatabase\n"
        "objects, pack_dir = sys.argv[2] + '/objects', sys.argv[2] + '/objects/pack'\n"
        "odb = ObjectDatabase(objects)\n"
        "oids = [bytes.fromhex(h) for h in sys.stdin.read().split()]\n"
        "assert len(oids) > 256 and all(odb.read(o) is not None for o in oids)\n"  # one index over every pack now
        "names = git_pack.pack_names(pack_dir)\n"
        "new, merged = git_pack.merge_packs(pack_dir, names)\n"
        "assert new and sorted(merged) == sorted(names)\n"
        "[git_pack.remove_pack(pack_dir, n) for n in merged]\n"
        "assert odb.read(bytes(20)) is None\n"  # a miss looks at the directory again
        "assert all(odb.read(o) is not None for o in oids)\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(new in maps, [n for n in merged if n in maps], 'pygit2' in sys.modules)\n"
    )
    oids = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    out = subprocess.run([sys.executable, "-c", probe, str(LIB), str(repo / ".e3")], input=oids, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "[]", "False"]


def test_threads_writing_the_same_objects_at_once_each_store_them_whole(repo):
    """The server's threads each have a handle of their own on one repository."""
    import threading

    objects = str(repo / ".e3" / "objects")
    blobs = [(HASH % i + "\n").encode() * 50 for i in range(100)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer() -> None:
        odb = ObjectDatabase(objects)
        start.wait()
        try:
            for data in blobs:
                odb.write_loose(git_pack.BLOB, data)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    odb = ObjectDatabase(objects)
    assert all(odb.read(git_pack.object_id(git_pack.BLOB, data)) == (git_pack.BLOB, data) for data in blobs)
    assert not [p for p in (repo / ".e3" / "objects").glob("*/tmp_object_git2_*")]


def test_a_loose_write_cut_short_leaves_a_temporary_fsck_warns_of_and_a_start_sweeps(repo):
    """Killed between its temporary file and the rename, a loose write leaves the file in objects/
    itself, as libgit2 does: fsck lists it as a temporary (a warning, exit 0), not as a misnamed
    object, and the store's sweep removes it once it is old."""
    objects = repo / ".e3" / "objects"
    code = (
        "import os, sys\n"
        "from e3.storage import git_odb, git_pack\n"
        "os.rename = lambda a, b: os.kill(os.getpid(), 9)\n"  # the kill, just before the rename
        f"git_odb.ObjectDatabase({str(objects)!r}).write_loose(git_pack.BLOB, b'cut short')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(LIB)}, capture_output=True)
    assert proc.returncode == -9, proc.stderr
    (left,) = objects.glob("tmp_object_git2_*")
    assert not list(objects.glob("*/tmp_object_git2_*"))
    out = run("e3-fsck", "--repo", repo).out  # exit 0: a leftover is a warning
    assert f"objects/{left.name}" in out and "misnamed" not in out
    os.utime(left, (1, 1))  # older than any writer could still hold it
    assert open_repository(repo).objects.sweep_temporaries() == 1
    assert not left.exists()


_PRUNER = """
import os, sys, time
objects, stop = sys.argv[1], sys.argv[2]
while not os.path.exists(stop):  # what git's prune does to a bucket it emptied: remove it
    for name in os.listdir(objects):
        if len(name) == 2:
            try:
                os.rmdir(os.path.join(objects, name))
            except OSError:
                pass
"""


def test_a_loose_write_survives_its_bucket_being_removed_meanwhile(repo, tmp_path):
    """e3 repo gc runs git's prune, which removes empty buckets (objects/ab/): one removed between
    write_loose's makedirs and its rename is made again (seen once in test_gc's eight writers)."""
    objects = repo / ".e3" / "objects"
    stop = tmp_path / "stop"
    pruner = subprocess.Popen([sys.executable, "-c", _PRUNER, str(objects), str(stop)])
    odb = ObjectDatabase(str(objects))
    try:
        for i in range(3000):  # each into a bucket that gc empties again, as it removes garbage
            oid = odb.write_loose(git_pack.BLOB, b"value %d\n" % i)  # raised StorageError before
            path = objects / oid.hex()[:2] / oid.hex()[2:]
            assert zlib.decompress(path.read_bytes()) == b"blob %d\0value %d\n" % (len(b"value %d\n" % i), i)
            path.unlink()
    finally:
        stop.touch()
        pruner.wait(timeout=30)


def test_a_value_write_survives_its_bucket_being_removed_meanwhile(repo, tmp_path):
    """The same race for e3's own objects, which share git's buckets: a value's bucket removed
    between its making and the link (or the rename) that names the value is made again."""
    objects = repo / ".e3" / "objects"
    stop = tmp_path / "stop"
    store = open_repository(repo).objects
    pruner = subprocess.Popen([sys.executable, "-c", _PRUNER, str(objects), str(stop)])
    try:
        for i in range(3000):
            data = b"\x89East value %d" % i
            obj = store.write(data, durable=False)  # raised StorageError (no such file) before
            path = objects / obj[:2] / (obj[2:] + ".beast2")
            assert path.read_bytes() == data
            path.unlink()
    finally:
        stop.touch()
        pruner.wait(timeout=30)
