"""Reopening a project through the real GUI keeps the person's annotations (issue: resume).

The steps a user reported: correct frame 30, propagate; correct frame 10, propagate; quit;
reopen with the same arguments; correct frame 20, propagate. Frame 30, corrected by hand in the
first sitting, must come out byte-identical, because reopening puts the annotated frames back
into the certain memory and propagation stops at them.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtTest import QTest

from gui.app import open_main_window
from interactive_gui import build_parser
from tests.gui_helpers import drag, show_window, write_weights
from workflow.state import STATE_FILE

H, W, T = 48, 64, 42


def _write_clip(path):
    rng = np.random.default_rng(5)
    background = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (5, 5), 0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for t in range(T):
        frame = background.copy()
        cv2.circle(frame, (12 + t, 24), 9, (40, 60, 230), -1)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume_assets")
    return _write_clip(folder / "clip.mp4"), write_weights(folder)


def _open(qtbot, video, weights, output):
    args = build_parser().parse_args(
        [
            "--video", str(video), "--output", str(output), "--device", "cpu",
            "--prop_model", str(weights["stcn"]), "--fusion_model", str(weights["fusion_stcn"]),
            "--s2m_model", str(weights["s2m"]), "--resolution", "-1", "--num_objects", "2",
        ]
    )  # fmt: skip
    return show_window(qtbot, open_main_window(args))


def _correct(qtbot, window, t, points):
    window.timeline.slider.setValue(t)  # as dragging the slider does
    assert window.c.frame == t
    drag(qtbot, window, points)
    with qtbot.waitSignal(window.c.worker.propagation_finished, timeout=180000) as done:
        window.actions_bar.propagate.click()
    assert done.args[1] is False  # not cancelled


def _saved(output):
    return {p.name: p.read_bytes() for p in sorted(output.glob("*.png"))}


def test_reopening_keeps_hand_corrected_frames_and_their_memory(qtbot, assets, tmp_path):
    video, weights = assets
    out = tmp_path / "out"
    first = _open(qtbot, video, weights, out)
    first.tools.radios["free"].click()
    first.tools.brush.setValue(7)
    first.tools.overlay.setCurrentText("fade")
    QTest.keyClick(first, Qt.Key_2)
    _correct(qtbot, first, 30, [(40, 10), (55, 12)])
    _correct(qtbot, first, 10, [(5, 40), (20, 42)])
    kinds = first.timeline.marks.kinds
    assert (kinds[10], kinds[30], kinds[35], kinds[0]) == (
        "annotated", "annotated", "propagated", "propagated"
    )  # fmt: skip
    first.timeline.slider.setValue(33)
    first.close()  # saves every mask and the project file
    before = _saved(out)
    assert len(before) == T and (out / STATE_FILE).is_file()
    state = json.loads((out / STATE_FILE).read_text())
    assert [o["name"] for o in state["objects"]] == ["Object 1", "Object 2"]
    state["objects"][1]["name"] = "cup"  # as a later version's rename would save it
    (out / STATE_FILE).write_text(json.dumps(state))

    second = _open(qtbot, video, weights, out)
    project = second.c.project
    # Annotated frames are annotations again, back in the certain memory, oldest round first.
    assert project.session.memory_frames() == [30, 10]
    assert project.provenance[30].interactions == ("free",)
    assert project.awaiting() == []
    # The view is where it was left, with the same tool and overlay.
    assert second.c.frame == 33 and second.c.mode == "free"
    assert second.tools.overlay.currentText() == "fade"
    assert second.timeline.marks.kinds[30] == "annotated"
    assert second.objects.list.item(1).text().startswith("cup")
    _correct(qtbot, second, 20, [(20, 5), (34, 6)])
    assert project.session.memory_frames() == [30, 10, 20]
    second.close()
    after = _saved(out)
    # Frames 10 and 30 (hand corrections) and everything past 30 or before 10: untouched.
    for t in [*range(0, 11), *range(30, T)]:
        name = f"{t:05d}.png"
        assert after[name] == before[name], f"frame {t} was overwritten"
    changed = [t for t in range(11, 30) if after[f"{t:05d}.png"] != before[f"{t:05d}.png"]]
    assert 20 in changed and len(changed) >= 10  # the new round did fuse between 10 and 30
