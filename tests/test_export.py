"""Exports (binary/alpha PNGs, overlay video, COCO RLE) and resizing results to a given size.

Videos are read back with PyAV (FFmpeg), COCO files with pycocotools and with an independent
RLE implementation (tests/coco_rle_oracle.py).
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from inference_core.upsample import labels_at_size, probs_at_size
from tests import coco_rle_oracle as oracle
from workflow import export
from workflow.export import (
    canonical_kind,
    export_alpha_masks,
    export_binary_masks,
    export_coco_rle,
    export_overlay_video,
    export_path,
    parse_fps,
    rle_encode,
    source_fps,
)

# pycocotools' decoder (not our code) trips a NumPy 2 deprecation; nothing to act on here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

NAMES = ["f0", "f1", "f2"]


@dataclass(frozen=True)
class Obj:
    id: int
    name: str


OBJECTS = [Obj(1, "car"), Obj(3, "dog")]  # value 1 of a label mask is id 1, value 2 is id 3


@pytest.fixture
def labels() -> np.ndarray:
    """(3, 5, 7) index masks of 2 objects; object 2 is absent from frame 1."""
    ids = np.zeros((3, 5, 7), np.uint8)
    ids[0, 1:3, 2:5] = 1
    ids[0, 4, 6] = 2
    ids[1, 0:5, 0] = 1
    ids[2, 2, 1:4] = 2
    ids[2, 0, 0] = 1
    return ids


def _cancel_after(frames: int) -> tuple[threading.Event, Callable[[int, int], None]]:
    """An Event and a progress callback that sets it once `frames` frames are done."""
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done >= frames:
            cancel.set()

    return cancel, progress


def _png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "L"
        return np.asarray(image)


# ---------------------------------------------------------------- resizing results


def test_labels_at_size_unpads_and_keeps_size():
    prob = np.zeros((3, 8, 10), np.float32)
    prob[0] = 0.5
    prob[1, 2:6, 1:5] = 0.9
    prob[2, 2:6, 5:9] = 0.8
    pad = (1, 1, 2, 2)  # left, right, top, bottom
    out = labels_at_size(prob, pad, (4, 8))
    assert out.dtype == np.uint8 and out.shape == (4, 8)
    np.testing.assert_array_equal(out, prob[:, 2:6, 1:9].argmax(axis=0))


def test_labels_and_probs_at_size_resize_bilinearly():
    rng = np.random.default_rng(0)
    prob = rng.random((3, 6, 8)).astype(np.float16)  # stored results may be half precision
    pad = (0, 0, 1, 1)
    expected = F.interpolate(
        torch.from_numpy(prob[:, 1:5].astype(np.float32))[None],
        size=(12, 16),
        mode="bilinear",
        align_corners=False,
    )[0].numpy()
    soft = probs_at_size(prob, pad, (12, 16))
    assert soft.dtype == np.float32 and soft.shape == (3, 12, 16)
    np.testing.assert_allclose(soft, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(labels_at_size(prob, pad, (12, 16)), expected.argmax(axis=0))


# ---------------------------------------------------------------- COCO RLE


def _pycoco_decode(rle: dict) -> np.ndarray:
    """pycocotools' decoder on a JSON-style RLE (counts as str, as in the exported file)."""
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})


def test_rle_of_the_small_example_is_one_zero_then_three_ones():
    mask = np.array([[0, 1], [1, 1]], np.uint8)  # column-major: 0, 1, 1, 1
    expected = {"size": [2, 2], "counts": "13"}  # 1 -> chr(49), 3 -> chr(51)
    assert rle_encode(mask) == expected
    assert oracle.rle_encode(mask) == expected
    assert oracle.string_to_counts("13") == [1, 3]
    np.testing.assert_array_equal(oracle.rle_decode(expected), mask)
    np.testing.assert_array_equal(_pycoco_decode(expected), mask)
    np.testing.assert_array_equal(oracle.rle_decode({"size": [2, 2], "counts": [1, 3]}), mask)


def test_rle_of_a_mask_starting_inside_begins_with_an_empty_zero_run():
    mask = np.ones((3, 3), bool)
    assert rle_encode(mask)["counts"] == oracle.rle_encode(mask)["counts"] == "09"  # [0, 9]
    np.testing.assert_array_equal(_pycoco_decode(rle_encode(mask)), mask)


@pytest.mark.parametrize(
    ("counts", "text"),
    [
        # 100 = 3 * 32 + 4: low group 4 with the continuation bit (4 + 32 + 48 = 'T'), then 3.
        ([100], "T3"),
        # The 4th count is stored as 1 - 2 = -1: one group 31 (sign bit 0x10 set) -> 'O'.
        ([5, 2, 1, 1], "521O"),
        # 200 = 6 * 32 + 8 -> 'X' '6'; 50 = 32 + 18 but 18 has 0x10 set, so a positive value
        # needs a second group: 'b' '1'; the 4th count is 60 - 200 = -140 = -5 * 32 + 20:
        # 20 + 32 + 48 = 'd', then -5 & 31 = 27 with the sign bit and nothing left -> 'K'.
        ([0, 200, 50, 60], "0X6b1dK"),
    ],
)
def test_rle_string_matches_hand_computed_values(counts, text):
    assert oracle.counts_to_string(counts) == text
    assert oracle.string_to_counts(text) == counts
    column = np.repeat(np.arange(len(counts)) % 2, counts).astype(np.uint8)[:, None]
    assert rle_encode(column)["counts"] == text  # an (N, 1) mask has exactly these runs
    assert oracle.rle_encode(column)["counts"] == text


def test_pycocotools_and_the_oracle_agree_on_random_masks():
    rng = np.random.default_rng(1)
    cases = [
        ((1, 1), 0.5), ((1, 1), 1.0), ((7, 3), 0.0), ((7, 3), 1.0), ((40, 57), 0.3),
        ((64, 48), 0.97), ((300, 2), 0.5), ((2, 300), 0.02), ((33, 33), 0.5),
    ]  # fmt: skip
    masks = [(rng.random(shape) < density).astype(np.uint8) for shape, density in cases]
    masks.append(np.kron(rng.random((6, 6)) < 0.5, np.ones((70, 70))).astype(np.uint8))  # long
    masks.append(np.ones((20, 30), np.uint8) * 7)  # nonzero, not 1, means inside
    for mask in masks:
        inside = (mask != 0).astype(np.uint8)
        ours = rle_encode(mask)
        assert ours == oracle.rle_encode(mask), (
            mask.shape
        )  # the same string, character for character
        assert ours["size"] == list(mask.shape)
        assert all(48 <= ord(c) < 48 + 64 for c in ours["counts"])
        np.testing.assert_array_equal(_pycoco_decode(ours), inside)
        np.testing.assert_array_equal(oracle.rle_decode(ours), inside)
        np.testing.assert_array_equal(_pycoco_decode(oracle.rle_encode(mask)), inside)
        assert int(mask_utils.area(_as_bytes(ours))) == int(inside.sum())


def _as_bytes(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


def test_rle_encode_rejects_a_mask_that_is_not_2d():
    with pytest.raises(ValueError, match="2-D"):
        rle_encode(np.zeros((2, 2, 2), np.uint8))


def test_oracle_decode_rejects_counts_of_the_wrong_total():
    with pytest.raises(ValueError):
        oracle.rle_decode({"size": [2, 2], "counts": [1, 2]})


def test_coco_export_has_one_annotation_per_present_object(tmp_path, labels):
    path = tmp_path / "out" / "masks.json"
    seen: list[tuple[int, int]] = []
    done = export_coco_rle(
        path, NAMES, OBJECTS, lambda t: labels[t], progress=lambda d, n: seen.append((d, n))
    )
    assert done == 3 and seen == [(1, 3), (2, 3), (3, 3)]
    doc = json.loads(path.read_text())
    images = [{"id": t, "file_name": n, "height": 5, "width": 7} for t, n in enumerate(NAMES)]
    assert doc["images"] == images
    # The objects' own ids and names: value 2 of the label masks is object id 3.
    assert doc["categories"] == [{"id": 1, "name": "car"}, {"id": 3, "name": "dog"}]
    assert doc["licenses"] == []
    found = [(a["image_id"], a["category_id"]) for a in doc["annotations"]]
    assert found == [(0, 1), (0, 3), (1, 1), (2, 1), (2, 3)]
    assert len({a["id"] for a in doc["annotations"]}) == 5
    value = {1: 1, 3: 2}  # category id -> value in the label masks
    for ann in doc["annotations"]:
        inside = labels[ann["image_id"]] == value[ann["category_id"]]
        np.testing.assert_array_equal(_pycoco_decode(ann["segmentation"]), inside)
        np.testing.assert_array_equal(oracle.rle_decode(ann["segmentation"]), inside)
        assert ann["segmentation"]["size"] == [5, 7]
        assert ann["area"] == int(inside.sum()) and ann["iscrowd"] == 0
    boxes = {(a["image_id"], a["category_id"]): a["bbox"] for a in doc["annotations"]}
    assert boxes[(0, 1)] == [2, 1, 3, 2]  # x, y, width, height
    assert boxes[(0, 3)] == [6, 4, 1, 1]
    assert boxes[(1, 1)] == [0, 0, 1, 5]
    assert not list(path.parent.glob(".*"))  # no temp file left


def test_coco_export_loads_in_the_reference_coco_api(tmp_path, labels, capsys):
    path = tmp_path / "masks.json"
    export_coco_rle(path, NAMES, OBJECTS, lambda t: labels[t])
    coco = COCO(str(path))  # pycocotools' loader, as evaluation tools read the file
    assert sorted(coco.getCatIds()) == [1, 3] and sorted(coco.getImgIds()) == [0, 1, 2]
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[2], catIds=[3]))[0]
    np.testing.assert_array_equal(coco.annToMask(ann), labels[2] == 2)


def test_coco_export_cancelled_writes_nothing(tmp_path, labels):
    cancel, progress = _cancel_after(1)
    path = tmp_path / "masks.json"
    assert export_coco_rle(path, NAMES, OBJECTS, lambda t: labels[t], progress, cancel) == 1
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- PNG exports


def test_binary_masks_are_0_255_per_object_id_folder(tmp_path, labels):
    written = export_binary_masks(tmp_path, NAMES, OBJECTS, lambda t: labels[t])
    assert written == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["001", "003"]
    for value, folder in ((1, "001"), (2, "003")):
        files = sorted(p.name for p in (tmp_path / folder).iterdir())
        assert files == ["f0.png", "f1.png", "f2.png"]
        for t, name in enumerate(NAMES):
            expected = np.where(labels[t] == value, 255, 0)
            np.testing.assert_array_equal(_png(tmp_path / folder / f"{name}.png"), expected)


def test_binary_export_stops_when_cancelled(tmp_path, labels):
    cancel, progress = _cancel_after(1)
    assert export_binary_masks(tmp_path, NAMES, OBJECTS, lambda t: labels[t], progress, cancel) == 2
    assert sorted(p.name for p in (tmp_path / "001").iterdir()) == ["f0.png"]


def test_alpha_masks_are_rounded_probabilities(tmp_path):
    rng = np.random.default_rng(2)
    probs = rng.random((3, 3, 4, 5)).astype(np.float32)
    probs[0, 1, 0, :3] = [0.0, 1.0, 0.5 / 255]
    written = export_alpha_masks(tmp_path, NAMES, OBJECTS, lambda t: probs[t])
    assert written == 6
    for channel, folder in ((1, "001"), (2, "003")):
        for t, name in enumerate(NAMES):
            alpha = _png(tmp_path / folder / f"{name}.png")
            assert alpha.shape == (4, 5)
            np.testing.assert_array_equal(alpha, np.rint(probs[t, channel] * 255).astype(np.uint8))
    assert _png(tmp_path / "001" / "f0.png")[0, :2].tolist() == [0, 255]


def test_alpha_export_rejects_too_few_channels(tmp_path):
    three = [Obj(1, "a"), Obj(2, "b"), Obj(3, "c")]
    with pytest.raises(ValueError, match="frame 0"):
        export_alpha_masks(tmp_path, NAMES, three, lambda t: np.zeros((2, 4, 4), np.float32))


@pytest.mark.parametrize("objects", [[], [Obj(1, "a"), Obj(1, "b")], [Obj(0, "background")]])
def test_exports_reject_no_or_bad_object_ids(tmp_path, labels, objects):
    with pytest.raises(ValueError):
        export_binary_masks(tmp_path, NAMES, objects, lambda t: labels[t])
    with pytest.raises(ValueError):
        export_coco_rle(tmp_path / "a.json", NAMES, objects, lambda t: labels[t])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- names, kinds, frame rates


@pytest.mark.parametrize(
    ("kind", "typed", "written"),
    [
        ("overlay", "clip", "clip.mp4"),
        ("video", "out/clip", "out/clip.mp4"),
        ("overlay", "clip.mp4", "clip.mp4"),
        ("overlay", "clip.MP4", "clip.MP4"),
        ("overlay", "clip.mov", "clip.mov"),
        ("overlay", "clip.mkv", "clip.mkv"),
        ("overlay", "clip.v2", "clip.v2.mp4"),
        ("overlay", "clip.json", "clip.json.mp4"),
        ("coco", "annotations", "annotations.json"),
        ("coco", "annotations.JSON", "annotations.JSON"),
        ("coco", "run.7", "run.7.json"),
        ("binary", "masks", "masks"),
        ("alpha", "mattes.d", "mattes.d"),
        ("soft", "mattes", "mattes"),
    ],
)
def test_export_path_adds_the_missing_extension(kind, typed, written):
    assert export_path(kind, typed) == Path(written)
    assert export_path(kind, export_path(kind, typed)) == Path(written)  # idempotent


def test_export_kinds_and_their_aliases():
    assert [canonical_kind(k) for k in ("binary", "alpha", "soft", "overlay", "video", "coco")] == [
        "binary", "alpha", "alpha", "overlay", "overlay", "coco",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="'mask'.*binary, alpha, overlay, coco"):
        canonical_kind("mask")
    with pytest.raises(ValueError):
        export_path("gif", "clip")


def test_source_fps_follows_wrappers_and_rejects_unusable_rates():
    video = SimpleNamespace(fps=10.0)
    assert source_fps(video) == 10.0
    assert source_fps(SimpleNamespace(source=video)) == 10.0  # FrameRange(video)
    assert source_fps(SimpleNamespace(source=SimpleNamespace(fps=None))) is None
    assert source_fps(SimpleNamespace(names=["a"])) is None  # an image folder
    for bad in (0.0, -5.0, float("nan"), float("inf"), "x"):
        assert source_fps(SimpleNamespace(fps=bad)) is None


def test_parse_fps_accepts_positive_numbers_only():
    assert parse_fps("10") == 10.0 and parse_fps("29.97") == 29.97
    for bad in ("0", "-1", "nan", "inf", "ten", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_fps(bad)


# ---------------------------------------------------------------- video


def _video_frames(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    frames = np.zeros((count, height, width, 3), np.uint8)
    for t in range(count):
        frames[t, :, :, t % 3] = 30 * (t + 1)
    return frames


def _probe(path) -> dict:
    """What PyAV (FFmpeg) reads back: rate, codec, pixel format, size, times, RGB frames."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        return {
            "rate": stream.average_rate,
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "size": (stream.codec_context.width, stream.codec_context.height),
            # FFmpeg's enums: 1 = BT.709 matrix, 1 = limited ("MPEG") range
            "colour": (stream.codec_context.colorspace, stream.codec_context.color_range),
            "times": [float(f.time) for f in decoded],
            "rgb": [f.to_ndarray(format="rgb24") for f in decoded],
        }


def test_overlay_video_is_h264_yuv420p_at_the_given_frame_rate(tmp_path):
    frames = _video_frames(7)
    overlaid = 255 - frames
    path = tmp_path / "clip.mp4"
    seen: list[int] = []
    result = export_overlay_video(
        path,
        lambda t: frames[t],
        7,
        10,
        overlay=lambda t: overlaid[t],
        progress=lambda d, n: seen.append(d),
    )
    assert seen == [1, 2, 3, 4, 5, 6, 7]
    assert (result.frames, result.encoder, result.codec, result.fps) == (7, "libx264", "h264", 10)
    assert result.size == (64, 48) and result.skipped == ()
    assert result.describe() == "H.264 (libx264)"
    back = _probe(path)
    assert back["rate"] == 10 and back["codec"] == "h264" and back["pix_fmt"] == "yuv420p"
    assert back["size"] == (64, 48) and len(back["rgb"]) == 7 and back["colour"] == (1, 1)
    np.testing.assert_allclose(back["times"], np.arange(7) / 10, atol=1e-6)
    # Lossy, but a flat colour survives (BT.709 both ways): the overlay, not the raw frame.
    for t in range(7):
        mean = back["rgb"][t].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean, overlaid[t, 0, 0], atol=3)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_video_keeps_an_ntsc_frame_rate_exactly(tmp_path):
    frames = _video_frames(3)
    export_overlay_video(tmp_path / "ntsc.mp4", lambda t: frames[t], 3, 30000 / 1001)
    assert _probe(tmp_path / "ntsc.mp4")["rate"] == Fraction(30000, 1001)


def test_video_pads_odd_sizes_to_even_for_yuv420p(tmp_path):
    frames = _video_frames(3, 31, 45)
    frames[:, -1, :] = [250, 250, 250]  # the last row must reach the video
    frames[:, :, -1] = [250, 250, 250]  # and the last column
    result = export_overlay_video(tmp_path / "raw.mp4", lambda t: frames[t], 3, 25.0)
    assert result.size == (46, 32)
    back = _probe(tmp_path / "raw.mp4")
    assert back["size"] == (46, 32) and len(back["rgb"]) == 3 and back["pix_fmt"] == "yuv420p"
    assert back["rgb"][0][-2:, :40].mean() > 200  # the last row, repeated once
    assert back["rgb"][0][:28, -2:].mean() > 200  # the last column, repeated once


def test_video_falls_back_to_mpeg4_without_an_h264_encoder(tmp_path, monkeypatch):
    # A build without H.264: the real availability check runs on a name no build has.
    monkeypatch.setattr(export, "H264_ENCODERS", ("libmissing264",))
    frames = _video_frames(5)
    result = export_overlay_video(tmp_path / "clip.mp4", lambda t: frames[t], 5, 10)
    assert (result.frames, result.encoder, result.codec) == (5, "mpeg4", "mpeg4")
    assert result.skipped == ("libmissing264: not in this PyAV build",)
    assert "mpeg4" in result.describe() and "libmissing264" in result.describe()
    back = _probe(tmp_path / "clip.mp4")
    assert back["codec"] == "mpeg4" and back["rate"] == 10 and back["pix_fmt"] == "yuv420p"
    assert len(back["rgb"]) == 5
    mean = back["rgb"][2].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(mean, frames[2, 0, 0], atol=4)


def test_video_without_any_encoder_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "H264_ENCODERS", ("libmissing264",))
    monkeypatch.setattr(export, "FALLBACK_ENCODERS", ("libmissing4",))
    frames = _video_frames(2)
    with pytest.raises(OSError, match=r"clip\.mp4.*libmissing264.*libmissing4"):
        export_overlay_video(tmp_path / "clip.mp4", lambda t: frames[t], 2, 10)
    assert list(tmp_path.iterdir()) == []


def test_cancelled_video_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"previous export")
    frames = _video_frames(6)
    cancel, progress = _cancel_after(2)
    result = export_overlay_video(path, lambda t: frames[t], 6, 10, None, progress, cancel)
    assert result.frames == 2
    assert path.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_video_in_a_container_nobody_knows_names_the_path(tmp_path):
    frames = _video_frames(2)
    path = tmp_path / "clip.unknown-container"
    with pytest.raises(OSError, match="clip.unknown-container"):
        export_overlay_video(path, lambda t: frames[t], 2, 10)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fps", [0, -1, float("nan")])
def test_video_rejects_a_rate_that_is_not_positive(tmp_path, fps):
    frames = _video_frames(2)
    with pytest.raises(ValueError, match="fps"):
        export_overlay_video(tmp_path / "clip.mp4", lambda t: frames[t], 2, fps)


def test_video_rejects_frames_of_another_size(tmp_path):
    frames = _video_frames(2)

    def frame(t: int) -> np.ndarray:
        return frames[t] if t == 0 else frames[t, :-2]

    with pytest.raises(ValueError, match="frame 1"):
        export_overlay_video(tmp_path / "clip.mp4", frame, 2, 10)
    assert list(tmp_path.iterdir()) == []
