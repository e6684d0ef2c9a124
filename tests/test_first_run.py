"""First run without weights, through the real start-up path and the real dialogs.

The application starts from an empty current folder with an empty per-user data folder
(XDG_DATA_HOME in tmp). The official files' mirrors are pointed at a real HTTP server on
127.0.0.1 serving small files that load strictly (tests/weights_server.py), so the download,
its validation and the renaming into place all run for real. Each message box is the real
QMessageBox, read and answered by a timer while it is shown (as a person would click).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtGui import QTextDocument
from PyQt5.QtWidgets import QApplication, QLabel, QMessageBox, QProgressDialog

import interactive_gui
import model.weights
from gui.app import start
from gui.first_run import FileFailure, WeightsNotDownloaded, failure_line
from model.weights import FBRS_WEIGHTS, STCN_WEIGHTS
from tests.gui_helpers import write_clip
from tests.weights_server import Route, Server, compact_weight_files, serving
from workflow.open_project import MissingWeights

FILES = ("stcn.pth", "fusion_stcn.pth", "s2m.pth", "fbrs.pth")


@pytest.fixture(scope="module")
def weight_bytes() -> dict[str, bytes]:
    return compact_weight_files()


@pytest.fixture(scope="module")
def http_server():
    with serving() as state:
        yield state


@pytest.fixture
def server(http_server: Server, weight_bytes, monkeypatch) -> Server:
    """All four files served at /w/<name>; the official specs' only mirror is this server."""
    http_server.reset()
    for name, body in weight_bytes.items():
        http_server.routes[f"/w/{name}"] = Route(body)
    local = tuple(
        dataclasses.replace(spec, urls=(f"{http_server.base}/w/{spec.filename}",))
        for spec in model.weights.WEIGHTS
    )
    # weight_spec() reads this registry: the GUI's download uses exactly these specs.
    monkeypatch.setattr(model.weights, "WEIGHTS", local)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "MIVOS_WEIGHTS_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return http_server


@pytest.fixture
def weights_folder(home) -> Path:
    """The empty per-user data folder's weights/ (see conftest's `home`)."""
    return home / "xdg" / "mivos-studio" / "weights"


def _args(tmp_path: Path, *extra: str):
    clip = write_clip(tmp_path / "clip.mp4")
    return interactive_gui.build_parser().parse_args(
        ["--video", str(clip), "--output", str(tmp_path / "out"), "--device", "cpu",
         "--resolution", "-1", *extra]
    )  # fmt: skip


@dataclass
class Shown:
    """A message box as it was on screen."""

    title: str
    html: str
    plain: str  # as rendered, one line per paragraph / line break
    rich: bool  # rendered as rich text
    links_open: bool  # a click on a link opens it in the browser
    buttons: list[str]  # their texts, sorted (the order on screen is the platform's)

    @property
    def links(self) -> list[str]:
        return re.findall(r'<a href="([^"]+)">', self.html)


@dataclass
class Person:
    """Answers message boxes in turn (title fragment -> button) and watches progress dialogs."""

    answers: list[tuple[str, QMessageBox.StandardButton]]
    boxes: list[Shown] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)  # progress dialog labels seen, in order
    on_box: list = field(default_factory=list)  # callables run before answering box i

    def __post_init__(self) -> None:
        self._done: set[int] = set()
        self.timer = QTimer()
        self.timer.timeout.connect(self._look)
        self.timer.start(5)

    def _look(self) -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QProgressDialog) and widget.isVisible():
                label = widget.labelText()
                if not self.progress or self.progress[-1] != label:
                    self.progress.append(label)
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or id(box) in self._done or not self.answers:
            return
        self._done.add(id(box))
        label = box.findChild(QLabel, "qt_msgbox_label")
        doc = QTextDocument()
        doc.setHtml(box.text())
        self.boxes.append(
            Shown(
                box.windowTitle(), box.text(), doc.toPlainText(), Qt.mightBeRichText(box.text()),
                label.openExternalLinks()
                and bool(label.textInteractionFlags() & Qt.LinksAccessibleByMouse),
                sorted(b.text().replace("&", "") for b in box.buttons()),
            )
        )  # fmt: skip
        title, button = self.answers.pop(0)
        assert title in box.windowTitle(), box.windowTitle()
        if self.on_box:
            self.on_box.pop(0)()
        box.button(button).click()

    def stop(self) -> None:
        self.timer.stop()


@pytest.fixture
def person(monkeypatch):
    made = []
    real_set_label = QProgressDialog.setLabelText

    def set_label(dialog, text):
        # Every label the progress dialog is given, not only those a timer happens to see:
        # local downloads are fast enough to show a file for less than a polling period.
        for p in made:
            if not p.progress or p.progress[-1] != text:
                p.progress.append(text)
        real_set_label(dialog, text)

    monkeypatch.setattr(QProgressDialog, "setLabelText", set_label)

    def make(*answers, on_box=()):
        p = Person(list(answers), on_box=list(on_box))
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


GUI_FLAGS = {
    option for action in interactive_gui.build_parser()._actions for option in action.option_strings
}


def _flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text))


def test_the_offer_lists_the_four_files_and_where_they_go(
    qtbot, tmp_path, server, weights_folder, person
):
    answer = person(("Model weights are missing", QMessageBox.No))
    with pytest.raises(MissingWeights) as err:
        start(_args(tmp_path))
    (offer,) = answer.boxes
    assert offer.rich and offer.buttons == ["No", "Yes"]
    lines = offer.plain.splitlines()
    assert lines[0] == (
        "MiVOS needs its model weights. Download these 4 files now (about 481 MB, once)?"
    )
    assert lines[1:5] == [
        "stcn.pth (208 MB): propagation",
        "fusion_stcn.pth (1 MB): merging corrections",
        "s2m.pth (152 MB): scribbles, optional",
        "fbrs.pth (120 MB): clicks, optional",
    ]
    assert lines[5:] == [f"They will be saved in {weights_folder}."]
    assert server.requests == []  # declined: nothing fetched
    # The message that follows names the GUI's own flags only.
    assert _flags(str(err.value)) <= GUI_FLAGS and "--download" in str(err.value)
    for name in FILES:
        assert str(weights_folder / name) in str(err.value)


@pytest.mark.parametrize("flag", [False, True])
def test_yes_downloads_all_four_with_progress_and_opens(
    qtbot, tmp_path, server, weights_folder, weight_bytes, person, flag
):
    answer = person(*([] if flag else [("Model weights are missing", QMessageBox.Yes)]))
    window = start(_args(tmp_path, *(["--download"] if flag else [])))
    qtbot.addWidget(window)
    assert len(answer.boxes) == (0 if flag else 1)
    assert sorted(p.name for p in weights_folder.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (weights_folder / name).read_bytes() == weight_bytes[name]
    assert sorted(path for path, _ in server.requests) == sorted(f"/w/{n}" for n in FILES)
    # A progress dialog named each file while it downloaded.
    for i, name in enumerate(FILES):
        assert any(
            label.startswith(f"Downloading {name} ({i + 1}/4,") for label in answer.progress
        ), answer.progress
    assert window.c.s2m_available and window.c.clicks_available  # the optional two came too
    window.close()


def test_failure_is_one_line_per_file_with_a_link_and_the_place(
    qtbot, tmp_path, server, weights_folder, person
):
    del server.routes["/w/fusion_stcn.pth"]
    del server.routes["/w/fbrs.pth"]
    answer = person(
        ("Model weights are missing", QMessageBox.Yes),
        ("could not be downloaded", QMessageBox.Close),
    )
    with pytest.raises(WeightsNotDownloaded) as err:
        start(_args(tmp_path))
    report = answer.boxes[1]
    assert report.rich and report.links_open and report.buttons == ["Close", "Retry"]
    lines = report.plain.splitlines()
    assert lines[0] == "2 model weight file(s) could not be downloaded:"
    for line, name in zip(lines[1:3], ("fusion_stcn.pth", "fbrs.pth"), strict=True):
        assert line == (
            f"{name}: HTTP 404 Not Found. Download it from 127.0.0.1:{server.base.rsplit(':')[-1]}"
            f" and put it at {weights_folder / name}"
        )
    assert lines[3:] == ["Retry once the files are in place or the connection is back."]
    # Each link is the file's own page, clickable; no wall of URLs in the visible text.
    assert report.links == [f"{server.base}/w/fusion_stcn.pth", f"{server.base}/w/fbrs.pth"]
    assert "http" not in report.plain
    assert _flags(report.html) == set() and _flags(str(err.value)) == set()
    # The two that arrived are kept; the terminal gets the same, one line per file.
    assert sorted(p.name for p in weights_folder.iterdir()) == ["s2m.pth", "stcn.pth"]
    assert str(err.value).splitlines()[1:] == [
        f"{name}: HTTP 404 Not Found; download it from {server.base}/w/{name} "
        f"and put it at {weights_folder / name}"
        for name in ("fusion_stcn.pth", "fbrs.pth")
    ]


def test_retry_fetches_what_is_still_missing_and_opens(
    qtbot, tmp_path, server, weights_folder, weight_bytes, person
):
    del server.routes["/w/fusion_stcn.pth"]

    def put_fusion_by_hand() -> None:  # as the report says: the file, at the exact place
        (weights_folder / "fusion_stcn.pth").write_bytes(weight_bytes["fusion_stcn.pth"])

    answer = person(
        ("Model weights are missing", QMessageBox.Yes),
        ("could not be downloaded", QMessageBox.Retry),
        on_box=[lambda: None, put_fusion_by_hand],
    )
    window = start(_args(tmp_path))
    qtbot.addWidget(window)
    assert len(answer.boxes) == 2
    # The retry found the file in place: nothing asked again, the others fetched once each.
    assert sorted(p for p, _ in server.requests) == sorted(f"/w/{n}" for n in FILES)
    assert sorted(p.name for p in weights_folder.iterdir()) == sorted(FILES)
    window.close()


def test_only_optional_files_failed_ok_opens_without_them(
    qtbot, tmp_path, server, weights_folder, person
):
    del server.routes["/w/fbrs.pth"]
    answer = person(
        ("Model weights are missing", QMessageBox.Yes),
        ("could not be downloaded", QMessageBox.Ok),
    )
    window = start(_args(tmp_path))
    qtbot.addWidget(window)
    report = answer.boxes[1]
    assert report.buttons == ["OK", "Retry"]
    assert report.plain.splitlines()[1].startswith("fbrs.pth: HTTP 404 Not Found.")
    assert window.c.s2m_available and not window.c.clicks_available
    window.close()


def test_the_links_of_the_official_files_are_their_download_pages(tmp_path):
    """Without the test server: the built-in specs give a browser page per file, named by site."""
    stcn = failure_line(FileFailure(STCN_WEIGHTS, tmp_path / "stcn.pth", "cannot connect"))
    assert stcn == (
        '<b>stcn.pth</b>: cannot connect. Download it from <a href="https://drive.google.com/'
        'file/d/1mRrE0uCI2ktdWlUgapJI_KmgeIiF2eOm/view?usp=sharing">Google Drive</a> and put '
        f"it at <code>{tmp_path / 'stcn.pth'}</code>"
    )
    fbrs = failure_line(FileFailure(FBRS_WEIGHTS, tmp_path / "fbrs.pth", "HTTP 503"))
    assert '<a href="https://github.com/saic-vul/fbrs_interactive_segmentation/releases/' in fbrs
    assert ">GitHub</a>" in fbrs


def test_files_named_by_flags_are_downloaded_where_the_flags_say(
    qtbot, tmp_path, server, weights_folder, weight_bytes, person
):
    mine = tmp_path / "my weights"
    answer = person(("Model weights are missing", QMessageBox.Yes))
    window = start(
        _args(tmp_path, "--prop_model", str(mine / "stcn.pth"),
              "--fusion_model", str(mine / "fusion_stcn.pth"))
    )  # fmt: skip
    qtbot.addWidget(window)
    # Two folders: each line says where its file goes.
    lines = answer.boxes[0].plain.splitlines()
    assert lines[1:5] == [
        f"stcn.pth (208 MB): propagation → {mine}",
        f"fusion_stcn.pth (1 MB): merging corrections → {mine}",
        f"s2m.pth (152 MB): scribbles, optional → {weights_folder}",
        f"fbrs.pth (120 MB): clicks, optional → {weights_folder}",
    ]
    assert sorted(p.name for p in mine.iterdir()) == ["fusion_stcn.pth", "stcn.pth"]
    assert sorted(p.name for p in weights_folder.iterdir()) == ["fbrs.pth", "s2m.pth"]
    window.close()
