"""The synthetic example clip: renders, reads back, moves, and the committed copy stays small."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from util.mask_io import list_mask_files, read_index_mask

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "examples" / "make_example.py"


@pytest.fixture(scope="module")
def make_example() -> Iterator[ModuleType]:
    # examples/ is a plain folder, not a package, so load the script by path.
    spec = importlib.util.spec_from_file_location("make_example", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve string annotations through sys.modules, so register before exec.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    return frames


def test_render_small_clip_with_masks(make_example, tmp_path):
    out = make_example.render_example(
        tmp_path / "clip.mp4", num_frames=8, size=(64, 96), masks_dir=tmp_path / "masks"
    )
    assert out == tmp_path / "clip.mp4" and out.is_file()
    frames = _read_video(out)
    assert len(frames) == 8
    assert frames[0].shape == (64, 96, 3)
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in pairwise(frames)]
    assert min(diffs) > 0.5  # every step moves something, not just codec noise
    files = list_mask_files(tmp_path / "masks")
    assert [f.name for f in files] == [f"{t:05d}.png" for t in range(8)]
    masks = [read_index_mask(f) for f in files]
    assert all(m.shape == (64, 96) for m in masks)
    assert set(np.unique(np.stack(masks)).tolist()) == {0, 1, 2, 3}
    assert not np.array_equal(masks[0], masks[-1])


def test_render_is_deterministic(make_example):
    a_frames, a_masks = make_example.render_frames(3, (32, 48), seed=5)
    b_frames, b_masks = make_example.render_frames(3, (32, 48), seed=5)
    c_frames, _ = make_example.render_frames(3, (32, 48), seed=6)
    for a, b in zip(a_frames + a_masks, b_frames + b_masks, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a_frames[0], c_frames[0])


def test_cli_runs_from_repo_root(tmp_path):
    out = tmp_path / "cli.mp4"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--frames", "2"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(_read_video(out)) == 2


def test_committed_example_exists_and_is_small():
    path = REPO_ROOT / "examples" / "example.mp4"
    assert path.is_file()
    assert path.stat().st_size < 500 * 1024
    frames = _read_video(path)
    assert len(frames) >= 30
