"""Issue 20's soak trials, a few of each: see tests/e3_testing/crash_integrity.py.

Each trial costs several runs of a 40-task workspace, so the suite keeps two of each kind of fault
(both kinds of flip on an object read next; one flip of any object; two drains) and leaves the
repetition to bench/soak.py (`make soak`: 200 of each)."""
from __future__ import annotations

from e3_testing.crash_integrity import drain_trial, flip_trial
from e3_testing.crash_mixed import setup


def test_a_start_killed_with_its_workers_leaves_nothing_on_the_queue_after_the_next_run(tmp_path):
    repo = tmp_path / "repo"
    setup(repo, tmp_path)
    for k in range(1, 3):
        v = drain_trial(repo, tmp_path, x=k, kills=2, seed=k)
        assert v.ok, f"trial {k}: stuck {v.stuck} lost {v.lost} twice {v.twice} corrupt {v.corrupt}"


def test_a_byte_flipped_in_an_object_the_next_run_reads_gives_no_success_and_is_named(tmp_path):
    repo = tmp_path / "repo"
    setup(repo, tmp_path)
    detected = 0
    for k, flip in ((1, "last"), (2, "any")):  # the flip (still decodes), and any byte
        v = flip_trial(repo, tmp_path, x=k, seed=k, read=True, flip=flip)
        assert v.ok, f"trial {k} ({v.flipped}): {v.faults}"
        detected += v.detected
    assert detected, "no flip was named by the run that read it"


def test_a_byte_flipped_in_any_object_gives_no_success_derived_from_it(tmp_path):
    repo = tmp_path / "repo"
    setup(repo, tmp_path)
    for k in range(1, 2):
        v = flip_trial(repo, tmp_path, x=k, seed=100 + k, read=False)
        assert v.ok, f"trial {k} ({v.flipped}): {v.faults}"
