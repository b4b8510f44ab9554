"""A commit's git objects written as one pack (e3.storage.git_pack, e3.storage.git_objects): same ids as pygit2, visible everywhere."""
from __future__ import annotations

import os
import time
import subprocess
import sys
import zlib

import pygit2
import pytest

from e3_testing.commands import LIB, command_env, run

from e3 import east
from e3.storage import git_objects, git_pack, refs
from e3.repo import workspace
from e3.storage.repository import open_repository

HASH = "%064x"


def git(repo_dir, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo_dir}/.e3", *args], check=True, capture_output=True, text=True).stdout


def packs(repo_dir) -> list[str]:
    d = repo_dir / ".e3" / "objects" / "pack"
    return sorted(n for n in os.listdir(d) if n.endswith(".pack")) if d.exists() else []


def loose_git_objects(repo_dir) -> list[str]:
    d = repo_dir / ".e3" / "objects"
    return [b + n for b in os.listdir(d) if len(b) == 2 for n in os.listdir(d / b) if len(n) == 38]


def outputs(n: int, start: int = 0) -> dict:
    return {("tasks", f"t{i:04d}", "output"): HASH % (i + 1) for i in range(start, start + n)}


def workspace_with(repo_dir, n: int) -> tuple:
    """A workspace `dev` whose second commit sets `n` task outputs; returns (repository, view)."""
    r = open_repository(repo_dir)
    workspace.create(r, "dev")
    return r, workspace.transact(r, "dev", lambda v: outputs(n), f"{n} task outputs")


def pygit2_tree(g: pygit2.Repository, entries: dict) -> pygit2.Oid:
    """The tree pygit2's TreeBuilder makes of {path: hash} (e3's old way of writing state trees)."""
    node: dict = {}
    for path, h in entries.items():
        d = node
        for part in path[:-1]:
            d = d.setdefault(part, {})
        d[path[-1]] = h

    def build(d: dict) -> pygit2.Oid:
        tb = g.TreeBuilder()
        for name, child in d.items():
            if isinstance(child, dict):
                tb.insert(name, build(child), pygit2.GIT_FILEMODE_TREE)
            else:
                tb.insert(name, g.create_blob((child + "\n").encode()), pygit2.GIT_FILEMODE_BLOB)
        return tb.write()

    return build(node)


def test_tree_ids_match_pygit2_for_names_git_orders_specially(repo):
    g = open_repository(repo).git
    blob = g.create_blob(b"x\n")
    sub = g.TreeBuilder()
    sub.insert("f", blob, pygit2.GIT_FILEMODE_BLOB)
    sub_id = sub.write()
    # "a" as a tree sorts as "a/": after "a-b" and "a.b" (both < "/"), before "a0" and "ab"
    names = {"a": True, "a-b": False, "a.b": True, "a0": False, "ab": False, "b": True, "é": False, "Z": False}
    tb = g.TreeBuilder()
    entries = {}
    for name, is_tree in names.items():
        oid = sub_id if is_tree else blob
        mode = pygit2.GIT_FILEMODE_TREE if is_tree else pygit2.GIT_FILEMODE_BLOB
        tb.insert(name, oid, mode)
        entries[name.encode()] = (git_objects.TREE_MODE if is_tree else git_objects.BLOB_MODE, oid.raw)
    data = git_objects.tree_bytes(entries)
    assert git_pack.object_id(git_pack.TREE, data) == tb.write().raw
    assert git_objects.parse_tree(data) == entries


def test_an_edited_large_tree_has_the_bytes_and_id_of_one_built_whole(repo):
    """NewObjects.edit_tree re-serializes a large cached tree from its rows: after adds, removals
    and names turning from blob to tree (which moves them in git's order), its bytes are those of
    the tree built from scratch, and its id is pygit2's."""
    import random

    r = open_repository(repo)
    g = r.git
    blob = g.create_blob(b"x\n")
    sub = g.TreeBuilder()
    sub.insert("f", blob, pygit2.GIT_FILEMODE_BLOB)
    sub_id = sub.write()
    rnd = random.Random(7)
    names = [f"t{i}" for i in range(300)] + ["a", "a-b", "a.b", "a0", "ab"]
    entries = {n.encode(): (git_objects.BLOB_MODE, blob.raw) for n in names}
    new = git_objects.NewObjects(r)
    base = new.add_tree(entries)
    assert new.layout(base).entries == entries  # cached as written
    other = g.create_blob(b"y\n").raw
    other_sub = g.TreeBuilder()
    other_sub.insert("g", blob, pygit2.GIT_FILEMODE_BLOB)
    ids = {git_objects.BLOB_MODE: (blob.raw, other), git_objects.TREE_MODE: (sub_id.raw, other_sub.write().raw)}
    for step in range(8):
        edits: dict = {}
        if step % 2:  # only ids change: written over the old bytes
            for name in rnd.sample(sorted(entries), 20):
                mode = entries[name][0]
                edits[name] = (mode, rnd.choice(ids[mode]))
        else:  # names come and go, and "a" turns from blob to tree and back (moving in git's order)
            for name in rnd.sample(sorted(entries), 20):
                edits[name] = None if rnd.random() < 0.3 else ((git_objects.TREE_MODE, sub_id.raw) if rnd.random() < 0.5 else (git_objects.BLOB_MODE, blob.raw))
            edits[b"a"] = (git_objects.TREE_MODE, sub_id.raw) if step % 4 == 0 else (git_objects.BLOB_MODE, blob.raw)
            edits[f"new{step}".encode()] = (git_objects.BLOB_MODE, blob.raw)
            edits[b"absent"] = None
        base = new.edit_tree(base, edits)
        for name, e in edits.items():
            if e is None:
                entries.pop(name, None)
            else:
                entries[name] = e
        data = git_objects.tree_bytes(entries)
        assert new.objects[base] == (git_pack.TREE, data)
        assert git_objects.parse_tree(data) == entries
    tb = g.TreeBuilder()
    for name, (mode, oid) in entries.items():
        tb.insert(name.decode(), pygit2.Oid(raw=oid), mode)
    assert tb.write().raw == base
    # Read back as stored, the same layout: its rows are the stored bytes
    new.write()
    git_objects._trees.clear()
    assert git_objects.NewObjects(r).layout(base).data == data
    assert new.edit_tree(base, {name: None for name in entries}) is None  # nothing left


def test_commit_ids_match_pygit2_with_parents_offsets_and_multiline_messages(repo):
    g = open_repository(repo).git
    tree = g.TreeBuilder().write()
    first = g.create_commit(None, pygit2.Signature("a", "a@x", 1, 0), pygit2.Signature("a", "a@x", 1, 0), "root", tree, [])
    for author, committer, message in [
        (pygit2.Signature(" Zoë ", " z@x ", 1700000000, -330), pygit2.Signature("c", "c@x", 1700000001, 120), "one line"),
        (pygit2.Signature("e3", "e3@localhost", 1800000000, 0), pygit2.Signature("e3", "e3@localhost", 1800000000, 0), "subject\n\nbody\n"),
    ]:
        want = g.create_commit(None, author, committer, message, tree, [first])
        data = git_objects.commit_bytes(tree.raw, [first.raw], author, committer, message)
        assert git_pack.object_id(git_pack.COMMIT, data) == want.raw


def test_workspace_commit_of_many_outputs_is_one_pack_with_the_ids_pygit2_would_give(repo):
    before = set(loose_git_objects(repo))
    r, view = workspace_with(repo, 40)
    assert len(packs(repo)) == 1
    loose = set(loose_git_objects(repo))
    assert view.commit not in loose and len(loose - before) == 2  # only the first commit and its empty tree
    g = pygit2.Repository(str(repo / ".e3"))
    c = g[pygit2.Oid(hex=view.commit)]
    assert c.tree_id == pygit2_tree(g, outputs(40))
    again = g.create_commit(None, c.author, c.committer, c.message, c.tree_id, c.parent_ids)
    assert str(again) == view.commit
    assert refs.read_state(r, view.commit) == outputs(40)


def test_workspace_commit_of_a_few_changes_stays_loose(repo):
    r, view = workspace_with(repo, 1)
    assert packs(repo) == []
    assert view.commit in loose_git_objects(repo)


def test_changes_on_a_packed_tree_keep_the_other_entries(repo):
    r, _ = workspace_with(repo, 40)
    changes = {("tasks", "t0003", "output"): None, ("tasks", "t0005", "output"): HASH % 99, ("inputs", "x"): HASH % 7}
    view = workspace.transact(r, "dev", lambda v: changes, "edit")
    want = outputs(40)
    del want[("tasks", "t0003", "output")]
    want[("tasks", "t0005", "output")] = HASH % 99
    want[("inputs", "x")] = HASH % 7
    assert refs.read_state(r, view.commit) == want
    g = r.git
    assert g[pygit2.Oid(hex=view.commit)].tree_id == pygit2_tree(g, want)
    assert ("t0003",) not in {(e.name,) for e in g[pygit2.Oid(hex=view.commit)].tree["tasks"].peel(pygit2.Tree)}


def test_a_commit_on_one_this_process_wrote_reads_neither_its_parent_nor_its_root_tree(repo):
    """A run's commits each build on the last: looking for that commit and its small root tree
    passed every pack (it is in the newest, looked at last) and gave each an index of all its ids."""
    r = open_repository(repo)
    workspace.create(r, "dev")
    head = refs.read(r, workspace.ref_name("dev"))
    for k in range(4):
        head = workspace.write_commit(r, head, outputs(40, 40 * k), f"batch {k}")
    assert len(packs(repo)) == 4
    before = r.git_odb._lookups
    head = workspace.write_commit(r, head, outputs(40, 160), "batch 4")
    assert r.git_odb._lookups == before
    assert refs.read_state(r, head) == outputs(200)


def test_a_new_pack_is_found_by_a_repository_opened_before_it_in_this_and_other_processes(repo, e3):
    r = open_repository(repo)
    workspace.create(r, "dev")
    g = r.git
    list(g.references)  # libgit2 has listed the (empty) pack directory
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys, pygit2\ng = pygit2.Repository(sys.argv[1]); g.get('0' * 40)\n"
         "for line in sys.stdin: print(g[pygit2.Oid(hex=line.strip())].message.splitlines()[0], flush=True)",
         str(repo / ".e3")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=command_env())
    values = {p: r.objects.write(east.encode(str(i), east.StringType)) for i, p in enumerate(outputs(30))}
    view = workspace.transact(r, "dev", lambda v: values, "30 outputs")
    assert len(packs(repo)) == 1
    assert g[pygit2.Oid(hex=view.commit)].message == "30 outputs"
    other.stdin.write(view.commit + "\n")
    other.stdin.flush()
    assert other.stdout.readline().strip() == "30 outputs"
    other.stdin.close()
    assert other.wait(30) == 0
    git(repo, "fsck", "--strict", "--no-dangling")
    assert "+" + values[("tasks", "t0029", "output")] in git(repo, "log", "-p", "refs/workspaces/dev")
    assert git(repo, "cat-file", "-t", view.commit) == "commit\n"
    for idx in (repo / ".e3" / "objects" / "pack").glob("*.idx"):
        git(repo, "verify-pack", str(idx))
    assert e3("workspace", "log", repo, "dev").out.splitlines()[0].endswith("30 outputs")
    run("e3-fsck", "--repo", repo)


def test_pack_records_decode_and_large_objects_are_compressed(tmp_path):
    big = b"x" * 5000
    objs = [(git_pack.BLOB, git_pack.object_id(git_pack.BLOB, d), d) for d in (b"small\n", big)]
    name = git_pack.write_pack(str(tmp_path), objs)
    data = (tmp_path / f"{name}.pack").read_bytes()
    assert name == "pack-" + data[-20:].hex()
    assert len(data) < 1000  # the 5000 bytes were deflated
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "g")], check=True)
    out = subprocess.run(["git", "--git-dir", str(tmp_path / "g"), "index-pack", "--stdin", "--strict"], input=data,
                         capture_output=True, check=True).stdout
    assert out.split()[-1].decode() == data[-20:].hex()
    assert (tmp_path / f"{name}.idx").read_bytes() == next((tmp_path / "g" / "objects" / "pack").glob("*.idx")).read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("tmp_")] == []
    assert zlib.decompress(data[12 + 1 : 12 + 1 + len(zlib.compress(b"small\n", 0))]) == b"small\n"


def test_a_large_tree_is_stored_not_deflated_and_git_reads_it(tmp_path):
    """A run's every commit writes its workspace's `tasks` tree whole: deflating it cost each commit
    time in proportion to the number of tasks, for a quarter of its size."""
    entries = {f"t{i:05d}".encode(): (git_objects.BLOB_MODE, git_pack.object_id(git_pack.BLOB, b"%d" % i)) for i in range(1000)}  # one stored block
    tree = git_objects.tree_bytes(entries)
    oid = git_pack.object_id(git_pack.TREE, tree)
    name = git_pack.write_pack(str(tmp_path), [(git_pack.TREE, oid, tree)])
    data = (tmp_path / f"{name}.pack").read_bytes()
    assert tree in data  # stored as is
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "g")], check=True)
    subprocess.run(["git", "--git-dir", str(tmp_path / "g"), "index-pack", "--stdin"], input=data, capture_output=True, check=True)
    shown = subprocess.run(["git", "--git-dir", str(tmp_path / "g"), "cat-file", "tree", oid.hex()], capture_output=True, check=True).stdout
    assert shown == tree


def test_index_has_large_offsets_past_two_gigabytes():
    entries = [(b"\x01" * 20, 5, 12), (b"\x02" * 20, 6, 0x90000000)]
    idx = git_pack.index_bytes(entries, b"\0" * 20)
    base = 8 + 256 * 4 + 2 * 20 + 2 * 4
    assert idx[base : base + 8] == bytes.fromhex("0000000c80000000")
    assert idx[base + 8 : base + 16] == (0x90000000).to_bytes(8, "big")


def test_write_state_ids_match_pygit2(repo):
    r = open_repository(repo)
    entries = {(".workspace",): HASH % 1, ("inputs", "x"): HASH % 2, **outputs(20)}
    c = refs.write_state(r, entries, None, "state")
    assert r.git[pygit2.Oid(hex=c)].tree_id == pygit2_tree(r.git, entries)
    assert refs.read_state(r, c) == entries
    with pytest.raises(refs.RefError):
        refs.write_state(r, {("a",): HASH % 1, ("a", "b"): HASH % 2}, None, "leaf and tree")


def many_packs(repo_dir, count: int, per: int = 20) -> tuple:
    """A workspace whose history adds `count` packs of `per` outputs each; returns (repository, every state)."""
    r = open_repository(repo_dir)
    workspace.create(r, "dev")
    states = []
    for i in range(count):
        view = workspace.transact(r, "dev", lambda v, i=i: outputs(per, i * per), f"batch {i}")
        states.append((view.commit, dict(view.datasets)))
    return r, states


def test_geometric_split_merges_only_the_small_end():
    assert git_objects.geometric_split([300] * 32) == 32
    assert git_objects.geometric_split([1, 2, 4, 8, 16]) == 0
    assert git_objects.geometric_split([3, 5, 100, 200, 1000]) == 2
    assert git_objects.geometric_split([10, 10, 10, 50, 1000]) == 4


def test_the_writer_of_the_32nd_pack_merges_them_and_history_stays_readable(repo, e3):
    before = git_objects.PACKS_MAX
    r, states = many_packs(repo, git_objects.PACKS_MAX - 1)
    g = pygit2.Repository(str(repo / ".e3"))
    assert g[pygit2.Oid(hex=states[0][0])].message == "batch 0"  # this reader has opened the first packs
    assert len(packs(repo)) == git_objects.PACKS_MAX - 1
    view = workspace.transact(r, "dev", lambda v: outputs(20, 10_000), "the last straw")
    assert len(packs(repo)) == 1 and git_objects.PACKS_MAX == before
    for commit, datasets in states + [(view.commit, view.datasets)]:
        assert refs.read_state(r, commit) == datasets
        assert {p: h for p, h in refs.read_state(open_repository(repo), commit).items()} == datasets
        assert g[pygit2.Oid(hex=commit)].tree_id  # a reader that knew the removed packs finds the merged one
    git(repo, "fsck", "--strict", "--no-dangling")
    assert len(e3("workspace", "log", repo, "dev").out.splitlines()) == git_objects.PACKS_MAX + 1


def test_merging_leaves_packs_with_deltas_alone(repo):
    r = open_repository(repo)
    text = bytes(range(256)) * 40
    blobs = "".join(f"{r.git.create_blob(text + b'%d' % i)}\n" for i in range(3))  # similar: git makes deltas
    subprocess.run(["git", f"--git-dir={repo}/.e3", "pack-objects", "-q", f"{repo}/.e3/objects/pack/pack"], input=blobs,
                   text=True, check=True, capture_output=True)
    (with_deltas,) = [p[:-5] for p in packs(repo)]
    assert "chain length = 1" in git(repo, "verify-pack", "-v", str(repo / ".e3" / "objects" / "pack" / f"{with_deltas}.idx"))
    many_packs(repo, 2)
    names = [p[:-5] for p in packs(repo)]
    new, merged = git_pack.merge_packs(str(repo / ".e3" / "objects" / "pack"), names)
    assert sorted(merged) == sorted(n for n in names if n != with_deltas)
    assert new is not None and new not in names


def test_gc_repacks_many_small_packs_into_one(repo, e3):
    r, states = many_packs(repo, 12)
    assert len(packs(repo)) == 12
    e3("repo", "gc", repo, "--prune=now")
    assert len(packs(repo)) == 1
    for commit, datasets in states:
        assert refs.read_state(open_repository(repo), commit) == datasets
    git(repo, "fsck", "--strict", "--no-dangling")


def test_gc_removes_and_fsck_reports_temporary_pack_files_left_by_a_kill(repo, e3):
    pack_dir = repo / ".e3" / "objects" / "pack"
    pack_dir.mkdir(exist_ok=True)
    left = pack_dir / "tmp_pack_0123456789ab"
    left.write_bytes(b"PACK")
    fresh = pack_dir / "tmp_idx_ba9876543210"
    fresh.write_bytes(b"")
    old = time.time() - 2 * 3600
    os.utime(left, (old, old))
    out = run("e3-fsck", "--repo", repo)  # a leftover is a warning: listed, exit 0
    assert "temp objects/pack/tmp_pack_0123456789ab: temporary pack file left behind (4 bytes)" in out.out
    assert "tmp_idx_ba9876543210" not in out.out  # a minute old at most: a writer may still be at it
    e3("repo", "gc", repo, "--prune=1.hour.ago")
    assert not left.exists() and fresh.exists()


def test_moving_a_ref_to_a_packed_commit_reads_its_type_without_pygit2(repo):
    r, view = workspace_with(repo, 20)
    tree = str(r.git[pygit2.Oid(hex=view.commit)].tree_id)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from e3.storage import refs; from e3.storage.repository import open_repository\n"
             "r = open_repository(sys.argv[2]); print(refs.git_object_type(r, sys.argv[3]), 'pygit2' in sys.modules)")
    for oid, want in ((view.commit, "commit False"), (tree, "tree False"), ("0" * 40, "None True")):
        out = subprocess.run([sys.executable, "-c", probe, str(LIB), str(repo), oid], capture_output=True, text=True, check=True)
        assert out.stdout.split() == want.split()
    run("e3-update-ref", "--repo", repo, "refs/workspaces/copy", view.commit)
    with pytest.raises(refs.RefError, match="is a git tree"):
        refs.update(r, "refs/workspaces/copy", tree)


def test_packed_type_finds_every_object_of_many_packs_and_after_gc(repo, e3):
    r, states = many_packs(repo, 5)
    pack_dir = str(repo / ".e3" / "objects" / "pack")
    for commit, _ in states:
        assert git_pack.packed_type(pack_dir, bytes.fromhex(commit)) == git_pack.COMMIT
    e3("repo", "gc", repo, "--prune=now")
    for commit, _ in states:  # git's pack: found, or None for a delta (then libgit2 answers)
        assert git_pack.packed_type(pack_dir, bytes.fromhex(commit)) in (git_pack.COMMIT, None)
        assert refs.git_object_type(open_repository(repo), commit) == "commit"


def test_merging_is_skipped_while_gc_or_another_writer_holds_the_packs_lock(repo):
    from e3.storage.locks import Lock

    r, states = many_packs(repo, 3)
    with Lock(r, git_objects.PACKS_LOCK, "gc"):
        assert git_objects.consolidate(r) == []
        assert len(packs(repo)) == 3
    assert len(git_objects.consolidate(r)) == 3 and len(packs(repo)) == 1
    for commit, datasets in states:
        assert refs.read_state(open_repository(repo), commit) == datasets


def blob_and_tree_packs(pack_dir, count: int, blob_size: int, seed: int = 0) -> tuple[list[str], list[bytes]]:
    """`count` packs written by e3, each of one blob of `blob_size` random bytes and one tree of as many bytes
    naming it, the last three also holding the first pack's objects; returns (their names, the ids of every object)."""
    import random

    rnd = random.Random(seed)
    names, oids = [], []
    for i in range(count):
        blob = rnd.randbytes(blob_size)
        blob_id = git_pack.object_id(git_pack.BLOB, blob)
        tree = b"".join(b"100644 f%06d\0" % n + blob_id for n in range(blob_size // 34))
        objs = [(git_pack.BLOB, blob_id, blob), (git_pack.TREE, git_pack.object_id(git_pack.TREE, tree), tree)]
        if i == 0:
            first = objs
        elif i >= count - 3:
            objs = objs + first  # held by several packs: merged once
        names.append(git_pack.write_pack(str(pack_dir), objs, durable=False))
        oids += [oid for _, oid, _ in objs if oid not in oids]
    return names, oids


def test_a_merged_pack_of_large_and_small_objects_is_valid_for_git_and_pygit2(repo):
    r, states = many_packs(repo, 4)
    pack_dir = repo / ".e3" / "objects" / "pack"
    _, big = blob_and_tree_packs(pack_dir, 5, 3 << 20)  # records longer than one read
    for oid in big[:2]:  # the first pack's blob and tree, held by four packs, and reachable
        git(repo, "update-ref", f"refs/big/{oid.hex()}", oid.hex())
    names = git_pack.pack_names(str(pack_dir))
    packed = {oid for name in names for oid, _, _ in git_pack.read_index(str(pack_dir / f"{name}.idx"))}
    everything = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype) %(objectsize)")
    new, merged = git_pack.merge_packs(str(pack_dir), names)
    assert sorted(merged) == sorted(names) and new not in names
    for name in merged:
        git_pack.remove_pack(str(pack_dir), name)
    assert git_pack.pack_names(str(pack_dir)) == [new]
    assert [p.name for p in pack_dir.iterdir() if p.name.startswith("tmp_")] == []
    listed = git(repo, "verify-pack", "-v", str(pack_dir / f"{new}.idx"))
    assert "non delta: %d objects" % len(packed) in listed
    assert {oid for oid, _, _ in git_pack.read_index(str(pack_dir / f"{new}.idx"))} == packed
    kinds = [line.split()[1] for line in listed.splitlines() if len(line.split()) == 5 and len(line.split()[0]) == 40]
    assert kinds == sorted(kinds, key=["commit", "tree", "blob"].index)  # commits first, then trees, then blobs
    git(repo, "fsck", "--strict", "--no-dangling")
    assert git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype) %(objectsize)") == everything
    g = pygit2.Repository(str(repo / ".e3"))
    for line in everything.splitlines():
        oid, kind, size = line.split()
        obj = g.odb.read(oid)
        assert (obj[0], len(obj[1])) == ({"commit": 1, "tree": 2, "blob": 3}[kind], int(size))
        assert git_pack.object_id(obj[0], obj[1]).hex() == oid
    for commit, datasets in states:
        assert refs.read_state(open_repository(repo), commit) == datasets


def test_a_pack_whose_record_does_not_match_its_crc_is_left_out_of_a_merge(tmp_path):
    names, _ = blob_and_tree_packs(tmp_path, 4, 4096)
    idx = tmp_path / f"{names[2]}.idx"
    data = bytearray(idx.read_bytes())
    n = git_pack.object_count(str(tmp_path), names[2])
    for at in range(8 + 256 * 4 + 20 * n, 8 + 256 * 4 + 24 * n, 4):  # every CRC-32: the pack's checksum still matches
        data[at] ^= 1
    idx.chmod(0o644)
    idx.write_bytes(bytes(data))
    new, merged = git_pack.merge_packs(str(tmp_path), names)
    assert merged == [n for n in names if n != names[2]]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(tuple(names))) == [f"{new}.idx", f"{new}.pack"]
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "g")], check=True)
    subprocess.run(["git", "--git-dir", str(tmp_path / "g"), "verify-pack", str(tmp_path / f"{new}.idx")], check=True)


_MERGE_PEAK = """
import sys; sys.path.insert(0, sys.argv[1])
from e3.storage import git_pack

def peak():
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]) << 10

pack_dir = sys.argv[2]
names = git_pack.pack_names(pack_dir)
before = peak()
new, merged = git_pack.merge_packs(pack_dir, names, durable=False)
assert sorted(merged) == sorted(names), merged
print(new, peak() - before)
"""


def test_merging_packs_holds_no_pack_in_memory(tmp_path):
    """A subprocess merges over 200 MB of packs of random blobs and large trees; its peak memory grows by little."""
    names, oids = blob_and_tree_packs(tmp_path, 45, 4 << 20)
    total = sum(os.path.getsize(tmp_path / f"{n}.pack") for n in names)
    assert total > 200 << 20
    out = subprocess.run([sys.executable, "-c", _MERGE_PEAK, str(LIB), str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    new, grew = out.stdout.split()
    assert int(grew) < 16 << 20, f"merging {total >> 20} MB of packs raised the peak by {int(grew) >> 20} MB"
    assert git_pack.object_count(str(tmp_path), new) == len(oids)
    assert git_pack.verify_pack(str(tmp_path), new) is None


def test_merging_many_small_objects_holds_little_per_object(tmp_path):
    """A workspace's commits write two small objects per task: a merge of a large run's packs reads
    hundreds of thousands. What it holds per object is a few dozen bytes, not a tuple or more each."""
    per, count = 12_000, 20
    for k in range(count):
        blobs = [b"%d-%d\n" % (k, i) for i in range(per)]
        git_pack.write_pack(str(tmp_path), [(git_pack.BLOB, git_pack.object_id(git_pack.BLOB, d), d) for d in blobs], durable=False)
    out = subprocess.run([sys.executable, "-c", _MERGE_PEAK, str(LIB), str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    new, grew = out.stdout.split()
    assert git_pack.object_count(str(tmp_path), new) == per * count
    assert git_pack.verify_pack(str(tmp_path), new) is None
    assert int(grew) / (per * count) < 350, f"merging {per * count} objects raised the peak by {int(grew) >> 20} MB"
