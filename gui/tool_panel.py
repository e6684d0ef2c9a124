"""Interaction mode, brush size and overlay mode."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

MODES = ("scribble", "click", "free")
OVERLAYS = ("davis", "fade", "light", "popup", "layered")


class ToolPanel(QWidget):
    mode_changed = pyqtSignal(str)
    brush_changed = pyqtSignal(int)
    overlay_changed = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.radios = {m: QRadioButton(m.capitalize()) for m in MODES}
        self.group = QButtonGroup(self)
        for mode, radio in self.radios.items():
            self.group.addButton(radio)
            radio.toggled.connect(lambda on, m=mode: on and self.mode_changed.emit(m))
        self.brush_label = QLabel()
        self.brush = QSlider(Qt.Horizontal)
        self.brush.setRange(1, 100)
        self.brush.setMinimumWidth(160)
        self.brush.valueChanged.connect(self._brush_moved)
        self.overlay = QComboBox()
        self.overlay.addItems(OVERLAYS)
        self.overlay.currentTextChanged.connect(self.overlay_changed)
        self.overlay.setToolTip(
            "How masks are drawn: davis (colours over the frame), fade, light, popup (objects "
            "over grey), layered (objects over a checkerboard)"
        )
        modes = QHBoxLayout()
        for radio in self.radios.values():
            modes.addWidget(radio)
        brush_row = QHBoxLayout()
        brush_row.addWidget(self.brush_label)
        brush_row.addWidget(self.brush)
        overlay_row = QHBoxLayout()
        overlay_row.addWidget(QLabel("Overlay"))
        overlay_row.addWidget(self.overlay)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(modes)
        layout.addLayout(brush_row)
        layout.addLayout(overlay_row)
        self.show_brush(3)

    def _brush_moved(self, value: int) -> None:
        self.brush_label.setText(f"Brush size: {value}")
        self.brush_changed.emit(value)

    def set_available(self, mode: str, available: bool, reason: str = "") -> None:
        self.radios[mode].setEnabled(available)
        if not available:  # otherwise it keeps its tooltip from the shortcut table
            self.radios[mode].setToolTip(reason)

    def show_overlay(self, mode: str) -> None:
        """Reflect the overlay mode without re-emitting."""
        self.overlay.blockSignals(True)
        self.overlay.setCurrentText(mode)
        self.overlay.blockSignals(False)

    def show_mode(self, mode: str) -> None:
        self.radios[mode].blockSignals(True)
        self.radios[mode].setChecked(True)
        self.radios[mode].blockSignals(False)
        self.brush.setEnabled(mode == "free")

    def show_brush(self, size: int) -> None:
        self.brush.blockSignals(True)
        self.brush.setValue(size)
        self.brush.blockSignals(False)
        self.brush_label.setText(f"Brush size: {size}")
