"""Frame slider, frame counter, play and step buttons, and each frame's provenance."""

from __future__ import annotations

from PyQt5.QtCore import QRect, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QPainter
from PyQt5.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QVBoxLayout,
    QWidget,
)

# Provenance kinds as the strip under the slider shows them (empty frames are left blank).
MARK_COLOURS = {
    "annotated": QColor(255, 140, 0),  # drawn by the person
    "imported": QColor(40, 120, 255),  # from a mask file
    "propagated": QColor(150, 200, 150),
}
MARK_LEGEND = "orange: annotated, blue: imported, green: propagated (hatched: not propagated yet)"


class ProvenanceStrip(QWidget):
    """A thin bar under the slider: one coloured column per frame, by provenance kind.

    Annotations (annotated, imported) are drawn full height; an annotation whose round has
    not run yet is drawn half height.
    """

    def __init__(self, slider: QSlider, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = slider
        self.kinds: list[str] = []
        self.awaiting: set[int] = set()
        self.setFixedHeight(8)
        self.setToolTip(MARK_LEGEND)

    def set_marks(self, kinds: list[str], awaiting: set[int]) -> None:
        """kinds: one provenance kind per frame; awaiting: annotations not propagated yet."""
        if kinds != self.kinds or awaiting != self.awaiting:
            self.kinds, self.awaiting = list(kinds), set(awaiting)
            self.update()

    def _groove(self) -> QRect:
        opt = QStyleOptionSlider()
        self.slider.initStyleOption(opt)
        style = self.slider.style()
        handle = style.subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderHandle, self.slider)
        # The handle's centre travels from half a handle in to half a handle from the end.
        half = handle.width() // 2
        return QRect(half, 0, max(1, self.slider.width() - 2 * half), self.height())

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        n = len(self.kinds)
        if n == 0:
            return
        groove = self._groove()
        painter = QPainter(self)
        width = max(1.0, groove.width() / max(n - 1, 1))
        for t, kind in enumerate(self.kinds):
            colour = MARK_COLOURS.get(kind)
            if colour is None:
                continue
            x = groove.left() + (t * groove.width() / max(n - 1, 1)) - width / 2
            full = kind != "propagated" and t not in self.awaiting
            h = self.height() if full or kind == "propagated" else self.height() // 2
            painter.fillRect(int(x), self.height() - h, max(1, int(round(width))), h, colour)
        painter.end()


class Timeline(QWidget):
    frame_requested = pyqtSignal(int)
    play_toggled = pyqtSignal()

    def __init__(self, num_frames: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.num_frames = num_frames
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, num_frames - 1)
        self.slider.setTickPosition(QSlider.TicksBelow)
        self.slider.setToolTip("The current frame (Left / Right, Shift: 10 frames, Home / End)")
        self.slider.valueChanged.connect(self.frame_requested)
        self.counter = QLabel()
        self.counter.setMinimumWidth(90)
        self.play = QPushButton("Play")
        self.play.clicked.connect(self.play_toggled)
        self.prev = QPushButton("<")
        self.next = QPushButton(">")
        self.prev.clicked.connect(
            lambda: self.frame_requested.emit(max(self.slider.value() - 1, 0))
        )
        last = num_frames - 1
        self.next.clicked.connect(
            lambda: self.frame_requested.emit(min(self.slider.value() + 1, last))
        )
        row = QHBoxLayout()
        for widget in (self.counter, self.prev, self.play, self.next):
            row.addWidget(widget)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.marks = ProvenanceStrip(self.slider)
        layout.addWidget(self.slider)
        layout.addWidget(self.marks)
        layout.addLayout(row)
        self.show_frame(0)

    def show_frame(self, t: int) -> None:
        """Reflect the current frame without re-emitting."""
        self.slider.blockSignals(True)
        self.slider.setValue(t)
        self.slider.blockSignals(False)
        self.counter.setText(f"{t:4d} / {self.num_frames - 1:4d}")

    def show_playing(self, playing: bool) -> None:
        self.play.setText("Pause" if playing else "Play")

    def show_provenance(self, kinds: list[str], awaiting: set[int]) -> None:
        self.marks.set_marks(kinds, awaiting)
