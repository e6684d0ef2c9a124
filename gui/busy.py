"""Slow start-up work (opening the video, loading the networks) off the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from PyQt5.QtCore import QEventLoop, QThread, pyqtSignal
from PyQt5.QtWidgets import QProgressDialog

T = TypeVar("T")


class _Call(QThread):
    finished_call = pyqtSignal()

    def __init__(self, fn: Callable[[], object]) -> None:
        super().__init__()
        self.fn = fn
        self.value: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the GUI thread
            self.error = exc
        self.finished_call.emit()


def run_busy(label: str, fn: Callable[[], T]) -> T:
    """fn() on a worker thread while a busy dialog keeps the GUI responsive; its value, or its
    exception raised here."""
    dialog = QProgressDialog(label, None, 0, 0)  # range 0..0: an indeterminate busy bar
    dialog.setWindowTitle("MiVOS")
    # At once: it follows the splash, and nothing else says the application is starting.
    dialog.setMinimumDuration(0)
    call = _Call(fn)
    loop = QEventLoop()
    call.finished_call.connect(loop.quit)
    call.start()
    if not call.wait(50):  # most of the time is spent here only when the work is slow
        loop.exec_()
    call.wait()
    dialog.close()
    if call.error is not None:
        raise call.error
    return call.value  # type: ignore[return-value]
