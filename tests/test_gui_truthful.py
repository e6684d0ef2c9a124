"""The window says what runs, from the moment a job is queued until it ends; quitting while a
propagation runs asks, stops at the next frame and closes without freezing; exports wait."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtTest import QTest
from PyQt5.QtWidgets import QMessageBox

from tests.gui_fixtures import window_with
from tests.gui_helpers import T, open_window, widget_pos
from util.mask_io import read_index_mask

window = window_with(3)


def _status(window) -> str:
    return window.actions_bar.progress.format()


def _hold(monkeypatch, project, name: str, call_through: bool = True) -> threading.Event:
    """Make project.<name> wait until the returned event is set (a slow job, on demand), then
    run (or, call_through=False, skip: clicks without f-BRS weights would fail)."""
    release = threading.Event()
    real = getattr(project, name)

    def slow(*args, **kwargs):
        assert release.wait(30), "the test never released the job"
        return real(*args, **kwargs) if call_through else None

    monkeypatch.setattr(project, name, slow)
    return release


def _press_release(window, points, button=Qt.LeftButton) -> None:
    canvas = window.canvas
    QTest.mousePress(canvas, button, Qt.NoModifier, widget_pos(canvas, *points[0]))
    for x, y in points[1:]:
        QTest.mouseMove(canvas, widget_pos(canvas, x, y))
    QTest.mouseRelease(canvas, button, Qt.NoModifier, widget_pos(canvas, *points[-1]))


def _until_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: _status(window) == "Idle", timeout=60000)
    assert window.canvas.cursor().shape() != Qt.BusyCursor


@pytest.mark.parametrize(
    ("mode", "method", "expected"),
    [
        ("scribble", "apply_stroke", "Scribble → mask (3 objects)…"),
        ("free", "apply_stroke", "Brush: updating the mask…"),
        ("click", "apply_click", "Click: refining…"),
    ],
)
def test_the_status_names_the_job_until_it_ends(window, qtbot, monkeypatch, mode, method, expected):
    assert _status(window) == "Idle"
    window.c.set_mode(mode)
    release = _hold(monkeypatch, window.c.project, method, call_through=mode != "click")
    _press_release(window, [(20, 25), (30, 32)])
    # Queued: the status and the cursor say so at once, before the worker even starts it.
    assert _status(window) == expected
    assert window.canvas.cursor().shape() == Qt.BusyCursor
    QTest.qWait(300)
    assert _status(window) == expected  # still true while it runs
    release.set()
    _until_idle(qtbot, window)


def test_a_second_job_queued_behind_the_first_is_counted(window, qtbot, monkeypatch):
    window.c.set_mode("free")
    release = _hold(monkeypatch, window.c.project, "apply_stroke")
    _press_release(window, [(20, 25), (30, 32)])
    _press_release(window, [(40, 25), (50, 32)])
    assert _status(window) == "Brush: updating the mask… (+1 queued)"
    release.set()
    _until_idle(qtbot, window)


def test_propagation_and_cancel_are_stated(window, qtbot, monkeypatch):
    window.c.set_mode("free")
    _press_release(window, [(20, 30), (35, 30)])
    _until_idle(qtbot, window)
    real = window.c.project.session.features
    monkeypatch.setattr(
        window.c.project.session, "features", lambda t: (time.sleep(0.2), real(t))[1]
    )
    seen: list[str] = []
    window.c.job_status.connect(lambda text, busy: seen.append(text))
    window.actions_bar.propagate.click()
    assert _status(window) == "Propagating…"  # from the click, not from the first frame
    qtbot.waitUntil(lambda: "left" in _status(window), timeout=60000)
    assert any(s.startswith("Propagating 2 / ") and s.endswith(" left") for s in seen), seen
    window.actions_bar.cancel.click()
    assert _status(window) == "Cancelling…"
    _until_idle(qtbot, window)


def test_exports_wait_for_a_propagation_and_report_frames_without_masks(
    window, qtbot, monkeypatch, tmp_path
):
    reports: list[str] = []
    window.c.message.connect(reports.append)
    window.c.export("binary", str(tmp_path / "early"))
    _until_idle(qtbot, window)
    assert any(f"{T} frames have no mask" in r for r in reports), reports
    window.c.set_mode("free")
    _press_release(window, [(20, 30), (35, 30)])
    _until_idle(qtbot, window)
    release = _hold(monkeypatch, window.c.project.session, "features")
    window.actions_bar.propagate.click()
    assert not any(a.isEnabled() for a in window.export_actions)  # no export mid-propagation
    release.set()
    qtbot.waitUntil(lambda: not window.c.busy, timeout=60000)
    assert all(a.isEnabled() for a in window.export_actions)
    window.c.export("coco", str(tmp_path / "after"))  # no extension: it gets one
    _until_idle(qtbot, window)
    assert (tmp_path / "after.json").is_file()
    assert "have no mask" not in reports[-1]


def test_quit_during_a_propagation_asks_stops_at_the_next_frame_and_closes(
    qtbot, gui_assets, tmp_path, monkeypatch
):
    video, weights = gui_assets
    out = tmp_path / "out"
    window = open_window(qtbot, video, weights, out, "--num_objects", "2")
    window.c.set_mode("free")
    _press_release(window, [(20, 30), (35, 30)])
    _until_idle(qtbot, window)
    project = window.c.project
    real = project.session.features
    monkeypatch.setattr(project.session, "features", lambda t: (time.sleep(0.3), real(t))[1])
    answers = [QMessageBox.No, QMessageBox.Yes]
    asked: list[str] = []

    def question(parent, title, text, *args):
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    frames: list[int] = []
    window.c.worker.progress.connect(lambda t, done, total: frames.append(t))
    window.actions_bar.propagate.click()
    qtbot.waitUntil(lambda: len(frames) >= 1, timeout=60000)
    window.close()  # "No": keeps working
    assert window.isVisible() and window.c.busy and "Stop it and quit" in asked[0]
    window.close()  # "Yes": stops at the next frame, then closes
    at_request = len(frames)
    start = time.monotonic()
    while window.isVisible():  # the event loop keeps running: the window never freezes
        QTest.qWait(20)
        assert time.monotonic() - start < 30
    assert len(frames) - at_request <= 1  # at most the frame in flight
    assert len(frames) < T - 1  # it did stop early
    # What finished is saved; frames never reached have no file (they kept "no mask").
    for t in range(T):
        path = out / f"{t:05d}.png"
        if project.has_content(t):
            assert np.array_equal(read_index_mask(path), project.saved_labels(t)), t
        else:
            assert not path.exists()
