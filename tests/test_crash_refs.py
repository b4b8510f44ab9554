"""Kill -9 in the middle of a workspace ref update: no torn ref, and the next update goes through."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

from packages import chain_zip

from conftest import command_env, run
from e3 import refs, workspace
from e3.repository import open_repository

SETTER = """
import sys
from e3 import east, workspace
from e3.repository import open_repository
r = open_repository(sys.argv[1])
print("go", flush=True)
i = 0
while True:
    h = r.objects.write(east.encode(i, east.IntegerType))
    workspace.set_dataset(r, "dev", ("inputs", "x"), h)
    i += 1
"""


def test_kill_mid_ref_update_leaves_a_whole_ref_and_the_next_update_goes_through(repo, tmp_path, e3):
    e3("workspace", "import", repo, "dev", chain_zip(tmp_path, 1))
    r = open_repository(repo)
    rng = random.Random(7)
    lock = r.path("refs", "workspaces", "dev.lock")
    left_lock = False
    for _ in range(30):  # until a kill lands inside an update (its lock file is left behind)
        p = subprocess.Popen([sys.executable, "-c", SETTER, str(repo)], stdout=subprocess.PIPE, env=command_env())
        assert p.stdout.readline() == b"go\n"
        time.sleep(rng.uniform(0.05, 0.3))
        p.send_signal(signal.SIGKILL)
        p.wait()
        commit = refs.read(r, "refs/workspaces/dev")
        assert r.git[commit].type_str == "commit"  # never torn
        assert ("inputs", "x") in workspace.read(r, "dev").datasets
        if lock.exists():
            left_lock = True
            break
    assert left_lock, "no kill landed inside a ref update in 30 tries"
    (tmp_path / "x.east").write_text("41")
    t0 = time.monotonic()
    e3("set", repo, "dev.inputs.x", tmp_path / "x.east")
    assert time.monotonic() - t0 < 10
    assert e3("get", repo, "dev.inputs.x").out.strip() == "41"
    fsck = run("e3-fsck", "--repo", repo, expect=None)
    assert [line for line in fsck.out.splitlines() if not line.startswith("temp ")] == []
