"""Every action of the window in one table: it drives the key bindings, the controls' tooltips
and the F1 help, so an action added to the table cannot be missing from the help."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QMessageBox, QShortcut, QWidget

# What the mouse does (no key binding; listed in the help after the keys).
MOUSE_HELP = (
    ("Left button", "Click mode: a positive click (the object is here); Scribble: draw the "
     "current object; Free: paint it"),
    ("Right button", "Click mode: a negative click (it is not here); Scribble: draw the "
     "background; Free: erase"),
    ("Ctrl + left drag", "local control: work zoomed in on a box (Finish Local pastes it back)"),
    ("Mouse wheel", "brush size (Free mode)"),
    ("Double-click an object", "rename it; its tick box shows or hides it in the overlay"),
)  # fmt: skip


@dataclass(frozen=True)
class Action:
    """One action: its keys, what it does, and the control that also does it (for a tooltip)."""

    keys: str
    description: str
    run: Callable[[], object]
    control: str | None = None  # attribute path on the window, e.g. "actions_bar.reset"


def shortcut_table(window) -> list[Action]:
    """The window's actions (window: MainWindow, with its controller `c`)."""
    c = window.c
    table = [
        Action("Left", "previous frame", lambda: c.step(-1), "timeline.prev"),
        Action("Right", "next frame", lambda: c.step(1), "timeline.next"),
        Action("Shift+Left", "10 frames back", lambda: c.step(-10)),
        Action("Shift+Right", "10 frames forward", lambda: c.step(10)),
        Action("Home", "first frame", lambda: c.set_frame(0)),
        Action("End", "last frame", lambda: c.set_frame(c.num_frames - 1)),
        Action("Space", "play / pause", c.toggle_play, "timeline.play"),
        Action("Ctrl+Z", "undo the last edit on this frame", c.undo, "actions_bar.undo"),
        Action("Ctrl+Shift+Z", "redo", lambda: c.undo(redo=True), "actions_bar.redo"),
        Action("Ctrl+Y", "redo", lambda: c.undo(redo=True)),
        Action("R", "Reset Frame: make this frame background (undoable)", c.reset_frame,
               "actions_bar.reset"),
        Action("K", "Commit: finish this interaction; the next stroke starts a new one",
               c.commit, "actions_bar.commit"),
        Action("Ctrl+Return", "Propagate every edited or imported frame through the video",
               c.propagate, "actions_bar.propagate"),
        Action("Esc", "Cancel the propagation after the current frame", c.cancel,
               "actions_bar.cancel"),
        Action("C", "Click mode (f-BRS clicks)",
               lambda: c.clicks_available and c.set_mode("click"), "tools.radios.click"),
        Action("S", "Scribble mode (S2M)", lambda: c.s2m_available and c.set_mode("scribble"),
               "tools.radios.scribble"),
        Action("F", "Free mode (a brush)", lambda: c.set_mode("free"), "tools.radios.free"),
        Action("[", "smaller brush", lambda: c.set_brush(c.brush - 2), "tools.brush"),
        Action("]", "bigger brush", lambda: c.set_brush(c.brush + 2)),
        Action("L", "Finish Local: paste the local region back", c.finish_local,
               "minimap.finish_local"),
        Action("+", "minimap: zoom in", window.minimap.zoom_in.click, "minimap.zoom_in"),
        Action("-", "minimap: zoom out", window.minimap.zoom_out.click, "minimap.zoom_out"),
        Action("Ctrl+N", "add an object", c.add_object, "objects.add"),
    ]  # fmt: skip
    for k in range(1, 10):
        # A key past the object count offers to add an object rather than doing nothing.
        table.append(Action(str(k), f"select object {k}", lambda k=k: c.select_object_key(k)))
    table.append(Action("F1", "this help", lambda: show_help(window)))
    return table


def _control(window, path: str):
    target = window
    for part in path.split("."):
        target = target[part] if isinstance(target, dict) else getattr(target, part)
    return target


def install_shortcuts(window) -> list[QShortcut]:
    """Bind every table key on `window` and give each control a tooltip with its key."""
    shortcuts = []
    for action in shortcut_table(window):
        shortcut = QShortcut(QKeySequence(action.keys), window)
        shortcut.activated.connect(action.run)
        shortcuts.append(shortcut)
        if action.control is not None:
            _control(window, action.control).setToolTip(
                f"{action.description[:1].upper()}{action.description[1:]} ({action.keys})"
            )
    return shortcuts


def help_text(window) -> str:
    """The F1 help: the procedure, then every action of the table and the mouse."""
    rows = [f"<tr><td><b>{a.keys}</b></td><td>{a.description}</td></tr>"
            for a in shortcut_table(window)]  # fmt: skip
    rows += [f"<tr><td><b>{k}</b></td><td>{d}</td></tr>" for k, d in MOUSE_HELP]
    procedure = (
        "<p><b>Procedure</b>: 1. pick an object (keys 1-9, Ctrl+N adds one) and mark it on a "
        "frame (clicks, scribbles or the brush); 2. Propagate; 3. find a frame with errors, "
        "correct it and propagate again; 4. repeat. Masks are saved automatically to the "
        "output folder. The strip under the slider marks annotated (orange), imported (blue) "
        "and propagated (green) frames.</p>"
    )
    return procedure + "<table>" + "".join(rows) + "</table>"


def show_help(window: QWidget) -> None:
    QMessageBox.information(window, "Actions and shortcuts", help_text(window))
