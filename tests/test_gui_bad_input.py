"""Bad input to the application: one dialog naming the file, exit 2, no window; or it opens.

Table-driven, mirroring tests/test_bad_input_cli.py for interactive_gui.main (the real start-up
path, with real files on disk). A failing start shows exactly one critical dialog, returns 2,
opens no window, prints no traceback and leaves the masks already in --output untouched. Inputs
that convert sensibly open a window whose session holds (H, W, 3) uint8 frames.
"""

from __future__ import annotations

import builtins
import errno
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from PyQt5.QtWidgets import QApplication, QFileDialog, QMessageBox

import gui.app
import interactive_gui
import workflow.open_project
from tests.gui_helpers import write_weights
from util.mask_io import read_index_mask, write_index_mask

H, W, T = 32, 48, 3
EXISTING = "00000.png"  # the mask already in --output before each start


def _frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (T, H, W, 3), dtype=np.uint8)


def _mask(value: int = 1, size=(H, W)) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    mask[size[0] // 4 : size[0] // 2, size[1] // 4 : size[1] // 2] = value
    return mask


def _video(path: Path, frames, fourcc: str = "mp4v") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (W, H))
    for frame in frames:
        writer.write(frame[..., ::-1].copy())
    writer.release()
    return path


def _images(folder: Path, mode: str | None = None, sizes=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(_frames()):
        image = Image.fromarray(frame)
        if sizes:
            image = image.resize(sizes[t])
        if mode == "I;16":
            image = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
        elif mode:
            image = image.convert(mode)
        image.save(folder / f"{t:05d}.png")
    return folder


def _cut_in_half(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_weights(tmp_path_factory.mktemp("gui_bad_input_weights"))


@pytest.fixture(scope="module", autouse=True)
def _load_each_good_checkpoint_once(weights):
    """Full-size networks take ~1.5 s to load; a good file is loaded for real once, then reused.

    Bad files have other paths, so every bad-checkpoint case still runs the real loader.
    """
    patch = pytest.MonkeyPatch()
    for name in ("load_prop_net", "load_fusion_net", "load_s2m"):
        real, cache = getattr(workflow.open_project, name), {}

        def load(path, device, fast=False, *, real=real, cache=cache):
            key = (str(path), str(device), fast)
            if key not in cache:
                cache[key] = real(path, device, fast)
            return cache[key]

        patch.setattr(workflow.open_project, name, load)
    yield
    patch.undo()


@dataclass
class Started:
    code: int | None
    window: object | None
    dialogs: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def start_gui(qtbot, monkeypatch):
    """interactive_gui.main with every message box recorded and the event loop not entered."""
    dialogs: list[tuple[str, str]] = []

    def recorder(kind):
        def show(parent, title, text, *rest, **kwargs):
            dialogs.append((kind, text))
            return QMessageBox.No  # e.g. "download the missing weights?": no

        return show

    for kind in ("critical", "warning", "question", "information"):
        monkeypatch.setattr(QMessageBox, kind, recorder(kind))
    windows = []
    real_start = gui.app.start

    def start(args):
        window = real_start(args)
        # Closed at teardown even when an assertion fails: stops the worker, flushes the writer.
        qtbot.addWidget(window)
        windows.append(window)
        return window

    monkeypatch.setattr(gui.app, "start", start)
    monkeypatch.setattr(QApplication, "exec_", lambda self: 0)

    def run(argv: list[str]) -> Started:
        code = interactive_gui.main(argv)
        return Started(code, windows[0] if windows else None, dialogs)

    return run


def _read_only(monkeypatch, folder: Path) -> None:
    """Tests run as root, which chmod does not stop: refuse writes under `folder` at the OS calls.

    Same effect as a read-only folder or file system for whichever call production code uses.
    """
    root = os.path.abspath(folder)
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def inside(path) -> bool:
        if isinstance(path, int):
            return False
        p = os.path.abspath(os.fsdecode(os.fspath(path)))
        return p == root or p.startswith(root + os.sep)

    def deny(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    def py_open(file, mode="r", *args, **kwargs):
        if inside(file) and any(c in mode for c in "wax+"):
            deny(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            deny(path)
        return real_os_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if inside(path):
            deny(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", py_open)
    monkeypatch.setattr(io, "open", py_open)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)


@dataclass
class Case:
    source: list[str]  # --video / --images and what else this case adds
    expect: str | None = None  # None: opens; else text the one dialog must contain
    problem: str = ""  # and the words that say what is wrong
    masks: Path | None = None  # --masks
    output: Path | None = None  # --output when not tmp/out
    check: object = None  # check(window) for a case that opens
    may_open: bool = False  # either outcome is right (with `expect` and `check` both given)
    checkpoints: dict[str, str] = field(default_factory=dict)  # flag -> file
    unchanged: list[Path] = field(default_factory=list)  # files whose bytes must survive
    warns: str | None = None  # what was changed or turned off is logged, naming this file


def _frame_is_rgb8(window, t: int = 0) -> np.ndarray:
    frame = window.c.project.session.frames.get(t)
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    return frame


def _same_as_pil(folder: Path):
    def check(window):
        for t in range(T):
            expected = np.asarray(Image.open(folder / f"{t:05d}.png").convert("RGB"))
            assert np.array_equal(_frame_is_rgb8(window, t), expected)

    return check


def _sixteen_bit_check(folder: Path):
    def check(window):
        for t in range(T):
            gray = (np.asarray(Image.open(folder / f"{t:05d}.png"), np.float64) / 257).round()
            assert np.array_equal(_frame_is_rgb8(window, t), np.repeat(gray[..., None], 3, 2))

    return check


def _opens_with_frames(n: int | None = None, fewer_than: int | None = None):
    def check(window):
        count = window.c.num_frames
        if n is not None:
            assert count == n
        else:
            assert 1 <= count < fewer_than
        for t in range(count):
            _frame_is_rgb8(window, t)

    return check


def _mask_landed(window):
    """The imported mask is frame 0's result, exactly where it was drawn."""
    assert window.c.num_frames == T
    assert np.array_equal(window.c.project.labels_at_source(0), _mask())
    assert not window.c.project.has_content(1) and not window.c.project.has_content(2)


def _saves_masks(window):
    """Frames read, masks imported, and a mask written into the (odd) output folder."""
    _mask_landed(window)
    window.c.project.writer.submit(0)
    assert window.c.project.writer.flush(timeout=30)
    assert np.array_equal(read_index_mask(window.c.project.output / EXISTING), _mask())


def _checkpoint(kind: str, flag: str, tmp: Path, weights) -> Path:
    good = {"prop": "stcn", "fusion": "fusion_stcn", "s2m": "s2m", "fbrs": "s2m"}[flag]
    wrong = {"prop": "s2m", "fusion": "stcn", "s2m": "fusion_stcn", "fbrs": "s2m"}[flag]
    path = tmp / f"{kind} {flag}.pth"
    if kind == "truncated":
        path.write_bytes(weights[good].read_bytes()[:100_000])
    elif kind == "html":
        path.write_text("<!DOCTYPE html><html><body>Quota exceeded</body></html>")
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path = weights[wrong]
    return path


CHECKPOINT_PROBLEM = {
    "truncated": "truncated or corrupt",
    "html": "HTML page",
    "wrong_model": "does not match",
    "empty": "is empty",
}


def _case(name: str, tmp: Path, weights) -> Case:
    masks = tmp / "masks"
    write_index_mask(masks / "00000.png", _mask())
    images = ["--images", str(tmp / "f")]
    if name == "missing_video":
        return Case(["--video", str(tmp / "nope.mp4")], "nope.mp4", "not found")
    if name == "missing_image_folder":
        return Case(["--images", str(tmp / "no frames")], "no frames", "not found")
    if name == "not_a_video":
        (tmp / "notes.mp4").write_text("hello")
        return Case(["--video", str(tmp / "notes.mp4")], "notes.mp4", "is not a video")
    if name == "zero_frames":
        # OpenCV writes a 258-byte header-only .mp4 for a writer given no frame.
        path = _video(tmp / "empty.mp4", [])
        assert path.is_file()
        return Case(["--video", str(path)], "empty.mp4", "video")
    if name == "truncated_mp4":
        # OpenCV's mp4 index (moov) is at the end: half a file is unreadable, or reads partly.
        path = _cut_in_half(_video(tmp / "cut.mp4", np.repeat(_frames(), 10, axis=0)))
        opens = _opens_with_frames(fewer_than=30)
        return Case(["--video", str(path)], "cut.mp4", "video", check=opens, may_open=True)
    if name == "truncated_avi":
        # MJPG .avi needs no index: the frames before the cut are read, the rest dropped.
        path = _cut_in_half(_video(tmp / "cut.avi", np.repeat(_frames(), 10, 0), "MJPG"))
        return Case(["--video", str(path)], check=_opens_with_frames(fewer_than=30))
    if name == "empty_folder":
        (tmp / "nothing").mkdir()
        return Case(["--images", str(tmp / "nothing")], "nothing", "contains no images")
    if name == "only_non_images":
        (tmp / "docs").mkdir()
        (tmp / "docs" / "a.txt").write_text("x")
        (tmp / "docs" / "b.json").write_text("{}")
        return Case(["--images", str(tmp / "docs")], "docs", "contains no images")
    if name == "images_and_other_files":
        folder = _images(tmp / "f")
        (folder / "notes.txt").write_text("x")
        (folder / "Thumbs.db").write_bytes(b"\0" * 64)
        (folder / "sub").mkdir()
        return Case(images, check=_same_as_pil(folder))
    if name in ("grayscale", "rgba", "palette"):
        folder = _images(tmp / "f", {"grayscale": "L", "rgba": "RGBA", "palette": "P"}[name])
        return Case(images, check=_same_as_pil(folder))
    if name == "16bit":
        return Case(images, check=_sixteen_bit_check(_images(tmp / "f", "I;16")))
    if name == "mixed_sizes":
        folder = _images(tmp / "f", sizes=[(W, H), (W + 8, H + 4), (W, H)])
        return Case(images, check=_opens_with_frames(T), warns=str(folder / "00001.png"))
    if name == "mask_other_size":
        write_index_mask(masks / "00000.png", _mask(size=(H * 2, W * 2)))
        warns = str(masks / "00000.png")
        return Case([*images, "--num_objects", "1"], masks=masks, check=_mask_landed, warns=warns)
    if name == "fewer_masks_than_frames":
        return Case(images, masks=masks, check=_mask_landed)
    if name == "mask_ids_above_num_objects":
        write_index_mask(masks / "00000.png", _mask(3))
        return Case([*images, "--num_objects", "2"], "00000.png", "--num_objects", masks=masks)
    if name == "mask_not_an_image":
        (masks / "00001.png").write_text("not a png")
        return Case(images, "00001.png", "not a readable image", masks=masks)
    if name == "missing_masks_folder":
        return Case(images, "no_such_masks", "not found", masks=tmp / "no_such_masks")
    if name.startswith("odd_path_"):
        odd = tmp / "vidéo à côté" / "dossier 1"
        kind = name.removeprefix("odd_path_")
        source = (
            ["--video", str(_video(odd / "clip é.mp4", _frames()))]
            if kind == "video"
            else ["--images", str(_images(odd / "images é" if kind == "images" else tmp / "f"))]
        )
        if kind == "masks":
            write_index_mask(odd / "masques ü" / "00000.png", _mask())
        return Case(
            source,
            masks=odd / "masques ü" if kind == "masks" else masks,
            output=odd / "sortie ß" if kind == "output" else None,
            check=_saves_masks,
        )
    if name == "output_is_the_png_frames_folder":
        # Masks are <frame>.png: here they would overwrite the frames (and be read as masks).
        folder = _images(tmp / "gray", "L")
        frame = folder / "00000.png"
        return Case(["--images", str(folder)], str(folder), "overwrite the frames",
                    output=folder, unchanged=[frame])  # fmt: skip
    if name == "output_is_the_jpg_frames_folder":
        # Masks saved among JPEG frames would be listed as frames by the next run: refused.
        folder = tmp / "jpg"
        folder.mkdir()
        for t, frame in enumerate(_frames()):
            Image.fromarray(frame).save(folder / f"{t:05d}.jpg")
        return Case(["--images", str(folder)], str(folder), "is the frames folder",
                    output=folder, unchanged=sorted(folder.glob("*.jpg")))  # fmt: skip
    if name in ("damaged_project_file", "project_file_of_a_newer_version"):
        # Never silently replaced by an empty project: the annotations it lists would be lost.
        out = tmp / "out"
        write_index_mask(out / EXISTING, _mask())
        state = out / ".mivos_project.json"
        damaged = name == "damaged_project_file"
        state.write_text('{"format": "mivos-pro' if damaged else '{"format": "mivos-project", '
                         '"version": 99}')  # fmt: skip
        problem = "unreadable project file" if damaged else "newer version"
        return Case(images, str(state), problem, unchanged=[out / EXISTING, state])
    if name == "output_is_a_file":
        (tmp / "out.png").write_text("a file, not a folder")
        return Case(images, "out.png", "not a folder", output=tmp / "out.png")
    if name == "output_under_a_file":
        (tmp / "blocker").write_text("a file")
        out = tmp / "blocker" / "out"
        return Case(images, str(out), "cannot be saved", output=out)
    if name == "output_read_only":
        return Case(images, str(tmp / "out"), "cannot be saved")
    kind, flag = name.rsplit("_", 1)
    path = _checkpoint(kind, flag, tmp, weights)
    if flag == "fbrs":
        # Clicks are optional: an unusable f-BRS file disables them (with the reason logged).
        return Case(images, check=_clicks_off, checkpoints={flag: str(path)}, warns=str(path))
    return Case(images, str(path), CHECKPOINT_PROBLEM[kind], checkpoints={flag: str(path)})


def _clicks_off(window):
    assert window.c.clicks_available is False
    assert not window.tools.radios["click"].isEnabled()
    # the person reads why in the console, with the file named
    assert "clicks are disabled" in window.console.toPlainText()
    assert "fbrs" in window.console.toPlainText()
    _frame_is_rgb8(window)


INPUT_CASES = [
    "missing_video", "missing_image_folder", "not_a_video", "zero_frames", "truncated_mp4",
    "truncated_avi", "empty_folder", "only_non_images", "images_and_other_files", "grayscale",
    "rgba", "palette", "16bit", "mixed_sizes", "mask_other_size", "fewer_masks_than_frames",
    "mask_ids_above_num_objects", "mask_not_an_image", "missing_masks_folder", "odd_path_video",
    "odd_path_images", "odd_path_masks", "odd_path_output", "output_is_the_png_frames_folder",
    "output_is_the_jpg_frames_folder", "output_is_a_file",
    "output_under_a_file", "output_read_only", "damaged_project_file",
    "project_file_of_a_newer_version",
]  # fmt: skip
CHECKPOINT_CASES = [
    f"{kind}_{flag}" for kind in CHECKPOINT_PROBLEM for flag in ("prop", "fusion", "s2m", "fbrs")
]


@pytest.mark.parametrize("name", INPUT_CASES + CHECKPOINT_CASES)
def test_bad_input(name, tmp_path, weights, start_gui, capsys, caplog, monkeypatch):
    caplog.set_level(logging.WARNING)
    _images(tmp_path / "f")
    case = _case(name, tmp_path, weights)
    output = case.output or tmp_path / "out"
    if not output.exists() and output.parent.is_dir():
        write_index_mask(output / EXISTING, _mask())  # a resumed session's mask: never clobbered
        case.unchanged.append(output / EXISTING)
    before = {path: path.read_bytes() for path in case.unchanged}
    files = {"prop": weights["stcn"], "fusion": weights["fusion_stcn"], "s2m": weights["s2m"],
             "fbrs": tmp_path / "no_fbrs.pth"}  # fmt: skip
    files.update(case.checkpoints)
    argv = [*case.source, "--output", str(output), "--device", "cpu", "--resolution", "-1"]
    argv += [f"--{flag}_model={path}" for flag, path in files.items()]
    if case.masks is not None:
        argv += ["--masks", str(case.masks)]
    if name == "output_read_only":
        _read_only(monkeypatch, output)

    started = start_gui(argv)

    assert "Traceback" not in capsys.readouterr().err
    assert {path: path.read_bytes() for path in case.unchanged} == before
    if case.expect is None or (case.may_open and started.code != 2):
        assert started.code == 0 and started.window is not None, started.dialogs
        assert started.dialogs == []
        case.check(started.window)
        if case.warns:
            logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert any(case.warns in line for line in logged), logged
        return
    assert started.code == 2 and started.window is None
    dialogs = list(started.dialogs)
    if name in OUTPUT_FOLDER_CASES:
        # First an offer to save elsewhere (declined here), naming the folder and the problem.
        kind, text = dialogs.pop(0)
        assert kind == "warning" and "Choose another folder" in text
        assert case.expect in text and case.problem in text, text
    ((kind, text),) = dialogs
    assert kind == "critical"
    assert case.expect in text and case.problem in text, text


OUTPUT_FOLDER_CASES = {"output_is_a_file", "output_under_a_file", "output_read_only"}


def test_an_unwritable_output_folder_can_be_swapped_for_another_at_start(
    tmp_path, weights, start_gui, monkeypatch
):
    images = _images(tmp_path / "f")
    locked, chosen = tmp_path / "locked", tmp_path / "chosen"
    chosen.mkdir()
    _read_only(monkeypatch, locked)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.Yes)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(chosen))
    started = start_gui(
        ["--images", str(images), "--output", str(locked), "--device", "cpu",
         f"--prop_model={weights['stcn']}", f"--fusion_model={weights['fusion_stcn']}",
         f"--s2m_model={weights['s2m']}", f"--fbrs_model={tmp_path / 'no_fbrs.pth'}"]
    )  # fmt: skip
    assert started.code == 0 and started.window is not None
    ws = started.window.c.project
    assert ws.output == chosen and not locked.exists()
    ws.writer.submit(0)
    assert ws.writer.flush(timeout=10)
    assert (chosen / "00000.png").is_file()


def test_an_unreadable_later_frame_is_a_message_not_a_crash(
    tmp_path, weights, start_gui, capsys, qtbot
):
    folder = _images(tmp_path / "f")
    (folder / "00001.png").write_text("not an image")  # only the first header is read at open
    started = start_gui(
        ["--images", str(folder), "--output", str(tmp_path / "out"), "--device", "cpu",
         f"--prop_model={weights['stcn']}", f"--fusion_model={weights['fusion_stcn']}",
         f"--s2m_model={weights['s2m']}", f"--fbrs_model={tmp_path / 'no_fbrs.pth'}"]
    )  # fmt: skip
    assert started.code == 0
    c = started.window.c
    with qtbot.capture_exceptions() as exceptions:
        c.set_frame(1)
        shown = c.composed()
        qtbot.waitUntil(lambda: any("00001.png" in text for _, text in started.dialogs))
        c.composed()  # painting the frame again does not repeat the message
        qtbot.wait(50)
        c.set_frame(2)
        readable = c.composed()
    assert exceptions == [] and "Traceback" not in capsys.readouterr().err
    assert [text for _, text in started.dialogs if "00001.png" in text] != []
    assert sum("00001.png" in text for _, text in started.dialogs) == 1
    # the unreadable frame is a grey stand-in of the video's size; the others still show
    assert shown.shape == readable.shape and c.frame == 2
    assert not np.array_equal(shown, readable)
