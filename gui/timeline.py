"""Frame slider, frame counter, play and step buttons."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget


class Timeline(QWidget):
    frame_requested = pyqtSignal(int)
    play_toggled = pyqtSignal()

    def __init__(self, num_frames: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.num_frames = num_frames
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, num_frames - 1)
        self.slider.setTickPosition(QSlider.TicksBelow)
        self.slider.valueChanged.connect(self.frame_requested)
        self.counter = QLabel()
        self.counter.setMinimumWidth(90)
        self.play = QPushButton("Play")
        self.play.clicked.connect(self.play_toggled)
        self.prev = QPushButton("<")
        self.next = QPushButton(">")
        self.prev.setToolTip("Previous frame (Left; Shift+Left: -10)")
        self.next.setToolTip("Next frame (Right; Shift+Right: +10)")
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
        layout.addWidget(self.slider)
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
