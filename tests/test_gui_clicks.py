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


def test_a_first_click_shows_its_early_result_then_its_own(qtbot, assets, tmp_path):
    """f-BRS' first click on the whole frame shows the unflipped copy's mask about halfway,
    says so in the status, and its own result replaces it (model/fbrs/predictor.py)."""
    video, weights = assets
    win = open_window(qtbot, video, weights, tmp_path / "out", "--num_objects", "2",
                      "--fbrs_model", str(weights["fbrs"]))  # fmt: skip
    QTest.keyClick(win, Qt.Key_2)
    project = win.c.project
    before_view = win.c.composed().copy()
    events: list[tuple] = []
    statuses: list[str] = []
    win.c.job_status.connect(lambda text, busy: statuses.append(text))
    # connected after the controller's own slot, so this runs once the preview is in place
    win.c.worker.click_preview.connect(
        lambda t, ids: events.append(("preview", t, ids.copy(), win.c.composed().copy()))
    )
    win.c.worker.edited.connect(lambda t, what: events.append(("edited", t)))
    _click(qtbot, win, 30, 32)
    assert [e[0] for e in events] == ["preview", "edited"]
    _, t, ids, view = events[0]
    assert t == 0 and (ids == 2).any() and set(np.unique(ids)) <= {0, 2}
    assert not np.array_equal(view, before_view)  # the early mask was on screen
    assert any("preview shown, refining" in s for s in statuses)
    assert (project.mask(0) == 2).any()
    qtbot.waitUntil(lambda: statuses[-1] == "Idle", timeout=30000)  # the job's end follows
    # nothing of the early mask stays: undoing the click shows the frame as before
    with qtbot.waitSignal(win.c.worker.edited, timeout=30000):
        QTest.keyClick(win, Qt.Key_Z, Qt.ControlModifier)
    qtbot.waitUntil(lambda: statuses[-1] == "Idle", timeout=30000)
    now = win.c.composed()
    away = np.ones(now.shape[:2], bool)
    away[32 - 8 : 32 + 9, 30 - 8 : 30 + 9] = False  # the mouse cursor's ring is drawn there
    assert np.array_equal(now[away], before_view[away])
    assert not np.array_equal(view[away], before_view[away])
    win.close()
