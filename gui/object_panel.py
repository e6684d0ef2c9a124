"""Every object with its colour; picking one makes it the object strokes paint."""

from __future__ import annotations

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtGui import QColor, QIcon, QPixmap
from PyQt5.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from workflow.overlay import object_colours


class ObjectPanel(QWidget):
    object_selected = pyqtSignal(int)  # object id, 1..K

    def __init__(self, names: list[str], parent: QWidget | None = None) -> None:
        """names: the objects' names (the project's), object k at index k-1."""
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setMaximumHeight(160)
        # Swatches in the DAVIS palette: the colours the overlay and the saved PNGs use.
        colours = object_colours(len(names) + 1)
        for k, name in enumerate(names, start=1):
            swatch = QPixmap(14, 14)
            swatch.fill(QColor(*(int(c) for c in colours[k])))
            shortcut = f"  (key {k})" if k <= 9 else ""
            self.list.addItem(QListWidgetItem(QIcon(swatch), f"{name}{shortcut}"))
        self.list.currentRowChanged.connect(lambda row: self.object_selected.emit(row + 1))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Objects"))
        layout.addWidget(self.list)

    def show_current(self, object_id: int) -> None:
        """Reflect the current object without re-emitting."""
        self.list.blockSignals(True)
        self.list.setCurrentRow(object_id - 1)
        self.list.blockSignals(False)
