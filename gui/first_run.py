"""First run: offer to download missing weights, show progress, explain a failure in one line each.

Three dialogs, all short:
* the offer (`ask_to_download`): every missing file with its size and what it is for, and the
  folder where they will go; one question;
* a progress dialog while a worker thread downloads (`download_with_progress`);
* on failure (`report_failures`): one line per file that failed, with why, a clickable link to
  fetch it in a browser and the exact path to put it at; Retry tries again (files put in place
  by hand meanwhile are found).

The texts are Qt rich text (links must be clickable), built from model.weights, so the file
list, links and places always match what the download does. They go through QMessageBox's
static functions, which render rich text and open links in the browser.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from PyQt5.QtCore import QEventLoop, QThread, pyqtSignal
from PyQt5.QtWidgets import QMessageBox, QProgressDialog, QWidget

from model import download as downloader
from model.weights import WeightSpec, weight_spec

log = logging.getLogger(__name__)

Files = list[tuple[WeightSpec, Path]]  # (what, the folder it goes to)


@dataclass(frozen=True)
class FileFailure:
    """One file that could not be downloaded: which, where it belongs, and why (one line)."""

    spec: WeightSpec
    path: Path  # where the file must be put for the application to find it
    reason: str


def downloadable(paths: list[str], optional: list[str] = ()) -> Files | None:
    """(spec, folder) for each missing file we know how to fetch, or None if `paths` has another.

    `paths` are required files: one such as `--prop_model my_model.pth` names no file we can
    fetch, so nothing is offered (the missing-weights message is then the answer). An `optional`
    path with another name is only left out.
    """
    out = []
    for path in [*paths, *optional]:
        try:
            out.append((weight_spec(Path(path).name), Path(path).parent))
        except KeyError:
            if path in paths:
                return None
    return out


def _code(path: Path | str) -> str:
    return f"<code>{html.escape(str(path))}</code>"


def offer_text(files: Files) -> str:
    """The rich text of the offer: one line per file (size, purpose), then where they go."""
    total = sum(spec.size_mb for spec, _ in files)
    folders = list(dict.fromkeys(folder for _, folder in files))
    lines = []
    for spec, folder in files:
        use = spec.purpose if spec.required else f"{spec.purpose}, optional"
        where = f" &rarr; {_code(folder)}" if len(folders) > 1 else ""
        # nobr: each file's line stays one line (the box widens to fit it).
        lines.append(f"<nobr><b>{spec.filename}</b> ({spec.size_mb} MB): {use}{where}</nobr>")
    place = f"<p>They will be saved in {_code(folders[0])}.</p>" if len(folders) == 1 else ""
    # The leading <p> makes QMessageBox render rich text (Qt::mightBeRichText reads line one).
    return (
        f"<p>MiVOS needs its model weights. Download these {len(files)} files now "
        f"(about {total} MB, once)?</p>" + "<br>".join(lines) + place
    )


def ask_to_download(parent: QWidget | None, files: Files) -> bool:
    """One question listing every file to fetch and where it goes; True when the answer is Yes."""
    answer = QMessageBox.question(
        parent, "Model weights are missing", offer_text(files),
        QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes,
    )  # fmt: skip
    return answer == QMessageBox.Yes


class DownloadThread(QThread):
    """Downloads the files one after the other; reports which one it is on."""

    started_file = pyqtSignal(int, str)
    done = pyqtSignal(object)  # list[FileFailure], empty on success

    def __init__(self, files: Files) -> None:
        super().__init__()
        self.files = files

    def run(self) -> None:
        failures = []
        for i, (spec, folder) in enumerate(self.files):
            self.started_file.emit(i, spec.filename)
            try:
                downloader.download(spec, folder, progress=False)
            except downloader.DownloadError as exc:
                failures.append(FileFailure(spec, exc.path, exc.reason))
            except OSError as exc:  # the folder itself: not creatable, read-only, a full disk
                failures.append(FileFailure(spec, folder / spec.filename, exc.strerror or str(exc)))
        # Always emitted (an exception escaping run() would leave the dialog's loop waiting).
        self.done.emit(failures)


def download_with_progress(files: Files) -> list[FileFailure]:
    """Run the downloads with a progress dialog; returns the files that failed (none: [])."""
    dialog = QProgressDialog("Downloading model weights...", None, 0, len(files))
    dialog.setWindowTitle("MiVOS")
    dialog.setMinimumDuration(0)
    thread = DownloadThread(files)
    result: list[list[FileFailure]] = []
    loop = QEventLoop()

    def on_file(i: int, name: str) -> None:
        spec, folder = files[i]
        dialog.setValue(i)
        dialog.setLabelText(
            f"Downloading {name} ({i + 1}/{len(files)}, {spec.size_mb} MB)\nto {folder}..."
        )

    def on_done(failures: list[FileFailure]) -> None:
        result.append(failures)
        dialog.setValue(len(files))
        loop.quit()

    thread.started_file.connect(on_file)
    thread.done.connect(on_done)
    thread.start()
    loop.exec_()  # a local loop keeps the dialog live while the thread downloads
    thread.wait()
    dialog.close()
    return result[0]


def _site(url: str) -> str:
    """A link's visible text: the site's name, not its 100-character URL."""
    host = urlsplit(url).netloc
    known = {"drive.google.com": "Google Drive", "github.com": "GitHub"}
    return known.get(host, "OneDrive" if "sharepoint.com" in host else host)


def failure_line(failure: FileFailure) -> str:
    """One file's failure as one line of rich text: why, a link, and where to put the file."""
    link = downloader.browser_link(failure.spec)
    return (
        f"<b>{failure.spec.filename}</b>: {html.escape(failure.reason)}. "
        f'Download it from <a href="{html.escape(link)}">{_site(link)}</a> '
        f"and put it at {_code(failure.path)}"
    )


def failure_text(failures: list[FileFailure], can_continue: bool) -> str:
    """The rich text of the failure report: a heading, one line per file, what the buttons do."""
    heading = f"<p>{len(failures)} model weight file(s) could not be downloaded:</p>"
    lines = "".join(f"<p>{failure_line(f)}</p>" for f in failures)
    if can_continue:
        after = (
            "<p>Retry, or OK to open without them "
            "(scribbles and clicks need s2m.pth and fbrs.pth).</p>"
        )
    else:
        after = "<p>Retry once the files are in place or the connection is back.</p>"
    return heading + lines + after


def report_failures(
    parent: QWidget | None, failures: list[FileFailure], can_continue: bool
) -> bool:
    """Show the failures; True when the person chose Retry.

    `can_continue`: only optional files failed, so OK opens the application without them;
    otherwise the other button is Close.
    """
    other = QMessageBox.Ok if can_continue else QMessageBox.Close
    answer = QMessageBox.warning(
        parent, "Model weights could not be downloaded", failure_text(failures, can_continue),
        QMessageBox.Retry | other, QMessageBox.Retry,
    )  # fmt: skip
    return answer == QMessageBox.Retry


def failure_summary(failures: list[FileFailure]) -> str:
    """The same failures in plain text, one line per file (for the terminal and logs)."""
    return "\n".join(
        f"{f.spec.filename}: {f.reason}; download it from {downloader.browser_link(f.spec)} "
        f"and put it at {f.path}"
        for f in failures
    )


class WeightsNotDownloaded(RuntimeError):
    """The person closed the failure report with required files still missing.

    str(): the failures in plain text, one line per file (for the terminal). `failures`: the
    FileFailure list. `shown_to_user`: the report with its links was already on screen, so a
    caller that shows start-up errors in a dialog need not show this one again.
    """

    shown_to_user = True

    def __init__(self, failures: list[FileFailure]) -> None:
        self.failures = failures
        super().__init__("The model weights could not be downloaded:\n" + failure_summary(failures))


def fetch_missing(parent: QWidget | None, files: Files) -> None:
    """Download `files` with progress until they are there or the person gives up.

    Each round fetches the files still absent (one put in place by hand meanwhile is kept) and
    reports the failures; Retry starts another round. Returns when everything arrived, or when
    only optional files failed and the person chose OK. Raises WeightsNotDownloaded when a
    required file is still missing and the person closed the report.
    """
    while True:
        todo = [(spec, folder) for spec, folder in files if not (folder / spec.filename).is_file()]
        failures = download_with_progress(todo) if todo else []
        if not failures:
            return
        for failure in failures:
            log.warning("%s: download failed: %s", failure.spec.filename, failure.reason)
        required = any(f.spec.required for f in failures)
        if report_failures(parent, failures, can_continue=not required):
            continue
        if required:
            raise WeightsNotDownloaded(failures)
        return
