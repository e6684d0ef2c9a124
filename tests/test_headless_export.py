"""Exports from the headless command (--export, --fps) and the GUI's export dialogs and --fps.

Both go through Project.export. The clip is tiny (64x96, 6 frames) and the weights synthetic,
so the masks are whatever the networks make of it: every check compares an export with the
masks the same run saved, read back with PyAV and pycocotools, never with our own readers.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication, QFileDialog, QLineEdit, QWidget

from gui.app import options_from_args
from gui.main_window import EXPORTS, MainWindow
from interactive_gui import build_parser as gui_parser
from tests.gui_helpers import write_weights
from util.mask_io import read_index_mask, write_index_mask
from workflow import export
from workflow.headless import main as headless_main
from workflow.open_project import open_project

H, W = 64, 96
IDS = (2, 5)  # the person's object ids: exports must keep them
pytestmark = pytest.mark.filterwarnings(
    # pycocotools' decoder (not our code) trips a NumPy 2 deprecation.
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _disc(t: int) -> np.ndarray:
    """Object 2 of frame t: a disc moving right, 3 px per frame."""
    yy, xx = np.mgrid[:H, :W]
    return (xx - (16 + 3 * t)) ** 2 + (yy - 20) ** 2 <= 144


def _square(t: int) -> tuple[slice, slice]:
    """Object 5 of frame t: a square moving left, 2 px per frame."""
    return slice(36, 56), slice(60 - 2 * t, 80 - 2 * t)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A folder of 6 PNG frames (two coloured objects over dark noise), the mask of frame 0
    with objects 2 and 5, a 10 fps video of the same frames (OpenCV, mp4v), and weights.
    Synthetic weights track nothing in particular, but they do put both objects on every
    propagated frame, so every export below has content to compare."""
    root = tmp_path_factory.mktemp("export_assets")
    frames, masks = root / "frames", root / "masks"
    frames.mkdir()
    masks.mkdir()
    background = np.random.default_rng(7).integers(0, 90, (H, W, 3), dtype=np.uint8)
    clip = root / "clip10.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for t in range(6):
        image = background.copy()
        image[_disc(t)] = (250, 60, 40)
        image[_square(t)] = (40, 230, 60)
        Image.fromarray(image).save(frames / f"{t:05d}.png")
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    given = np.zeros((H, W), np.uint8)
    given[_disc(0)] = IDS[0]
    given[_square(0)] = IDS[1]
    write_index_mask(masks / "00000.png", given)
    return frames, masks, clip, write_weights(root)


def _common(weights) -> list[str]:
    return [
        "--device", "cpu", "--resolution", "-1",
        "--prop_model", str(weights["stcn"]), "--fusion_model", str(weights["fusion_stcn"]),
    ]  # fmt: skip


def _probe(path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return {
            "rate": stream.average_rate,
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "size": (stream.codec_context.width, stream.codec_context.height),
            "frames": count,
        }


def _gray(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "L"
        return np.asarray(image)


def _exported(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Export")]


def test_headless_exports_every_kind_through_project_export(assets, tmp_path, caplog):
    frames, masks, _, weights = assets
    out, named = tmp_path / "out", tmp_path / "named"
    caplog.set_level(logging.INFO)
    args = [
        "--images", str(frames), "--masks", str(masks), "--output", str(out), "--fps", "10",
        "--export", "binary", "--export", "soft", "--export", "overlay", "--export", "coco",
        "--export", f"coco={named / 'ann'}", "--export", f"video={named / 'clip'}",
        *_common(weights),
    ]  # fmt: skip
    assert headless_main(args) == 0
    names = [f"{t:05d}" for t in range(6)]
    saved = {n: read_index_mask(out / f"{n}.png") for n in names}
    assert all({int(v) for v in np.unique(m)} == {0, *IDS} for m in saved.values())
    np.testing.assert_array_equal(saved[names[0]], read_index_mask(masks / "00000.png"))
    exports = out / "exports"
    assert sorted(p.name for p in exports.iterdir()) == [
        "alpha",
        "binary",
        "coco.json",
        "overlay.mp4",
    ]

    # binary: one folder per object id, 0/255, equal to the saved masks.
    for k in IDS:
        folder = exports / "binary" / f"{k:03d}"
        assert sorted(p.stem for p in folder.iterdir()) == names
        for n in names:
            np.testing.assert_array_equal(_gray(folder / f"{n}.png"), (saved[n] == k) * 255)
    assert sorted(p.name for p in (exports / "binary").iterdir()) == ["002", "005"]

    # alpha ("soft" accepted): the saved object has the largest alpha, at least a third.
    alpha = {k: {n: _gray(exports / "alpha" / f"{k:03d}" / f"{n}.png") for n in names} for k in IDS}
    for n in names[1:]:  # propagated frames: the saved labels are the arg-max of these
        for k, other in (IDS, IDS[::-1]):
            inside = saved[n] == k
            assert (alpha[k][n][inside] >= alpha[other][n][inside]).all(), (n, k)
            assert (alpha[k][n][inside] >= 255 // 3).all(), (n, k)

    # coco: pycocotools decodes every annotation to the saved mask of its object and frame.
    for path in (exports / "coco.json", named / "ann.json"):
        doc = json.loads(path.read_text())
        assert [c["id"] for c in doc["categories"]] == list(IDS)
        assert [(i["file_name"], i["height"], i["width"]) for i in doc["images"]] == [
            (n, H, W) for n in names
        ]
        present = {(t, k) for t, n in enumerate(names) for k in IDS if (saved[n] == k).any()}
        assert {(a["image_id"], a["category_id"]) for a in doc["annotations"]} == present
        for ann in doc["annotations"]:
            rle = dict(ann["segmentation"], counts=ann["segmentation"]["counts"].encode())
            expected = saved[names[ann["image_id"]]] == ann["category_id"]
            np.testing.assert_array_equal(mask_utils.decode(rle), expected)
            assert ann["area"] == int(expected.sum())

    # overlay: H.264, yuv420p, every frame, at --fps (an image folder has no rate of its own).
    for path in (exports / "overlay.mp4", named / "clip.mp4"):
        assert _probe(path) == {
            "rate": 10, "codec": "h264", "pix_fmt": "yuv420p", "size": (W, H), "frames": 6,
        }  # fmt: skip
    with av.open(str(exports / "overlay.mp4")) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    source = np.asarray(Image.open(frames / "00000.png")).astype(int)
    far = cv2.dilate((saved[names[0]] > 0).astype(np.uint8), np.ones((9, 9))) == 0
    # Away from the objects, the frame itself (4:2:0 blurs the noise's colour: compare means).
    np.testing.assert_allclose(first[far].mean(axis=0), source[far].mean(axis=0), atol=3)
    core = cv2.erode((saved[names[0]] == IDS[0]).astype(np.uint8), np.ones((5, 5))) > 0
    # The object is tinted by the overlay (a half blend moves its colour by ~110 in R+G+B,
    # far beyond the encoding error measured above).
    assert np.abs(first[core] - source[core]).sum(axis=1).mean() > 60
    assert sorted(p.name for p in named.iterdir()) == ["ann.json", "clip.mp4"]  # extensions added
    reports = _exported(caplog)
    assert len(reports) == 6
    assert any("overlay video" in r and "10 fps" in r and "H.264 (libx264)" in r for r in reports)


def test_headless_overlay_defaults_to_25_fps_for_image_folders(assets, tmp_path):
    frames, masks, _, weights = assets
    out = tmp_path / "out"
    args = ["--images", str(frames), "--masks", str(masks), "--output", str(out), "--end", "3"]
    assert headless_main([*args, "--export", "overlay", *_common(weights)]) == 0
    back = _probe(out / "exports" / "overlay.mp4")
    assert (back["rate"], back["frames"]) == (25, 3)


def test_headless_overlay_of_a_10fps_video_keeps_its_rate_unless_fps_is_given(assets, tmp_path):
    _, masks, clip, weights = assets
    out = tmp_path / "out"
    args = ["--video", str(clip), "--masks", str(masks), "--output", str(out), "--end", "3"]
    assert headless_main([*args, "--export", "overlay", *_common(weights)]) == 0
    back = _probe(out / "exports" / "overlay.mp4")
    assert (back["rate"], back["frames"], back["codec"]) == (10, 3, "h264")  # the clip's rate
    assert headless_main([*args, "--export", "overlay", "--fps", "12.5", *_common(weights)]) == 0
    assert _probe(out / "exports" / "overlay.mp4")["rate"] == 12.5


def test_headless_overlay_says_when_it_falls_back_to_mpeg4(assets, tmp_path, caplog, monkeypatch):
    frames, masks, _, weights = assets
    monkeypatch.setattr(export, "H264_ENCODERS", ("libmissing264",))  # a build without H.264
    caplog.set_level(logging.INFO)
    monkeypatch.chdir(tmp_path)  # a relative PATH is relative to the current directory
    out = tmp_path / "out"
    args = ["--images", str(frames), "--masks", str(masks), "--output", str(out), "--fps", "10"]
    args += ["--end", "3", "--export", "overlay=clips/v"]
    assert headless_main([*args, *_common(weights)]) == 0
    assert not (out / "exports").exists()
    back = _probe(tmp_path / "clips" / "v.mp4")
    assert (back["codec"], back["rate"], back["frames"]) == ("mpeg4", 10, 3)
    [report] = _exported(caplog)
    assert "mpeg4" in report and "libmissing264: not in this PyAV build" in report


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (["--export", "gif"], "unknown export 'gif'"),
        (["--export", "coco="], "empty path"),
        (["--fps", "0"], "frame rate must be a number > 0"),
        (["--fps", "fast"], "not a number"),
    ],
)
def test_headless_rejects_bad_export_flags_before_any_work(tmp_path, capsys, flag, message):
    args = ["--images", str(tmp_path), "--masks", str(tmp_path), "--output", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exit_info:
        headless_main([*args, *flag])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- the GUI


def test_gui_fps_flag_reaches_the_project(assets, tmp_path):
    frames, masks, clip, weights = assets
    common = [
        "--masks", str(masks), "--device", "cpu", "--resolution", "-1",
        "--prop_model", str(weights["stcn"]), "--fusion_model", str(weights["fusion_stcn"]),
        "--s2m_model", str(weights["s2m"]),
    ]  # fmt: skip
    cases = [
        (["--images", str(frames)], 25.0),
        (["--images", str(frames), "--fps", "8"], 8.0),
        (["--video", str(clip)], 10.0),
        (["--video", str(clip), "--fps", "30"], 30.0),
    ]
    for i, (source, fps) in enumerate(cases):
        args = gui_parser().parse_args([*source, *common, "--output", str(tmp_path / f"o{i}")])
        opts = options_from_args(args)
        assert opts.fps == (float(source[-1]) if "--fps" in source else None)
        project, _ = open_project(opts, torch.device("cpu"))
        try:
            assert project.fps == fps, source
        finally:
            project.close()
            project.session.close()


class _Recorder(QWidget):
    """Stands in for the main window: a parent for the dialog and a controller `c`."""

    def __init__(self, output=None) -> None:
        super().__init__()
        self.exports: list[tuple[str, str]] = []
        self.c = self
        self.project = SimpleNamespace(output=output)  # the project's output folder

    def export(self, kind: str, path: str) -> None:
        self.exports.append((kind, path))


def _answer_dialog(folder, typed: str | None, opened_in: list | None = None) -> None:
    """Once the modal file dialog is up, type `typed` into it and accept (None: cancel);
    the folder it opened in is appended to `opened_in`."""

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            QTimer.singleShot(10, answer)  # not shown yet
            return
        if opened_in is not None:
            opened_in.append(dialog.directory().absolutePath())
        if typed is None:
            dialog.reject()
            return
        dialog.setDirectory(str(folder))
        dialog.findChild(QLineEdit, "fileNameEdit").setText(typed)
        dialog.accept()

    QTimer.singleShot(0, answer)


@pytest.mark.parametrize(
    ("kind", "typed", "written"),
    [("overlay", "clip", "clip.mp4"), ("coco", "ann", "ann.json"), ("overlay", "a.mov", "a.mov")],
)
def test_export_dialog_adds_the_missing_extension(qtbot, tmp_path, kind, typed, written):
    window = _Recorder()
    qtbot.addWidget(window)
    [target] = [t for k, _, t in EXPORTS if k == kind]
    _answer_dialog(tmp_path, typed)
    MainWindow._ask_export(window, kind, target)
    assert window.exports == [(kind, str(tmp_path / written))]


def test_export_dialog_opens_in_the_output_folder(qtbot, tmp_path):
    output = tmp_path / "project"
    output.mkdir()
    window = _Recorder(output)
    qtbot.addWidget(window)
    opened: list[str] = []
    _answer_dialog(tmp_path, "ann", opened)
    MainWindow._ask_export(window, "coco", "COCO JSON (*.json)")
    assert opened == [str(output)]


def test_export_dialog_cancelled_exports_nothing(qtbot, tmp_path):
    window = _Recorder()
    qtbot.addWidget(window)
    _answer_dialog(tmp_path, None)
    MainWindow._ask_export(window, "coco", "COCO JSON (*.json)")
    assert window.exports == []


def test_export_dialog_that_ignores_the_default_suffix_still_gets_it(qtbot, tmp_path, monkeypatch):
    # Some native dialogs return the name as typed; the export name rule still applies.
    monkeypatch.setattr(QFileDialog, "exec_", lambda self: QFileDialog.Accepted)
    monkeypatch.setattr(QFileDialog, "selectedFiles", lambda self: [str(tmp_path / "clip")])
    window = _Recorder()
    qtbot.addWidget(window)
    MainWindow._ask_export(window, "overlay", "MP4 video (*.mp4)")
    assert window.exports == [("overlay", str(tmp_path / "clip.mp4"))]


def test_every_menu_export_is_a_kind_project_export_accepts():
    assert [export.canonical_kind(k) for k, _, _ in EXPORTS] == list(export.EXPORT_KINDS)
