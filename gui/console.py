"""Log lines with the session and user timers, as the original's console."""

from __future__ import annotations

import logging
import time

from PyQt5.QtCore import QObject, pyqtSignal
from PyQt5.QtWidgets import QPlainTextEdit, QWidget

log = logging.getLogger(__name__)


class Timers:
    """A: wall time since the first action. U: human time (paused while computing)."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._user_total = 0.0
        self._user_since: float | None = None

    def start(self) -> None:
        if self._start is None:
            self._start = self._user_since = time.monotonic()

    def pause_user(self) -> None:
        if self._user_since is not None:
            self._user_total += time.monotonic() - self._user_since
            self._user_since = None

    def resume_user(self) -> None:
        if self._start is not None and self._user_since is None:
            self._user_since = time.monotonic()

    def readings(self) -> tuple[float, float]:
        if self._start is None:
            return 0.0, 0.0
        now = time.monotonic()
        user = self._user_total + (now - self._user_since if self._user_since else 0.0)
        return now - self._start, user


class Console(QPlainTextEdit):
    def __init__(self, timers: Timers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.timers = timers
        self.setReadOnly(True)
        self.setMaximumBlockCount(2000)
        self.setMinimumHeight(100)

    def log(self, message: str) -> None:
        a, u = self.timers.readings()
        line = f"[A: {a:03.2f}, U: {u:03.2f}]: {message}"
        self.appendPlainText(line)
        log.info(line)


class _Relay(QObject):
    line = pyqtSignal(str)


class ConsoleLogHandler(logging.Handler):
    """Warnings from any thread (a mask resized, frames converted, clicks disabled) shown in
    the console panel, not only on stderr.

    Records arrive before the window exists (while the video opens): they are kept and shown
    once `attach` is called. The relay signal crosses threads as a queued call.
    """

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self._relay = _Relay()
        self._early: list[str] | None = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.levelname.capitalize()}: {record.getMessage()}"
        except Exception:  # noqa: BLE001 - a bad log call must not break the application
            return
        if self._early is not None:
            self._early.append(text)
        else:
            self._relay.line.emit(text)

    def attach(self, console: Console) -> None:
        """Show the records kept so far in `console`, then every new one."""
        self._relay.line.connect(console.log)
        early, self._early = self._early or [], None
        for text in early:
            console.log(text)
