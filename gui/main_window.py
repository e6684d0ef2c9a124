"""The main window: lays out the widgets and wires their intents to the controller."""

from __future__ import annotations

import logging

from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtWidgets import (
    QAction,
    QApplication,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from gui.action_bar import ActionBar
from gui.canvas import Canvas
from gui.console import Console
from gui.controller import AppController
from gui.minimap import Minimap
from gui.object_panel import ObjectPanel
from gui.output_folder import ask_for_other_folder
from gui.shortcuts import install_shortcuts, show_help
from gui.timeline import Timeline
from gui.tool_panel import ToolPanel
from workflow.export import export_path

# (kind for Project.export, menu entry, "folder" or the file dialog's name filter)
EXPORTS = (
    ("binary", "Binary masks per object (PNG)...", "folder"),
    ("alpha", "Soft alpha mattes per object (PNG)...", "folder"),
    ("overlay", "Overlay video (H.264 MP4)...", "MP4 video (*.mp4);;All files (*)"),
    ("coco", "COCO RLE annotations (JSON)...", "COCO JSON (*.json);;All files (*)"),
)


class MainWindow(QMainWindow):
    def __init__(self, controller: AppController, title: str = "MiVOS") -> None:
        super().__init__()
        self.c = controller
        precision = controller.project.session.nets.precision
        # --fast changes the numbers (slightly): say so where the person always sees it
        self.setWindowTitle(f"{title} - {precision.describe()}" if precision.fast else title)
        self.canvas = Canvas()
        self.minimap = Minimap()
        self.objects = ObjectPanel(controller.project.objects)
        self.tools = ToolPanel()
        self.timeline = Timeline(controller.num_frames)
        self.actions_bar = ActionBar()
        self.console = Console(controller.timers)
        self.memory = QLabel()
        self._asking_folder = False
        self._close_when_idle = False  # quit asked during a propagation: close when it stops
        self.log_handler: logging.Handler | None = None  # warnings shown in the console
        self._build_layout()
        self._build_menu()
        self._connect()
        self._shortcuts = install_shortcuts(self)
        self.tools.show_mode(controller.mode)
        self.tools.set_available("scribble", controller.s2m_available, "s2m.pth is not loaded")
        self.tools.set_available("click", controller.clicks_available, "fbrs.pth is not loaded")
        self.objects.show_current(controller.object)
        self.timeline.show_frame(controller.frame)
        self.tools.show_overlay(controller.overlay)
        self._fit_screen(1280, 800)
        self.refresh()
        self.console.log("Initialized.")

    def _build_layout(self) -> None:
        side = QVBoxLayout()
        side.addWidget(self.minimap)
        side.addWidget(self.objects)
        side.addWidget(self.tools)
        side.addWidget(self.console, 1)
        side.addWidget(self.memory)
        panel = QWidget()
        panel.setLayout(side)
        # The side panel scrolls on a small screen (1366x768) instead of forcing the window
        # taller than the screen; the canvas keeps the room.
        self.side_panel = QScrollArea()
        self.side_panel.setWidget(panel)
        self.side_panel.setWidgetResizable(True)
        self.side_panel.setFrameShape(QFrame.NoFrame)
        self.side_panel.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.side_panel.setFixedWidth(panel.sizeHint().width() + 18)  # + a vertical scroll bar
        top = QHBoxLayout()
        top.addWidget(self.canvas, 1)
        top.addWidget(self.side_panel)
        root = QVBoxLayout()
        root.addLayout(top, 1)
        root.addWidget(self.timeline)
        root.addWidget(self.actions_bar)
        central = QWidget()
        central.setLayout(root)
        self.setCentralWidget(central)

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        export_menu = file_menu.addMenu("&Export")
        self.export_actions = []
        for kind, label, target in EXPORTS:
            action = QAction(label, self)
            action.triggered.connect(lambda _, k=kind, t=target: self._ask_export(k, t))
            export_menu.addAction(action)
            self.export_actions.append(action)
        quit_action = QAction("&Quit", self)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        help_action = QAction("&Actions and shortcuts\tF1", self)  # F1 is in the table
        help_action.triggered.connect(lambda: show_help(self))
        self.menuBar().addMenu("&Help").addAction(help_action)

    def _connect(self) -> None:
        c = self.c
        self.canvas.pressed.connect(c.press)
        self.canvas.moved.connect(c.move)
        self.canvas.released.connect(c.release)
        self.canvas.wheel_steps.connect(c.wheel)
        self.objects.object_selected.connect(c.set_object)
        self.objects.add_requested.connect(lambda: c.add_object())
        self.objects.rename_requested.connect(c.rename_object)
        self.objects.visibility_changed.connect(lambda k, shown: c.set_object_hidden(k, not shown))
        c.objects_changed.connect(lambda: self.objects.show_objects(c.project.objects))
        c.offer_object.connect(self._offer_object)
        self.tools.mode_changed.connect(c.set_mode)
        self.tools.brush_changed.connect(c.set_brush)
        self.tools.overlay_changed.connect(c.set_overlay)
        self.timeline.frame_requested.connect(c.set_frame)
        self.timeline.play_toggled.connect(c.toggle_play)
        bar = self.actions_bar
        bar.undo.clicked.connect(lambda: c.undo())
        bar.redo.clicked.connect(lambda: c.undo(redo=True))
        bar.reset.clicked.connect(c.reset_frame)
        bar.commit.clicked.connect(c.commit)
        bar.propagate.clicked.connect(c.propagate)
        bar.cancel.clicked.connect(c.cancel)
        c.display_changed.connect(self.refresh)
        c.frame_changed.connect(self.timeline.show_frame)
        c.provenance_changed.connect(self.timeline.show_provenance)
        c.object_changed.connect(self.objects.show_current)
        c.mode_changed.connect(self.tools.show_mode)
        c.brush_changed.connect(self.tools.show_brush)
        c.playing_changed.connect(self.timeline.show_playing)
        c.busy_changed.connect(self._show_busy)
        c.history_changed.connect(self._show_history)
        c.progress_changed.connect(bar.show_progress)
        c.message.connect(self.console.log)
        c.error.connect(self._show_error)
        c.status_changed.connect(self.memory.setText)
        c.local_changed.connect(self._show_local)
        c.write_failed.connect(self._ask_other_folder)
        c.job_status.connect(self._show_job_status)
        self.minimap.finish_local.clicked.connect(c.finish_local)
        self._show_history(False, False)
        c.emit_provenance()

    def refresh(self) -> None:
        image = self.c.composed()
        self.canvas.set_image(image)
        self.minimap.show_crop(self.c.minimap(image, self.minimap.zoom_px))

    def _show_busy(self, busy: bool) -> None:
        """A propagation runs: editing and exports wait for it (exports would read frames
        the propagation is still changing)."""
        bar = self.actions_bar
        for widget in (bar.undo, bar.redo, bar.reset, bar.commit, bar.propagate, self.tools,
                       self.objects.add, *self.export_actions):  # fmt: skip
            widget.setEnabled(not busy)
        bar.cancel.setEnabled(busy)
        if not busy:
            self._show_history(*self._history)
            if self._close_when_idle:
                QTimer.singleShot(0, self.close)  # the person asked to quit: now it can

    def _fit_screen(self, width: int, height: int) -> None:
        """Open at `width` x `height`, or smaller on a smaller screen (a 1366x768 laptop: the
        bottom bar must not fall off the screen)."""
        screen = QApplication.primaryScreen()
        if screen is not None:
            room = screen.availableGeometry()
            frame = 40  # the title bar and borders a window manager adds
            width, height = min(width, room.width()), min(height, room.height() - frame)
        self.resize(width, height)

    def _offer_object(self, key: int) -> None:
        """An object key past the count: offer to add one instead of doing nothing."""
        n = self.c.num_objects
        answer = QMessageBox.question(
            self, "MiVOS",
            f"There {'is' if n == 1 else 'are'} {n} object{'s' if n != 1 else ''}; key {key} "
            f"selects nothing yet. Add object {n + 1}?",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes,
        )  # fmt: skip
        if answer == QMessageBox.Yes:
            self.c.add_object()

    def _show_job_status(self, text: str, pending: bool) -> None:
        """The truth about what runs, from the moment a job is queued until it ends; a busy
        cursor over the canvas while a result is pending."""
        bar = self.actions_bar
        if pending:
            bar.show_status(text)
            self.canvas.setCursor(Qt.BusyCursor)
        else:
            bar.show_idle()
            self.canvas.unsetCursor()

    def _show_local(self, local: bool) -> None:
        self.minimap.finish_local.setEnabled(local)
        for widget in (self.timeline, self.actions_bar.propagate, self.minimap.zoom_in,
                       self.minimap.zoom_out):  # fmt: skip
            widget.setEnabled(not local)

    def _show_history(self, can_undo: bool, can_redo: bool) -> None:
        self._history = (can_undo, can_redo)
        if not self.c.busy:
            self.actions_bar.undo.setEnabled(can_undo)
            self.actions_bar.redo.setEnabled(can_redo)

    def _show_error(self, text: str) -> None:
        self.console.log(f"Error: {text}")
        QMessageBox.warning(self, "MiVOS", text)

    def _ask_other_folder(self, error: str) -> None:
        if self._asking_folder:
            return
        self._asking_folder = True  # one question at a time, however many frames failed
        self.console.log(f"Cannot save masks: {error}")
        folder = ask_for_other_folder(self, error, "Your masks are kept in memory.")
        if folder:
            self.c.save_to(folder)
        self._asking_folder = False

    def _ask_export(self, kind: str, target: str) -> None:
        """Ask where to write an export of `kind` ("folder" or a file dialog with the name
        filter `target`), then queue it on the worker. A file name typed without its
        extension gets it (".mp4", ".json")."""
        start = str(self.c.project.output or "")  # dialogs open in the output folder
        if target == "folder":
            path = QFileDialog.getExistingDirectory(self, "Export to folder", start)
        else:
            dialog = QFileDialog(self, "Export to file", start, target)
            dialog.setAcceptMode(QFileDialog.AcceptSave)
            # The dialog appends the suffix itself, so "clip" is checked for replacing an
            # existing clip.mp4 before it is written; export_path covers native dialogs
            # that ignore the default suffix.
            dialog.setDefaultSuffix(export_path(kind, "name").suffix.lstrip("."))
            chosen = dialog.selectedFiles() if dialog.exec_() == QFileDialog.Accepted else []
            path = str(export_path(kind, chosen[0])) if chosen and chosen[0] else ""
        if path:  # a cancelled dialog writes nothing
            self.c.export(kind, path)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Quitting during a propagation asks first; stopping cancels at the next frame and
        the window closes once the worker has stopped, painting all the while."""
        if self.c.busy:
            if self._close_when_idle:  # already stopping: a second request just waits
                event.ignore()
                return
            answer = QMessageBox.question(
                self, "MiVOS",
                "A propagation is running. Stop it and quit?\n\nFrames already propagated are "
                "saved; the frame in progress keeps its previous mask.",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No,
            )  # fmt: skip
            if answer != QMessageBox.Yes:
                event.ignore()
                return
            self._close_when_idle = True
            self.console.log("Stopping the propagation, then closing...")
            self.c.cancel()
            event.ignore()  # closed again when the propagation has stopped (_show_busy)
            return
        self.console.log("Saving every mask before closing...")
        self.c.shutdown()
        if self.log_handler is not None:
            logging.getLogger().removeHandler(self.log_handler)
            self.log_handler = None
        event.accept()
