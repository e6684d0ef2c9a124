"""The main canvas: shows the composed frame, reports mouse input in image coordinates."""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QImage, QPainter
from PyQt5.QtWidgets import QSizePolicy, QWidget

from gui.image_qt import rgb_to_qimage


class Canvas(QWidget):
    """Scales the image to fit (aspect kept, nearest neighbour); emits intents, owns no state."""

    pressed = pyqtSignal(float, float, int, bool)  # x, y, Qt.MouseButton, ctrl held
    moved = pyqtSignal(float, float)
    released = pyqtSignal(float, float, int)
    wheel_steps = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setFocusPolicy(Qt.ClickFocus)
        self._image = QImage()

    def set_image(self, rgb: np.ndarray) -> None:
        self._image = rgb_to_qimage(rgb)
        self.update()

    def image_size(self) -> tuple[int, int]:
        return self._image.height(), self._image.width()

    def _target(self) -> QRectF:
        h, w = self.image_size()
        if h == 0 or w == 0:
            return QRectF()
        r = min(self.height() / h, self.width() / w)
        return QRectF((self.width() - w * r) / 2, (self.height() - h * r) / 2, w * r, h * r)

    def to_image(self, pos: QPointF) -> tuple[float, float]:
        """Widget position -> image pixel coordinates, clamped to the image."""
        h, w = self.image_size()
        target = self._target()
        if target.width() <= 0:
            return 0.0, 0.0
        r = target.width() / w
        x = (pos.x() - target.left()) / r
        y = (pos.y() - target.top()) / r
        return min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 30))
        if not self._image.isNull():
            painter.drawImage(self._target(), self._image)
        painter.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        x, y = self.to_image(event.localPos())
        ctrl = bool(event.modifiers() & Qt.ControlModifier)
        self.pressed.emit(x, y, int(event.button()), ctrl)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        self.moved.emit(*self.to_image(event.localPos()))

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        x, y = self.to_image(event.localPos())
        self.released.emit(x, y, int(event.button()))

    def wheelEvent(self, event) -> None:  # noqa: N802
        self.wheel_steps.emit(event.angleDelta().y() // 30)
