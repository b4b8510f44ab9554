"""Kill -9 of workers at random moments: nothing lost, nothing completed twice, nothing corrupt.

The soak version (200 trials) is bench/soak.py; here a few trials keep the suite quick.
"""
from __future__ import annotations

import pytest

from e3_testing.crash_harness import trial


@pytest.mark.parametrize("seed", range(5))
def test_workers_killed_at_random_moments_lose_nothing_and_repeat_nothing(repo, seed):
    v = trial(repo, tasks=50, workers=3, max_kills=5, seed=seed)
    assert v.kills == 5 or not v.stuck
    assert not v.lost, f"lost: {v.lost}"
    assert not v.twice, f"completed twice: {v.twice}"
    assert not v.corrupt, f"fsck: {v.corrupt}"
    assert not v.stuck, f"still queued: {v.stuck}"
