"""Keyboard shortcuts: one table drives both the bindings and the Help dialog."""

from __future__ import annotations

from collections.abc import Callable

from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QMessageBox, QShortcut, QWidget

from gui.controller import AppController

MOUSE_HELP = (
    ("Left button", "positive click / draw for the current object (scribble, brush)"),
    ("Right button", "negative click / background scribble / erase with the brush"),
    ("Mouse wheel", "brush size (Free mode)"),
)


def shortcut_table(c: AppController) -> list[tuple[str, str, Callable[[], None]]]:
    """(key sequence, description, action)."""
    table = [
        ("Left", "previous frame", lambda: c.step(-1)),
        ("Right", "next frame", lambda: c.step(1)),
        ("Shift+Left", "10 frames back", lambda: c.step(-10)),
        ("Shift+Right", "10 frames forward", lambda: c.step(10)),
        ("Home", "first frame", lambda: c.set_frame(0)),
        ("End", "last frame", lambda: c.set_frame(c.num_frames - 1)),
        ("Space", "play / pause", c.toggle_play),
        ("Ctrl+Z", "undo the last edit on this frame", c.undo),
        ("Ctrl+Shift+Z", "redo", lambda: c.undo(redo=True)),
        ("Ctrl+Y", "redo", lambda: c.undo(redo=True)),
        ("Ctrl+Return", "propagate from this frame", c.propagate),
        ("Esc", "cancel the propagation", c.cancel),
        ("C", "Click mode", lambda: c.clicks_available and c.set_mode("click")),
        ("S", "Scribble mode", lambda: c.s2m_available and c.set_mode("scribble")),
        ("F", "Free (brush) mode", lambda: c.set_mode("free")),
        ("[", "smaller brush", lambda: c.set_brush(c.brush - 2)),
        ("]", "bigger brush", lambda: c.set_brush(c.brush + 2)),
    ]
    for k in range(1, min(c.num_objects, 9) + 1):
        table.append((str(k), f"select object {k}", lambda k=k: c.set_object(k)))
    return table


def install_shortcuts(window: QWidget, c: AppController) -> list[QShortcut]:
    shortcuts = []
    for keys, _, action in shortcut_table(c):
        shortcut = QShortcut(QKeySequence(keys), window)
        shortcut.activated.connect(action)
        shortcuts.append(shortcut)
    return shortcuts


def help_text(c: AppController) -> str:
    rows = [f"<tr><td><b>{k}</b></td><td>{d}</td></tr>" for k, d, _ in shortcut_table(c)]
    rows += [f"<tr><td><b>{k}</b></td><td>{d}</td></tr>" for k, d in MOUSE_HELP]
    rows.append("<tr><td><b>F1</b></td><td>this help</td></tr>")
    procedure = (
        "<p><b>Procedure</b>: 1. mark every object on a frame (scribbles or brush); "
        "2. Propagate; 3. find a frame with errors, correct it and propagate again; 4. repeat. "
        "Masks are saved automatically to the output folder.</p>"
    )
    return procedure + "<table>" + "".join(rows) + "</table>"


def show_help(parent: QWidget, c: AppController) -> None:
    QMessageBox.information(parent, "Shortcuts", help_text(c))
