"""Every object with its colour and name; picking one makes it the object strokes paint.

A tick box shows or hides an object in the overlay, a double-click renames it, and "Add
object" appends one while annotating.
"""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QColor, QIcon, QPixmap
from PyQt5.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workflow.overlay import object_colours
from workflow.state import ObjectInfo


class ObjectPanel(QWidget):
    object_selected = pyqtSignal(int)  # the session's object number, 1..K
    rename_requested = pyqtSignal(int, str)  # object number, new name
    visibility_changed = pyqtSignal(int, bool)  # object number, shown
    add_requested = pyqtSignal()

    def __init__(self, objects: list[ObjectInfo], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setMaximumHeight(160)
        self.list.currentRowChanged.connect(lambda row: self.object_selected.emit(row + 1))
        self.list.itemChanged.connect(self._item_changed)
        self.list.itemDoubleClicked.connect(self._ask_name)
        self.add = QPushButton("Add object")
        header = QHBoxLayout()
        header.addWidget(QLabel("Objects"))
        header.addStretch(1)
        header.addWidget(self.add)
        self.add.clicked.connect(self.add_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.list)
        self.show_objects(objects)

    def show_objects(self, objects: list[ObjectInfo]) -> None:
        """(Re)draw the list; the current row is kept."""
        row = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        # Swatches in the DAVIS palette: the colours the overlay and the saved PNGs use.
        colours = object_colours(max(o.id for o in objects) + 1) if objects else []
        for k, info in enumerate(objects, start=1):
            swatch = QPixmap(14, 14)
            swatch.fill(QColor(*(int(c) for c in colours[info.id])))
            key = f"  (key {k})" if k <= 9 else ""
            item = QListWidgetItem(QIcon(swatch), f"{info.name}{key}")
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Unchecked if info.hidden else Qt.Checked)
            item.setToolTip(
                f"Object id {info.id} in the saved masks. Tick: shown in the overlay; "
                "double-click: rename."
            )
            self.list.addItem(item)
        self.list.setCurrentRow(min(max(row, 0), len(objects) - 1))
        self.list.blockSignals(False)

    def _item_changed(self, item: QListWidgetItem) -> None:
        self.visibility_changed.emit(self.list.row(item) + 1, item.checkState() == Qt.Checked)

    def _ask_name(self, item: QListWidgetItem) -> None:
        current = item.text().split("  (key ")[0]
        name, ok = QInputDialog.getText(self, "Rename object", "Name:", text=current)
        if ok and name.strip():
            self.rename_requested.emit(self.list.row(item) + 1, name.strip())

    def show_current(self, object_id: int) -> None:
        """Reflect the current object (its number 1..K) without re-emitting."""
        self.list.blockSignals(True)
        self.list.setCurrentRow(object_id - 1)
        self.list.blockSignals(False)
