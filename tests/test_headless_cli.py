"""`python -m inference_core`: semi-supervised propagation from given masks, as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from model.build import FUSION, PROPAGATION
from tests.shared_assets import REPO
from util.mask_io import read_index_mask, write_index_mask

SRC_H, SRC_W, FRAMES = 72, 100, 9


def _clip() -> np.ndarray:
    """A textured background with a bright square moving right, RGB uint8 (T, H, W, 3)."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, (SRC_H, SRC_W, 3), dtype=np.uint8)
    frames = np.repeat(background[None], FRAMES, axis=0)
    for t in range(FRAMES):
        frames[t, 20:44, 10 + 5 * t : 34 + 5 * t] = (240, 200, 40)
    return frames


def _square_mask(t: int) -> np.ndarray:
    mask = np.zeros((SRC_H, SRC_W), np.uint8)
    mask[20:44, 10 + 5 * t : 34 + 5 * t] = 1
    mask[50:60, 80:95] = 2
    return mask


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(PROPAGATION.factory().state_dict(), folder / "stcn.pth")
    torch.save(FUSION.factory().state_dict(), folder / "fusion_stcn.pth")
    return folder


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (SRC_W, SRC_H))
    for frame in _clip():
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _run(weights, *args) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "inference_core", *args, "--resolution", "48", "--device", "cpu",
        "--prop_model", str(weights / "stcn.pth"),
        "--fusion_model", str(weights / "fusion_stcn.pth"),
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_video_with_two_annotated_frames(weights, video, tmp_path):
    masks = tmp_path / "masks"
    write_index_mask(masks / "00000.png", _square_mask(0))
    # any size is accepted: this one is at half resolution and names the frame by number
    small = cv2.resize(_square_mask(6), (SRC_W // 2, SRC_H // 2), interpolation=cv2.INTER_NEAREST)
    write_index_mask(masks / "6.png", small)
    out = tmp_path / "out"
    run = _run(weights, "--video", str(video), "--masks", str(masks), "--output", str(out))
    assert run.returncode == 0, run.stderr
    files = sorted(p.name for p in out.glob("*.png"))
    assert (out / ".mivos_project.json").is_file()
    assert files == [f"{t:05d}.png" for t in range(FRAMES)]
    for t in range(FRAMES):
        image = Image.open(out / f"{t:05d}.png")
        assert image.mode == "P" and image.size == (SRC_W, SRC_H)
        assert set(np.unique(np.asarray(image))) <= {0, 1, 2}
    # the annotated frame keeps the person's own mask
    assert np.array_equal(read_index_mask(out / "00000.png"), _square_mask(0))


def test_image_folder_and_frame_range(weights, tmp_path):
    images = tmp_path / "my frames"
    images.mkdir()
    for t, frame in enumerate(_clip()):
        Image.fromarray(frame).save(images / f"shot_{t + 1}.jpg", quality=95)
    masks = tmp_path / "masks"
    write_index_mask(masks / "shot_3.png", _square_mask(2))
    out = tmp_path / "out"
    run = _run(
        weights, "--images", str(images), "--masks", str(masks), "--output", str(out),
        "--start", "1", "--end", "6",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.glob("*.png")) == [f"shot_{t}.png" for t in range(2, 7)]
    assert read_index_mask(out / "shot_2.png").shape == (SRC_H, SRC_W)


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing_video", "nothere.mp4"),
        ("empty_images", "empty"),
        ("missing_masks", "nomasks"),
        ("too_many_ids", "00000.png"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(weights, video, tmp_path, case, needle):
    (tmp_path / "empty").mkdir()
    masks = tmp_path / "masks"
    write_index_mask(masks / "00000.png", _square_mask(0))
    source = {
        "missing_video": ["--video", str(tmp_path / "nothere.mp4")],
        "empty_images": ["--images", str(tmp_path / "empty")],
        "missing_masks": ["--video", str(video)],
        "too_many_ids": ["--video", str(video), "--num_objects", "1"],
    }[case]
    mask_dir = tmp_path / "nomasks" if case == "missing_masks" else masks
    run = _run(weights, *source, "--masks", str(mask_dir), "--output", str(tmp_path / "o"))
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert needle in run.stderr
    assert len([line for line in run.stderr.splitlines() if line.startswith("error")]) == 1
