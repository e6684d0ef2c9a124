"""The application driven like a person would: real widgets, mouse and keys, offscreen."""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import Qt
from PyQt5.QtTest import QTest

from tests.gui_fixtures import window_with
from tests.gui_helpers import H, T, W, drag, open_window, widget_pos
from util.mask_io import read_index_mask

window = window_with(3)


def _mask(window, t=None):
    c = window.c
    return c.project.mask(c.frame if t is None else t)


def test_scribble_marks_the_selected_object(window, qtbot):
    assert window.c.mode == "scribble"
    drag(qtbot, window, [(20, 25), (30, 32), (35, 38)])
    mask = _mask(window)
    assert (mask == 1).any()
    assert window.actions_bar.undo.isEnabled()


def test_free_brush_paints_and_right_button_erases(window, qtbot):
    window.tools.radios["free"].click()
    assert window.c.mode == "free"
    QTest.keyClick(window, Qt.Key_2)
    assert window.c.object == 2
    window.tools.brush.setValue(9)
    drag(qtbot, window, [(10, 10), (60, 10)])
    assert (_mask(window)[8:13, 15:55] == 2).all()
    drag(qtbot, window, [(30, 10), (31, 10)], button=Qt.RightButton)
    mask = _mask(window)
    assert mask[10, 30] == 0 and mask[10, 50] == 2


def test_object_panel_selects_objects_beyond_the_keys(window):
    window.objects.list.setCurrentRow(2)
    assert window.c.object == 3
    QTest.keyClick(window, Qt.Key_1)
    assert window.c.object == 1
    assert window.objects.list.currentRow() == 0


def test_undo_redo_restore_exact_masks(window, qtbot):
    window.tools.radios["free"].click()
    drag(qtbot, window, [(10, 10), (40, 20)])
    first = _mask(window).copy()
    drag(qtbot, window, [(50, 40), (80, 50)])
    second = _mask(window).copy()
    assert not np.array_equal(first, second)
    with qtbot.waitSignal(window.c.worker.edited, timeout=30000):
        QTest.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    assert np.array_equal(_mask(window), first)
    with qtbot.waitSignal(window.c.worker.edited, timeout=30000):
        QTest.keyClick(window, Qt.Key_Y, Qt.ControlModifier)
    assert np.array_equal(_mask(window), second)
    with qtbot.waitSignal(window.c.worker.edited, timeout=30000):
        window.actions_bar.undo.click()
    with qtbot.waitSignal(window.c.worker.edited, timeout=30000):
        window.actions_bar.undo.click()
    assert (_mask(window) == 0).all()
    assert not window.actions_bar.undo.isEnabled()


def test_propagate_fills_every_frame_with_progress(window, qtbot):
    window.tools.radios["free"].click()
    window.tools.brush.setValue(15)
    drag(qtbot, window, [(20, 30), (35, 30)])
    steps = []
    window.c.progress_changed.connect(lambda done, total: steps.append((done, total)))
    with qtbot.waitSignal(window.c.worker.propagation_finished, timeout=120000) as blocker:
        window.actions_bar.propagate.click()
        assert not window.actions_bar.propagate.isEnabled()  # editing is off while busy
    assert blocker.args == [0, False]
    assert steps == [(i, T - 1) for i in range(1, T)]
    results = window.c.project.session.results
    assert all(results.has_prob(t) for t in range(T))
    assert window.actions_bar.propagate.isEnabled()


def test_cancel_stops_within_one_frame(window, qtbot):
    window.tools.radios["free"].click()
    window.tools.brush.setValue(15)
    drag(qtbot, window, [(20, 30), (35, 30)])
    window.c.progress_changed.connect(lambda done, total: window.actions_bar.cancel.click())
    with qtbot.waitSignal(window.c.worker.propagation_finished, timeout=120000) as blocker:
        window.actions_bar.propagate.click()
    assert blocker.args == [0, True]
    results = window.c.project.session.results
    done = [t for t in range(T) if results.has_prob(t)]
    assert done in ([0, 1], [0, 1, 2])  # the frame in flight may finish, nothing after it


def test_every_overlay_mode_renders(window):
    window.c.project.session.results.set_mask(0, np.pad(np.ones((H - 20, W - 20), np.uint8), 10))
    images = {}
    for mode in ("davis", "fade", "light", "popup", "layered"):
        window.tools.overlay.setCurrentText(mode)
        images[mode] = window.c.composed()
        assert images[mode].shape == (H, W, 3)
    assert len({im.tobytes() for im in images.values()}) == 5


def test_saved_masks_reopen_identically(qtbot, gui_assets, tmp_path):
    video, weights = gui_assets
    out = tmp_path / "out"
    first = open_window(qtbot, video, weights, out, "--num_objects", "2")
    first.tools.radios["free"].click()
    first.tools.brush.setValue(11)
    drag(qtbot, first, [(15, 20), (40, 25)])
    with qtbot.waitSignal(first.c.worker.propagation_finished, timeout=120000):
        first.actions_bar.propagate.click()
    before = [first.c.project.mask(t).copy() for t in range(T)]
    first.close()  # flushes the background writer
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == [f"{t:05d}.png" for t in range(T)]
    assert read_index_mask(out / "00000.png").shape == (H, W)
    second = open_window(qtbot, video, weights, tmp_path / "other", "--masks", str(out))
    assert second.c.num_objects == 2
    after = [second.c.project.mask(t) for t in range(T)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    second.close()


def test_local_control_edits_only_inside_the_box(window, qtbot):
    window.tools.radios["free"].click()
    window.tools.brush.setValue(5)
    canvas = window.canvas
    before = _mask(window).copy()
    with qtbot.waitSignal(window.c.worker.edited, timeout=30000):
        QTest.mousePress(canvas, Qt.LeftButton, Qt.ControlModifier, widget_pos(canvas, 40, 20))
        QTest.mouseMove(canvas, widget_pos(canvas, 79, 51))
        QTest.mouseRelease(canvas, Qt.LeftButton, Qt.ControlModifier, widget_pos(canvas, 79, 51))
    y0, y1, x0, x1 = window.c.local_box
    assert np.allclose((y0, y1, x0, x1), (20, 52, 40, 80), atol=1)
    assert canvas.image_size() == (y1 - y0, x1 - x0)  # the canvas shows the crop, zoomed
    assert not window.timeline.isEnabled() and window.minimap.finish_local.isEnabled()
    drag(qtbot, window, [(0, 16), (x1 - x0 - 1, 16)])  # crop coordinates: across the box
    with qtbot.waitSignal(window.c.worker.edited, timeout=30000):
        window.minimap.finish_local.click()
    after = _mask(window)
    assert canvas.image_size() == (H, W)
    inside = np.zeros((H, W), bool)
    inside[y0:y1, x0:x1] = True
    assert (after[~inside] == before[~inside]).all()
    assert (after[y0 + 15 : y0 + 18, x0 + 5 : x1 - 5] == 1).all()
    assert window.timeline.isEnabled()


def test_exports_from_the_worker(window, qtbot, tmp_path):
    window.tools.radios["free"].click()
    window.tools.brush.setValue(9)
    drag(qtbot, window, [(10, 10), (60, 10)])
    for kind, target in (("binary", tmp_path / "bin"), ("coco", tmp_path / "ann.json")):
        with qtbot.waitSignal(window.c.worker.export_finished, timeout=60000):
            window.c.export(kind, str(target))
    painted = read_index_mask(tmp_path / "bin" / "001" / "00000.png")
    assert painted.shape == (H, W) and painted[10, 30] == 1
    assert (tmp_path / "ann.json").stat().st_size > 0
