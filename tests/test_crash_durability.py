"""kill -9 during propagation: what was written is whole and a restart resumes from it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import torch

from model.build import FUSION, PROPAGATION
from tests.gui_helpers import T, write_clip
from tests.shared_assets import REPO
from util.mask_io import read_index_mask
from workflow.open_project import StartupOptions, open_project

WORKER = textwrap.dedent(
    """
    import sys, time, torch
    sys.path.insert(0, {repo!r})
    from workflow.open_project import StartupOptions, open_project
    opts = StartupOptions(video={video!r}, images=None, masks=None, output={out!r},
                          num_objects=2, resolution=-1, mem_freq=5, fast=False,
                          prop_model={prop!r}, fusion_model={fusion!r}, s2m_model=None)
    project, _ = open_project(opts, torch.device("cpu"))
    project.apply_stroke(0, "free", 2, [(10, 10), (40, 12)], 9)

    def on_frame(frame, done, total):
        print(frame, flush=True)
        time.sleep(1.5)  # slow enough to be killed mid-propagation

    project.propagate(on_frame=on_frame)
    """
)


def _options(video, out, weights, **extra) -> StartupOptions:
    return StartupOptions(
        video=str(video), images=None, masks=None, output=str(out), num_objects=None,
        resolution=-1, mem_freq=5, fast=False, prop_model=str(weights / "stcn.pth"),
        fusion_model=str(weights / "fusion_stcn.pth"), s2m_model=None, **extra,
    )  # fmt: skip


def test_kill_9_mid_propagation_loses_at_most_the_frame_in_flight(tmp_path):
    torch.manual_seed(0)
    torch.save(PROPAGATION.factory().state_dict(), tmp_path / "stcn.pth")
    torch.save(FUSION.factory().state_dict(), tmp_path / "fusion_stcn.pth")
    video, out = write_clip(tmp_path / "clip.mp4"), tmp_path / "out"
    script = WORKER.format(
        repo=str(REPO), video=str(video), out=str(out),
        prop=str(tmp_path / "stcn.pth"), fusion=str(tmp_path / "fusion_stcn.pth"),
    )  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    done = [int(proc.stdout.readline()) for _ in range(2)]
    time.sleep(1.0)  # every finished frame reaches disk within a second
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done == [1, 2]
    written = sorted(p.name for p in out.glob("*.png"))
    # the edited frame and every propagated frame reported before the kill are on disk, whole
    assert {"00000.png", "00001.png", "00002.png"} <= set(written)
    for name in written:
        assert read_index_mask(out / name).shape == (64, 96)
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    assert (read_index_mask(out / "00000.png") == 2).any()
    # restarting on the same input and output resumes: masks, object count
    project, _ = open_project(_options(video, out, tmp_path), torch.device("cpu"))
    assert project.session.num_objects == 2
    for name in written:
        t = int(name[:5])
        assert np.array_equal(project.mask(t), read_index_mask(out / name))
    # The edited frame is still an annotation: in the certain memory, its round to run again.
    assert project.provenance[0].kind == "annotated"
    assert project.session.memory_frames() == [0] and project.awaiting() == [0]
    project.close()
    assert len(written) < T + 1
