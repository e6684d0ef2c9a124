"""Click mode in the application: a click gives the selected object a mask; undo takes it back."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtTest import QTest

from tests.fbrs_helpers import write_he_checkpoint
from tests.gui_helpers import open_window, widget_pos, write_clip, write_weights


def _click_weights(path):
    return write_he_checkpoint(path)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("click_assets")
    weights = write_weights(folder)
    weights["fbrs"] = _click_weights(folder / "fbrs.pth")
    return write_clip(folder / "clip.mp4"), weights


def _click(qtbot, window, x, y, button=Qt.LeftButton):
    with qtbot.waitSignal(window.c.worker.edited, timeout=120000):
        QTest.mouseClick(window.canvas, button, Qt.NoModifier, widget_pos(window.canvas, x, y))


def test_a_click_masks_the_selected_object_and_undo_removes_it(qtbot, assets, tmp_path):
    video, weights = assets
    win = open_window(qtbot, video, weights, tmp_path / "out", "--num_objects", "2",
                      "--fbrs_model", str(weights["fbrs"]))  # fmt: skip
    assert win.c.mode == "click" and win.tools.radios["click"].isEnabled()
    QTest.keyClick(win, Qt.Key_2)
    project = win.c.project
    before = project.mask(0).copy()
    _click(qtbot, win, 30, 32)
    after = project.mask(0)
    assert (after == 2).any() and not (before == 2).any()
    assert set(np.unique(after)) <= {0, 2}  # only the selected object changed
    dot = win.c.composed()[32, 30]
    assert dot[1] > 150 and dot[0] < 100  # the positive click is drawn as a green dot
    _click(qtbot, win, 5, 5, Qt.RightButton)  # a negative click joins the same session
    assert len(win.c.project.clicks(0)) == 2
    with qtbot.waitSignal(win.c.worker.edited, timeout=30000):
        QTest.keyClick(win, Qt.Key_Z, Qt.ControlModifier)
    assert np.array_equal(project.mask(0), after)
    assert len(win.c.project.clicks(0)) == 1
    with qtbot.waitSignal(win.c.worker.edited, timeout=30000):
        QTest.keyClick(win, Qt.Key_Z, Qt.ControlModifier)
    assert np.array_equal(project.mask(0), before)
    win.close()


def test_without_fbrs_the_click_mode_is_disabled_with_a_reason(qtbot, assets, tmp_path):
    video, weights = assets
    win = open_window(qtbot, video, weights, tmp_path / "out",
                      "--fbrs_model", str(tmp_path / "none.pth"))  # fmt: skip
    assert not win.tools.radios["click"].isEnabled()
    assert "fbrs.pth" in win.tools.radios["click"].toolTip()
    assert win.c.mode == "scribble"
    win.close()
