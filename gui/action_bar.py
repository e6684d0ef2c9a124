"""Edit and propagation buttons with the progress bar."""

from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget


class ActionBar(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.undo = QPushButton("Undo")
        self.redo = QPushButton("Redo")
        self.reset = QPushButton("Reset Frame")
        self.commit = QPushButton("Commit")
        self.propagate = QPushButton("Propagate")
        self.cancel = QPushButton("Cancel")
        # Tooltips come from the shortcut table (gui/shortcuts.py), with each control's key.
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMinimumWidth(220)
        self.progress.setAlignment(Qt.AlignCenter)
        self.show_idle()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for button in (self.undo, self.redo, self.reset, self.commit):
            layout.addWidget(button)
        layout.addStretch(1)
        layout.addWidget(self.progress)
        layout.addWidget(self.propagate)
        layout.addWidget(self.cancel)

    def show_idle(self) -> None:
        self.progress.setValue(0)
        self.show_status("Idle")
        self.cancel.setEnabled(False)

    def show_status(self, text: str) -> None:
        """What runs now, written over the progress bar (the bar shows how far it is)."""
        self.progress.setFormat(text)
        self.progress.setToolTip(text)

    def show_progress(self, done: int, total: int) -> None:
        self.progress.setValue(int(100 * done / max(total, 1)))
