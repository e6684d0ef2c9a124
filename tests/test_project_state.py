"""The project file: a faithful round trip, atomic writes, and the first release's folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.gui_helpers import T, W, write_clip, write_weights
from util.mask_io import write_index_mask
from workflow.open_project import StartupOptions, open_project
from workflow.provenance import Provenance
from workflow.state import (
    LEGACY_STATE_FILE,
    LOG_FILE,
    STATE_FILE,
    ObjectInfo,
    ProjectState,
    StateError,
    read_state,
    write_state,
)

NAMES = [f"{t:05d}" for t in range(8)]


def _state() -> ProjectState:
    provenance = [Provenance("propagated", round=2, done=True)] * 8
    provenance[0] = Provenance("imported", file="/m/0.png", sha1="ab", round=1, done=True)
    provenance[3] = Provenance("annotated", ("free", "click"), round=2, done=False)
    provenance[5] = Provenance("imported", file="/m/5.png", sha1="cd", introduces=(2,))
    provenance[7] = Provenance()
    objects = [ObjectInfo(1, "left hand", (200, 10, 10)), ObjectInfo(2, "cup", (1, 2, 3))]
    return ProjectState(objects, NAMES, provenance, source="/v.mp4", frame=6, rounds=2,
                        gui={"mode": "free", "overlay": "fade"})  # fmt: skip


def test_the_project_file_round_trips_and_is_replaced_atomically(tmp_path):
    state = _state()
    write_state(tmp_path, state)
    back = read_state(tmp_path, NAMES)
    assert back.provenance == state.provenance
    assert back.objects == state.objects and back.num_objects == 2
    assert (back.frame, back.rounds, back.gui, back.source) == (6, 2, state.gui, "/v.mp4")
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temporary file left
    data = json.loads((tmp_path / STATE_FILE).read_text())
    assert data["format"] == "mivos-project" and data["version"] == 1
    assert data["propagated"] == [[1, 3, 2], [4, 5, 2], [6, 7, 2]]  # runs, not one per frame
    # Annotations are kept by frame name; propagated runs only for the same frames.
    other = ["extra", *NAMES]
    moved = read_state(tmp_path, other)
    assert moved.provenance[4].interactions == ("free", "click")
    assert [p.kind for p in moved.provenance].count("propagated") == 0


@pytest.mark.parametrize(
    ("text", "problem"),
    [("{", "unreadable"), ("[]", "not a MiVOS project"),
     ('{"format": "mivos-project", "version": 7}', "newer version"),
     ('{"format": "mivos-project", "version": 1, "annotations": {"00001": {"kind": "x"}}}',
      "unknown provenance kind")],
)  # fmt: skip
def test_a_damaged_project_file_is_an_error_naming_it(tmp_path, text, problem):
    (tmp_path / STATE_FILE).write_text(text)
    with pytest.raises(StateError, match=problem) as info:
        read_state(tmp_path, NAMES)
    assert str(tmp_path / STATE_FILE) in str(info.value)


def test_a_first_release_folder_opens_with_its_annotations_recovered(tmp_path):
    weights = write_weights(tmp_path)
    video, out = write_clip(tmp_path / "clip.mp4"), tmp_path / "out"
    for t in range(T):
        mask = np.zeros((64, W), np.uint8)
        mask[20:44, 10 + 6 * t : 40 + 6 * t] = 1
        write_index_mask(out / f"{t:05d}.png", mask)
    (out / LEGACY_STATE_FILE).write_text(json.dumps({"num_objects": 2, "frame": 3}))
    log = [
        {"kind": "free", "frame": 2, "object": 1}, {"kind": "propagate", "frame": 2},
        {"kind": "scribble", "frame": 4, "object": 1}, {"kind": "undo", "frame": 4},
    ]  # fmt: skip
    (out / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in log))
    opts = StartupOptions(
        video=str(video), images=None, masks=None, output=str(out), num_objects=None,
        resolution=-1, mem_freq=5, fast=False, prop_model=str(weights["stcn"]),
        fusion_model=str(weights["fusion_stcn"]), s2m_model=None,
    )  # fmt: skip
    project, _ = open_project(opts, torch.device("cpu"))
    try:
        assert project.num_objects == 2 and project.start_frame == 3
        assert project.provenance[2] == Provenance("annotated", ("free",), round=0, done=True)
        assert project.provenance[4].kind == "annotated" and project.awaiting() == [4]
        assert project.session.memory_frames() == [2]  # back in the certain memory
        assert project.provenance[5].kind == "propagated"
        # The next Propagate runs frame 4's round; it stops at frame 2, which keeps its mask.
        kept = project.mask(2).copy()
        project.propagate()
        assert np.array_equal(project.mask(2), kept)
    finally:
        project.close()
    upgraded = read_state(out, [f"{t:05d}" for t in range(T)])
    assert not upgraded.legacy and upgraded.provenance[4].done
