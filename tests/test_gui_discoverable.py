"""The window can be learned without the README: F1 lists every action of the shortcut table,
controls carry tooltips with their keys, objects can be added, named and hidden while
annotating, warnings reach the console panel, and it fits a 1366x768 laptop screen."""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import QRect, Qt
from PyQt5.QtTest import QTest
from PyQt5.QtWidgets import QApplication, QInputDialog, QMessageBox, QPushButton

from gui.shortcuts import help_text, shortcut_table
from tests.gui_fixtures import window_with
from tests.gui_helpers import H, W, open_window
from util.mask_io import read_index_mask, write_index_mask

window = window_with(2)


def _idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.actions_bar.progress.format() == "Idle", timeout=60000)


def test_f1_lists_every_action_of_the_table_and_the_mouse(window, qtbot, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text: shown.append(text))
    QTest.keyClick(window, Qt.Key_F1)
    assert shown == [help_text(window)]
    table = shortcut_table(window)
    for action in table:
        assert f"<b>{action.keys}</b></td><td>{action.description}" in shown[0]
    for words in ("Finish Local", "zoom in", "Reset Frame", "Commit", "local control",
                  "negative click", "brush size", "add an object"):  # fmt: skip
        assert words in shown[0], words


def test_every_button_has_a_tooltip_and_table_controls_name_their_key(window):
    for button in window.findChildren(QPushButton):
        assert button.toolTip(), f"{button.text()!r} has no tooltip"
    assert window.actions_bar.reset.toolTip().endswith("(R)")
    assert window.actions_bar.propagate.toolTip().endswith("(Ctrl+Return)")
    assert window.minimap.finish_local.toolTip().endswith("(L)")
    assert window.tools.radios["free"].toolTip().endswith("(F)")


def test_objects_are_added_named_and_hidden_while_annotating(window, qtbot, monkeypatch):
    c = window.c
    window.tools.radios["free"].click()
    window.tools.brush.setValue(9)
    c.press(10, 10, int(Qt.LeftButton))
    c.release(60, 10, int(Qt.LeftButton))
    _idle(qtbot, window)
    before = c.project.mask(0).copy()
    # Key 3 with two objects offers to add the third instead of doing nothing.
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: (asked.append(a[2]),
                                                                   QMessageBox.Yes)[1])  # fmt: skip
    QTest.keyClick(window, Qt.Key_3)
    assert "Add object 3" in asked[0]
    _idle(qtbot, window)
    assert c.num_objects == 3 and c.object == 3 and window.objects.list.count() == 3
    assert np.array_equal(c.project.mask(0), before)  # nothing drawn so far changed
    QTest.keyClick(window, Qt.Key_N, Qt.ControlModifier)
    _idle(qtbot, window)
    assert c.num_objects == 4 and [o.id for o in c.project.objects] == [1, 2, 3, 4]
    # Object 4 is painted and saved with its id.
    c.press(10, 40, int(Qt.LeftButton))
    c.release(60, 40, int(Qt.LeftButton))
    _idle(qtbot, window)
    assert (c.project.mask(0) == 4).any()
    # Renamed with a double-click, hidden with its tick box: drawn as background only.
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("cup", True))
    item = window.objects.list.item(3)
    window.objects.list.itemDoubleClicked.emit(item)
    assert c.project.objects[3].name == "cup"
    assert window.objects.list.item(3).text().startswith("cup")
    window.objects.list.item(3).setCheckState(Qt.Unchecked)
    assert c.project.objects[3].hidden
    shown = c.composed()
    c.project.set_hidden(4, False)
    assert not np.array_equal(shown, c.composed())  # hiding changed what is drawn
    assert (c.project.saved_labels(0) == 4).any()  # and nothing of what is saved


def test_warnings_while_opening_reach_the_console(qtbot, gui_assets, tmp_path):
    video, weights = gui_assets
    masks = tmp_path / "masks"
    small = np.zeros((H // 2, W // 2), np.uint8)
    small[4:12, 4:12] = 1
    write_index_mask(masks / "00000.png", small)  # another size: resized, with a warning
    window = open_window(qtbot, video, weights, tmp_path / "out", "--masks", str(masks))
    try:
        text = window.console.toPlainText()
        assert "00000.png" in text and "resized" in text
        assert read_index_mask(masks / "00000.png").shape == (H // 2, W // 2)
    finally:
        window.close()


def test_the_window_fits_a_laptop_screen(window, qtbot):
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 740, hint  # 768 less the title bar
    window.resize(1366, 740)
    QApplication.processEvents()
    frame = QRect(0, 0, window.width(), window.height())
    for widget in (window.actions_bar.propagate, window.actions_bar.cancel, window.timeline,
                   window.canvas):  # fmt: skip
        top_left = widget.mapTo(window, widget.rect().topLeft())
        assert frame.contains(QRect(top_left, widget.size())), widget
    assert window.canvas.width() >= 700 and window.canvas.height() >= 400
