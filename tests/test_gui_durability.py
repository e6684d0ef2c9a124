"""Nothing lost: the interaction log, resuming where the person was, an unwritable folder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtTest import QTest
from PyQt5.QtWidgets import QFileDialog, QMessageBox

from tests.gui_helpers import T, drag, open_window, write_clip, write_weights
from util.mask_io import read_index_mask


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("durability_assets")
    return write_clip(folder / "clip.mp4"), write_weights(folder)


def test_interactions_are_logged_and_the_session_resumes_where_it_was(qtbot, assets, tmp_path):
    video, weights = assets
    out = tmp_path / "out"
    win = open_window(qtbot, video, weights, out, "--num_objects", "2")
    win.tools.radios["free"].click()
    QTest.keyClick(win, Qt.Key_2)
    assert win.c.object == 2
    drag(qtbot, win, [(10, 10), (30, 12)])
    with qtbot.waitSignal(win.c.worker.edited, timeout=30000):
        QTest.keyClick(win, Qt.Key_Z, Qt.ControlModifier)
    QTest.keyClick(win, Qt.Key_Right)
    QTest.keyClick(win, Qt.Key_Right)
    assert win.c.frame == 2
    win.close()
    lines = [json.loads(line) for line in (out / "interactions.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["frame"]) for r in lines] == [("free", 0), ("undo", 0)]
    assert lines[0]["object"] == 2 and lines[0]["time"] > 0
    again = open_window(qtbot, video, weights, out)
    assert again.c.frame == 2 and again.c.num_objects == 2
    assert again.timeline.slider.value() == 2
    again.close()


def test_an_unwritable_folder_keeps_masks_and_asks_for_another(
    qtbot, assets, tmp_path, monkeypatch
):
    video, weights = assets
    out, other = tmp_path / "out", tmp_path / "elsewhere"
    win = open_window(qtbot, video, weights, out, "--num_objects", "1")
    shutil.rmtree(out)
    out.write_text("a file where the folder was: every write now fails")
    asked = []
    monkeypatch.setattr(
        QMessageBox, "warning", lambda *a, **k: asked.append(a[2]) or QMessageBox.Yes
    )
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(other))
    win.tools.radios["free"].click()
    win.tools.brush.setValue(9)
    with qtbot.waitSignal(win.c.write_failed, timeout=30000):
        drag(qtbot, win, [(10, 10), (60, 10)])
    qtbot.waitUntil(lambda: (other / "00000.png").exists(), timeout=30000)
    assert len(asked) == 1 and "kept in memory" in asked[0]
    assert (read_index_mask(other / "00000.png")[8:13, 15:55] == 1).all()
    assert np.array_equal(read_index_mask(other / "00000.png"), win.c.project.labels_at_source(0))
    win.close()
    assert sorted(p.name for p in other.glob("*.png")) == ["00000.png"]
    assert T > 1
