"""The memo index (e3.repo.memo_index): a no-op run answers from `cache/memo/<WS>.cbor`, and
anything that changes `tasks/` (another worker's record, a forced run), damages the index, or
empties an output is seen as it was without it."""
from __future__ import annotations

import os
import time
from pathlib import Path

from e3_testing.commands import deployed, run, start_states
from e3_testing.packages import diamond_zip


def _index(repo: Path) -> Path:
    return repo / ".e3" / "cache" / "memo" / "dev.cbor"


def _noop_with_index(tmp_path: Path) -> Path:
    """A repository whose dev ran, then ran again with nothing to do, the long way (the index and
    the fixpoint entry the first run kept removed first), which wrote the index."""
    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    run("e3", "start", repo, "dev")
    _index(repo).unlink()  # kept by that run, its pointers read again once it was over (e3.repo.fixpoint)
    (repo / ".e3" / "cache" / "fixpoint" / "dev.cbor").unlink()
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}
    assert _index(repo).exists()  # tasks/ last changed a tick (or more) before that run began
    return repo


def _task_id(repo: Path, task: str) -> str:
    out = run("e3", "start", repo, "dev", "--dry-run", "--json", "--filter", task, "--only").out
    import json

    return json.loads(out)["tasks"][0]["task_id"]


def test_a_no_op_run_answers_from_the_index_without_opening_a_record_pointer(tmp_path):
    repo = _noop_with_index(tmp_path)
    from e3.repo import memo_index
    from e3.storage import records
    from e3.storage.repository import open_repository

    r = open_repository(repo)
    ids = {t: _task_id(repo, t) for t in "abcd"}
    index = memo_index.MemoIndex(r, "dev")
    real, records.summary = records.summary, lambda *a: (_ for _ in ()).throw(AssertionError("pointer read"))
    try:
        outputs = {t: index.reusable_output(tid) for t, tid in ids.items()}
    finally:
        records.summary = real
    assert outputs == {t: run("e3-rev-parse", "--repo", repo, f"dev.tasks.{t}.output").out.strip() for t in "abcd"}
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"


def test_a_record_written_by_another_worker_is_seen_though_the_index_says_success(tmp_path):
    repo = _noop_with_index(tmp_path)
    from e3.storage import records
    from e3.storage.repository import open_repository

    r = open_repository(repo)
    tid = _task_id(repo, "b")
    # What a worker that failed b's execution leaves: a newer record, renamed into tasks/.
    mine = records.latest(r, tid)
    records.write(r, tid, records.Record("failed", "elsewhere", mine.input_hashes, records.now(), records.now(), exit_code=1))
    states = start_states(run("e3", "start", repo, "dev").out)
    assert states["b"] == "ran" and states["a"] == states["c"] == states["d"] == "cached"
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"


def test_an_index_written_under_another_tasks_directory_is_not_trusted(tmp_path):
    """A copy of the repository (another inode) or any change to tasks/ makes the index stale."""
    repo = _noop_with_index(tmp_path)
    from e3.repo import memo_index
    from e3.storage import records
    from e3.storage.repository import open_repository

    r = open_repository(repo)
    tid = _task_id(repo, "a")
    assert memo_index.MemoIndex(r, "dev")._trusted  # the index is in force
    (repo / ".e3" / "tasks" / "unrelated").write_text("")  # any entry made in tasks/
    index = memo_index.MemoIndex(r, "dev")
    assert not index._trusted
    assert index.reusable_output(tid) == records.reusable_output(r, records.summary(r, tid))


def test_a_damaged_index_is_listed_by_fsck_ignored_and_rebuilt(tmp_path):
    repo = _noop_with_index(tmp_path)
    data = bytearray(_index(repo).read_bytes())
    data[len(data) // 2] ^= 0x01
    _index(repo).write_bytes(bytes(data))
    out = run("e3-fsck", "--repo", repo, expect=None).out
    assert "cache/memo/dev.cbor" in out, out
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"
    run("e3-fsck", "--repo", repo)  # rebuilt whole by that run


def test_an_output_emptied_after_the_index_was_written_is_computed_again(tmp_path):
    """The index replaces the pointer read, not the stat: a hit whose bytes were lost is no hit."""
    repo = _noop_with_index(tmp_path)
    obj = run("e3-rev-parse", "--repo", repo, "dev.tasks.b.output").out.strip()
    path = repo / ".e3" / "objects" / obj[:2] / f"{obj[2:]}.beast2"
    os.chmod(path, 0o644)
    path.write_bytes(b"")  # as a power loss can leave a value written without fsync
    states = start_states(run("e3", "start", repo, "dev").out)
    assert states["b"] == "ran" and states["a"] == states["c"] == states["d"] == "cached"
    assert path.stat().st_size > 0 and run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "114"


def test_a_forced_run_runs_everything_and_the_next_run_reads_tasks_again(tmp_path):
    repo = _noop_with_index(tmp_path)
    assert set(start_states(run("e3", "start", repo, "dev", "--force").out).values()) == {"ran"}
    from e3.repo import memo_index
    from e3.storage.repository import open_repository

    assert not memo_index.MemoIndex(open_repository(repo), "dev")._trusted  # the forced records moved tasks/
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"cached"}
    assert memo_index.MemoIndex(open_repository(repo), "dev")._trusted  # written again by that no-op run


def test_a_set_during_the_index_s_life_runs_what_it_changed(tmp_path):
    repo = _noop_with_index(tmp_path)
    (tmp_path / "x.east").write_text("5")
    run("e3", "set", repo, "dev.inputs.x", tmp_path / "x.east")
    assert set(start_states(run("e3", "start", repo, "dev").out).values()) == {"ran"}
    assert run("e3", "get", repo, "dev.tasks.d.output").out.strip() == "122"


def test_the_index_is_not_written_when_tasks_changed_at_or_after_the_run_began_reading(tmp_path):
    """Racily clean: a pointer replaced after the run's clock (in its very tick, too) may be one
    the run read before it changed, so that run writes no index; the next one does."""
    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    run("e3", "start", repo, "dev")
    _index(repo).unlink()  # the one that run kept
    from e3.repo import memo_index
    from e3.storage.repository import open_repository

    r = open_repository(repo)
    tid = _task_id(repo, "a")
    tasks_dir = repo / ".e3" / "tasks"
    index = memo_index.MemoIndex(r, "dev")
    assert index.reusable_output(tid) is not None
    (tasks_dir / "another").write_text("")  # a change while the run reads
    index.save()
    assert not _index(repo).exists()
    # Stamped with the clock's own time (a change in the same tick): still not written.
    index = memo_index.MemoIndex(r, "dev")
    assert index.reusable_output(tid) is not None
    os.utime(tasks_dir, ns=(index._clock, index._clock))
    index._seen = index._stat()
    index.save()
    assert not _index(repo).exists()
    for _ in range(30):  # tasks/ last changed before this clock (the next tick of a coarse one, at worst)
        index = memo_index.MemoIndex(r, "dev")
        out = index.reusable_output(tid)
        index.save()
        if _index(repo).exists():
            break
        time.sleep(0.1)
    assert memo_index.MemoIndex(r, "dev")._trusted == {tid: out}


def test_a_workspace_name_that_is_no_file_name_has_no_index(tmp_path):
    from e3.repo import memo_index
    from e3.storage.repository import open_repository

    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    index = memo_index.MemoIndex(open_repository(repo), "../dev")
    assert index.reusable_output("0" * 64) is None
    index.save()
    assert not (repo / ".e3" / "cache" / "memo").exists()


def test_the_settled_stat_of_tasks_is_returned_once_the_clock_has_passed_it(tmp_path):
    """What a run that wrote records keeps rests on it: a pointer changed after it returns shows."""
    from e3.repo import memo_index
    from e3.storage.repository import open_repository

    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    r = open_repository(repo)
    tasks_dir = repo / ".e3" / "tasks"
    tasks_dir.mkdir(exist_ok=True)
    (tasks_dir / "another").write_text("")  # a change just now, as a run's last record
    settled = memo_index.settled_signature(r, "dev")
    assert settled == memo_index.tasks_signature(r)
    clock = (repo / ".e3" / "cache" / "memo" / "dev.clock").stat()
    assert min(clock.st_mtime_ns, clock.st_ctime_ns) > max(settled[2], settled[3])
    (tasks_dir / "another").unlink()  # at once: the stat shows it, in whatever tick
    assert memo_index.tasks_signature(r) != settled


def test_no_settled_stat_while_tasks_is_stamped_ahead_of_the_clock(tmp_path, monkeypatch):
    from e3.repo import memo_index
    from e3.storage.repository import open_repository

    repo = deployed(tmp_path, diamond_zip(tmp_path), "diamond@1.0.0")
    tasks_dir = repo / ".e3" / "tasks"
    tasks_dir.mkdir(exist_ok=True)
    ahead = time.time_ns() + 3_600 * 10**9
    os.utime(tasks_dir, ns=(ahead, ahead))
    monkeypatch.setattr(memo_index, "SETTLE", 0.05)
    assert memo_index.settled_signature(open_repository(repo), "dev") is None
    assert memo_index.settled_signature(open_repository(repo), "../dev") is None
