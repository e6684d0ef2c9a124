"""glibc keeps freed memory for reuse (util/allocator.py): measured as page faults in a fresh
process, since the setting is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Three 24 MB blocks per round, as a frame's maps: under glibc's own settings they were mapped
# afresh every round (~18,000 faults); with the settings, reused once the heap has settled.
_CHILD = """
import json, resource, sys
sys.path.insert(0, {repo!r})
from util.allocator import keep_freed_memory
applied = keep_freed_memory() if {tune} else None
import torch

def round_():
    blocks = [torch.empty(6 * 2**20) for _ in range(3)]
    for b in blocks:
        b.fill_(1.0)

for _ in range({warm_up}):  # the heap settles within a few rounds (alignment padding)
    round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({rounds}):
    round_()
print(json.dumps({{"applied": applied,
                   "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}}))
"""

PAGES_PER_ROUND = 3 * 24 * 2**20 // 4096


def _run(tune: bool, env: dict | None = None, warm_up: int = 8, rounds: int = 3) -> dict:
    code = _CHILD.format(repo=str(REPO), tune=tune, warm_up=warm_up, rounds=rounds)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env, timeout=120)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _glibc() -> bool:
    return sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None


@pytest.mark.skipif(not _glibc(), reason="the settings are glibc's")
def test_freed_blocks_are_reused_without_page_faults():
    tuned = _run(True)
    assert tuned["applied"] is True
    # glibc's own settings usually fault the blocks in again (~18,000 per round here), but not
    # always (its thresholds adapt to the order of frees), so that side is not asserted
    assert tuned["faults"] < 0.05 * 3 * PAGES_PER_ROUND


@pytest.mark.skipif(not _glibc(), reason="the settings are glibc's")
def test_a_users_own_malloc_settings_are_left_alone():
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "131072"}
    assert _run(True, env, warm_up=0, rounds=0)["applied"] is False
    env = {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}
    assert _run(True, env, warm_up=0, rounds=0)["applied"] is False


def test_the_networks_turn_it_on_when_prepared_for_the_cpu(synthetic_checkpoints):
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "import util.allocator as a\n"
            "from model.build import load_networks\n"
            f"load_networks({str(synthetic_checkpoints['stcn'])!r}, None, None, 'cpu')\n"
            "print(a._applied)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == str(_glibc())
