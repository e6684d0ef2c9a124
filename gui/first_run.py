"""First run: offer to download missing weights in place, with progress, off the GUI thread."""

from __future__ import annotations

import logging
from pathlib import Path

from PyQt5.QtCore import QEventLoop, QThread, pyqtSignal
from PyQt5.QtWidgets import QMessageBox, QProgressDialog, QWidget

from model import download as downloader
from model.weights import WeightSpec, weight_spec

log = logging.getLogger(__name__)


def downloadable(paths: list[str]) -> list[tuple[WeightSpec, Path]] | None:
    """(spec, folder) for each missing file, or None when one is not an official file name."""
    out = []
    for path in paths:
        try:
            out.append((weight_spec(Path(path).name), Path(path).parent))
        except KeyError:
            return None
    return out


class DownloadThread(QThread):
    """Downloads the files one after the other; reports which one it is on."""

    started_file = pyqtSignal(int, str)
    done = pyqtSignal(str)  # "" on success, else what failed

    def __init__(self, files: list[tuple[WeightSpec, Path]]) -> None:
        super().__init__()
        self.files = files

    def run(self) -> None:
        failures = []
        for i, (spec, folder) in enumerate(self.files):
            self.started_file.emit(i, spec.filename)
            try:
                downloader.download(spec, folder, progress=False)
            except downloader.DownloadError as exc:
                failures.append(exc.summary)
        self.done.emit("\n".join(failures))


def ask_to_download(parent: QWidget | None, message: str) -> bool:
    answer = QMessageBox.question(
        parent, "Model weights are missing",
        f"{message}\n\nDownload them now (a few hundred MB)?",
        QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes,
    )  # fmt: skip
    return answer == QMessageBox.Yes


def download_with_progress(files: list[tuple[WeightSpec, Path]]) -> str:
    """Run the downloads with a progress dialog; returns "" on success, else the failures."""
    dialog = QProgressDialog("Downloading model weights...", None, 0, len(files))
    dialog.setWindowTitle("MiVOS")
    dialog.setMinimumDuration(0)
    thread = DownloadThread(files)
    result: list[str] = []
    loop = QEventLoop()

    def on_file(i: int, name: str) -> None:
        dialog.setValue(i)
        dialog.setLabelText(f"Downloading {name} ({i + 1}/{len(files)})...")

    def on_done(failures: str) -> None:
        result.append(failures)
        dialog.setValue(len(files))
        loop.quit()

    thread.started_file.connect(on_file)
    thread.done.connect(on_done)
    thread.start()
    loop.exec_()  # a local loop keeps the dialog live while the thread downloads
    thread.wait()
    dialog.close()
    return result[0] if result else "the download was interrupted"
