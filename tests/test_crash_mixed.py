"""Kill -9 of `e3 start` and of workers started by hand, at random moments, on one workspace.

A few trials here; bench/soak.py --mode start repeats them (200 for the issue's figure).
"""
from __future__ import annotations

from e3_testing.crash_mixed import setup, trial


def test_start_and_hand_started_workers_killed_at_random_lose_nothing_and_repeat_nothing(tmp_path):
    setup(tmp_path / "repo", tmp_path)
    for k in range(2):
        v = trial(tmp_path / "repo", tmp_path, x=k + 1, kills=4, seed=k)
        assert not v.lost, f"trial {k}: lost {v.lost}"
        assert not v.twice, f"trial {k}: completed twice {v.twice}"
        assert not v.corrupt, f"trial {k}: fsck {v.corrupt}"
