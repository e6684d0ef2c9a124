"""Exports (binary/soft PNGs, overlay video, COCO RLE) and resizing results to a given size."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from inference_core.upsample import labels_at_size, probs_at_size
from workflow.export import (
    counts_to_string,
    export_binary_masks,
    export_coco_rle,
    export_overlay_video,
    export_soft_masks,
    rle_decode,
    rle_encode,
    string_to_counts,
)

NAMES = ["f0", "f1", "f2"]


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


def test_rle_of_the_small_example_is_one_zero_then_three_ones():
    mask = np.array([[0, 1], [1, 1]], np.uint8)  # column-major: 0, 1, 1, 1
    rle = rle_encode(mask)
    assert rle == {"size": [2, 2], "counts": "13"}  # 1 -> chr(49), 3 -> chr(51)
    assert string_to_counts("13") == [1, 3]
    np.testing.assert_array_equal(rle_decode(rle), mask)
    np.testing.assert_array_equal(rle_decode({"size": [2, 2], "counts": [1, 3]}), mask)


def test_rle_of_a_mask_starting_inside_begins_with_an_empty_zero_run():
    mask = np.ones((3, 3), bool)
    assert rle_encode(mask)["counts"] == "09"  # counts [0, 9]
    np.testing.assert_array_equal(rle_decode(rle_encode(mask)), mask)


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
    assert counts_to_string(counts) == text
    assert string_to_counts(text) == counts
    column = np.repeat(np.arange(len(counts)) % 2, counts).astype(np.uint8)[:, None]
    assert rle_encode(column)["counts"] == text  # an (N, 1) mask has exactly these runs


def test_rle_round_trips_random_masks():
    rng = np.random.default_rng(1)
    cases = [((1, 1), 0.5), ((7, 3), 0.0), ((7, 3), 1.0), ((40, 57), 0.3), ((64, 48), 0.97)]
    for shape, density in [*cases, ((300, 2), 0.5)]:
        mask = (rng.random(shape) < density).astype(np.uint8)
        rle = rle_encode(mask)
        assert rle["size"] == list(shape)
        assert all(48 <= ord(c) < 48 + 64 for c in rle["counts"])
        np.testing.assert_array_equal(rle_decode(rle), mask)
    blocky = np.kron(rng.random((6, 6)) < 0.5, np.ones((70, 70))).astype(np.uint8)  # long runs
    np.testing.assert_array_equal(rle_decode(rle_encode(blocky)), blocky)


def test_rle_decode_rejects_counts_of_the_wrong_total():
    with pytest.raises(ValueError):
        rle_decode({"size": [2, 2], "counts": [1, 2]})


def test_coco_export_has_one_annotation_per_present_object(tmp_path, labels):
    path = tmp_path / "out" / "masks.json"
    seen: list[tuple[int, int]] = []
    done = export_coco_rle(
        path, NAMES, 2, lambda t: labels[t], progress=lambda d, n: seen.append((d, n))
    )
    assert done == 3 and seen == [(1, 3), (2, 3), (3, 3)]
    doc = json.loads(path.read_text())
    images = [{"id": t, "file_name": n, "height": 5, "width": 7} for t, n in enumerate(NAMES)]
    assert doc["images"] == images
    assert doc["categories"] == [{"id": 1, "name": "object 1"}, {"id": 2, "name": "object 2"}]
    found = [(a["image_id"], a["category_id"]) for a in doc["annotations"]]
    assert found == [(0, 1), (0, 2), (1, 1), (2, 1), (2, 2)]
    assert len({a["id"] for a in doc["annotations"]}) == 5
    for ann in doc["annotations"]:
        inside = labels[ann["image_id"]] == ann["category_id"]
        np.testing.assert_array_equal(rle_decode(ann["segmentation"]), inside)
        assert ann["segmentation"]["size"] == [5, 7]
        assert ann["area"] == int(inside.sum()) and ann["iscrowd"] == 0
    boxes = {(a["image_id"], a["category_id"]): a["bbox"] for a in doc["annotations"]}
    assert boxes[(0, 1)] == [2, 1, 3, 2]  # x, y, width, height
    assert boxes[(0, 2)] == [6, 4, 1, 1]
    assert boxes[(1, 1)] == [0, 0, 1, 5]
    assert not list(path.parent.glob(".*"))  # no temp file left


def test_coco_export_cancelled_writes_nothing(tmp_path, labels):
    cancel, progress = _cancel_after(1)
    path = tmp_path / "masks.json"
    assert export_coco_rle(path, NAMES, 2, lambda t: labels[t], progress, cancel) == 1
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- PNG exports


def test_binary_masks_are_0_255_per_object_folder(tmp_path, labels):
    written = export_binary_masks(tmp_path, NAMES, 2, lambda t: labels[t])
    assert written == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["001", "002"]
    for k in (1, 2):
        files = sorted(p.name for p in (tmp_path / f"{k:03d}").iterdir())
        assert files == ["f0.png", "f1.png", "f2.png"]
        for t, name in enumerate(NAMES):
            expected = np.where(labels[t] == k, 255, 0)
            np.testing.assert_array_equal(_png(tmp_path / f"{k:03d}" / f"{name}.png"), expected)


def test_binary_export_stops_when_cancelled(tmp_path, labels):
    cancel, progress = _cancel_after(1)
    assert export_binary_masks(tmp_path, NAMES, 2, lambda t: labels[t], progress, cancel) == 2
    assert sorted(p.name for p in (tmp_path / "001").iterdir()) == ["f0.png"]


def test_soft_masks_are_rounded_alpha(tmp_path):
    rng = np.random.default_rng(2)
    probs = rng.random((3, 3, 4, 5)).astype(np.float32)
    probs[0, 1, 0, :3] = [0.0, 1.0, 0.5 / 255]
    written = export_soft_masks(tmp_path, NAMES, 2, lambda t: probs[t])
    assert written == 6
    for k in (1, 2):
        for t, name in enumerate(NAMES):
            alpha = _png(tmp_path / f"{k:03d}" / f"{name}.png")
            assert alpha.shape == (4, 5)
            np.testing.assert_array_equal(alpha, np.rint(probs[t, k] * 255).astype(np.uint8))
    assert _png(tmp_path / "001" / "f0.png")[0, :2].tolist() == [0, 255]


def test_soft_export_rejects_too_few_channels(tmp_path):
    with pytest.raises(ValueError, match="frame 0"):
        export_soft_masks(tmp_path, NAMES, 3, lambda t: np.zeros((2, 4, 4), np.float32))


# ---------------------------------------------------------------- video


def _video_frames(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    frames = np.zeros((count, height, width, 3), np.uint8)
    for t in range(count):
        frames[t, :, :, t % 3] = 40 * (t + 1)
    return frames


def _read_video(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened()
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(bgr)
    capture.release()
    return frames


def test_overlay_video_has_every_frame_at_the_right_size(tmp_path):
    frames = _video_frames(5)
    overlaid = 255 - frames
    path = tmp_path / "clip.mp4"
    seen: list[int] = []
    written = export_overlay_video(
        path,
        lambda t: frames[t],
        5,
        10,
        overlay=lambda t: overlaid[t],
        progress=lambda d, n: seen.append(d),
    )
    assert written == 5 and seen == [1, 2, 3, 4, 5]
    back = _read_video(path)
    assert len(back) == 5
    assert back[0].shape == (48, 64, 3)
    # Lossy, but a flat colour survives: the overlay (not the raw frame) was written, as RGB.
    rgb = cv2.cvtColor(back[1], cv2.COLOR_BGR2RGB).reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(rgb, overlaid[1, 0, 0], atol=8)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_video_without_overlay_writes_the_frames_padding_odd_sizes(tmp_path):
    frames = _video_frames(3, 31, 45)
    frames[:, -1, :] = [250, 250, 250]  # the last row must not be dropped by the encoder
    assert export_overlay_video(tmp_path / "raw.mp4", lambda t: frames[t], 3, 25.0) == 3
    back = _read_video(tmp_path / "raw.mp4")
    assert len(back) == 3 and back[0].shape[:2] == (32, 46)  # one edge row/column repeated
    assert back[0][-2:, :40].mean() > 200


def test_cancelled_video_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"previous export")
    frames = _video_frames(6)
    cancel, progress = _cancel_after(2)
    assert export_overlay_video(path, lambda t: frames[t], 6, 10, None, progress, cancel) == 2
    assert path.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_video_writer_that_cannot_open_names_the_path(tmp_path):
    frames = _video_frames(2)
    path = tmp_path / "clip.unknown-container"
    with pytest.raises(OSError, match="clip.unknown-container"):
        export_overlay_video(path, lambda t: frames[t], 2, 10)
    assert list(tmp_path.iterdir()) == []


def test_video_rejects_frames_of_another_size(tmp_path):
    frames = _video_frames(2)

    def frame(t: int) -> np.ndarray:
        return frames[t] if t == 0 else frames[t, :-2]

    with pytest.raises(ValueError, match="frame 1"):
        export_overlay_video(tmp_path / "clip.mp4", frame, 2, 10)
    assert list(tmp_path.iterdir()) == []
