"""Tiny generated datasets for the training tests: 64x64 static pairs and 2-object videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

SIZE = 64


def _scene(
    rng: np.random.Generator, centres: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy background with a red disc and a blue square; labels 1 (disc) and 2 (square)."""
    image = rng.integers(60, 120, (SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.zeros((SIZE, SIZE), np.uint8)
    (dy, dx), (sy, sx) = centres
    cv2.circle(labels, (dx, dy), 12, 1, -1)
    # Clamped at 0 on both ends: an off-image square (negative centre) draws nothing.
    labels[max(sy - 9, 0) : max(sy + 9, 0), max(sx - 9, 0) : max(sx + 9, 0)] = 2
    image[labels == 1] = (220, 40, 40)
    image[labels == 2] = (40, 60, 220)
    return image, labels


def write_static(root: Path, count: int = 4, seed: int = 0) -> Path:
    """<root>/<i>.jpg + <i>.png (0/255 mask of the disc)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, labels = _scene(rng, [tuple(rng.integers(18, 46, 2)), (-20, -20)])
        Image.fromarray(image).save(root / f"{i:03d}.jpg", quality=95)
        Image.fromarray(((labels == 1) * 255).astype(np.uint8)).save(root / f"{i:03d}.png")
    return root


def write_videos(root: Path, count: int = 2, frames: int = 6, seed: int = 0) -> Path:
    """DAVIS layout: JPEGImages/<seq>/<t>.jpg and palette Annotations/<seq>/<t>.png."""
    rng = np.random.default_rng(seed)
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9)
    for v in range(count):
        img_dir, ann_dir = root / "JPEGImages" / f"seq{v}", root / "Annotations" / f"seq{v}"
        img_dir.mkdir(parents=True)
        ann_dir.mkdir(parents=True)
        start = rng.integers(16, 30, 4)
        for t in range(frames):
            image, labels = _scene(
                rng, [(start[0] + 2 * t, start[1] + t), (start[2], start[3] + 3 * t)]
            )
            Image.fromarray(image).save(img_dir / f"{t:05d}.jpg", quality=95)
            anno = Image.fromarray(labels, mode="P")
            anno.putpalette(palette)
            anno.save(ann_dir / f"{t:05d}.png")
    return root
