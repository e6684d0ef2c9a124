"""A magnified view around the mouse, with zoom in/out buttons."""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gui.image_qt import rgb_to_pixmap

MIN_ZOOM, MAX_ZOOM, ZOOM_STEP = 50, 300, 25


class Minimap(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.zoom_px = 150  # side of the magnified square, in image pixels
        self.view = QLabel()
        self.view.setFixedSize(240, 240)
        self.view.setAlignment(Qt.AlignCenter)
        self.view.setStyleSheet("background: #1e1e1e")
        self.zoom_in = QPushButton("Zoom +")
        self.zoom_out = QPushButton("Zoom -")
        self.zoom_in.clicked.connect(lambda: self.set_zoom(self.zoom_px - ZOOM_STEP))
        self.zoom_out.clicked.connect(lambda: self.set_zoom(self.zoom_px + ZOOM_STEP))
        self.finish_local = QPushButton("Finish Local")
        self.finish_local.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.zoom_in)
        buttons.addWidget(self.zoom_out)
        buttons.addWidget(self.finish_local)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Minimap"))
        layout.addLayout(buttons)
        layout.addWidget(self.view)

    def set_zoom(self, zoom_px: int) -> None:
        self.zoom_px = int(min(max(zoom_px, MIN_ZOOM), MAX_ZOOM))

    def show_crop(self, rgb: np.ndarray) -> None:
        pixmap = rgb_to_pixmap(rgb).scaled(
            self.view.size(), Qt.KeepAspectRatio, Qt.FastTransformation
        )
        self.view.setPixmap(pixmap)
