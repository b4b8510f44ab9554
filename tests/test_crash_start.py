"""kill -9 of `e3 start` (and its warm workers) at random moments: nothing lost, nothing done twice.

The pipeline and the verdict (lost tasks, executions with two terminal
records, fsck findings) are crash_mixed's, which also kills hand-started
workers; here only `e3 start` runs, and e3-fsck must be clean after the next start.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time

from e3_testing.commands import command_env, run
from e3_testing.crash_mixed import CHAINS, LENGTH, Verdict, check, setup


def test_kill_9_of_start_at_random_moments_loses_nothing_and_repeats_nothing(tmp_path):
    repo = tmp_path / "repo"
    setup(repo, tmp_path)
    rng = random.Random(int(os.environ.get("E3_CRASH_SEED", "7")))
    for trial in range(1, 3):  # two random kill moments; bench/soak.py --mode start repeats them 200 times
        (tmp_path / "x.east").write_text(str(trial))
        run("e3", "set", repo, "dev.inputs.x", tmp_path / "x.east")
        proc = subprocess.Popen(
            ["e3", "start", str(repo), "dev", "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=command_env(),
            start_new_session=True,  # its own process group: the kill takes its workers too
        )
        time.sleep(rng.uniform(0.3, 2.5))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(2.1)  # partial objects of the killed writers become sweepable (see ObjectStore.sweep_temporaries)
        done = run("e3", "start", repo, "dev", "-q", timeout=300)
        assert f"{CHAINS * LENGTH} tasks:" in done.out and "failed" not in done.out
        run("e3-fsck", "--repo", repo)
        v = check(repo, trial, Verdict(executions=CHAINS * LENGTH))
        assert not v.lost, f"trial {trial}: lost {v.lost}"
        assert not v.twice, f"trial {trial}: executions completed twice {v.twice}"
        assert not v.corrupt, f"trial {trial}: {v.corrupt}"
