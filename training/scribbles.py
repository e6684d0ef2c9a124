"""S2M training samples (spec §4.3): a perturbed previous mask and simulated scribbles.

Simplified from the original: no DAVIS robot and no Bezier library; scribbles are polylines
through points inside each (opened) error region, plus random curves on the GT fg/bg.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from model.normalize import normalize_frames
from training import augment as aug
from training.datasets import StaticPairs, sample_rng


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two binary masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def perturb_mask(rng: np.random.Generator, gt: np.ndarray, max_steps: int = 40) -> np.ndarray:
    """Random local dilations/erosions of gt (H,W) uint8 until IoU < U(0.4, 0.95)."""
    target = rng.uniform(0.4, 0.95)
    mask = gt.copy()
    h, w = gt.shape
    for _ in range(max_steps):
        if iou(mask, gt) < target:
            break
        r = int(rng.integers(max(h, w) // 16 + 1, max(h, w) // 4 + 2))
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        window = (slice(max(cy - r, 0), cy + r), slice(max(cx - r, 0), cx + r))
        kernel = np.ones((int(rng.integers(3, 9)),) * 2, np.uint8)
        op = cv2.dilate if rng.random() < 0.5 else cv2.erode
        mask[window] = op(mask, kernel)[window]
    return mask


def _polyline_in(rng: np.random.Generator, region: np.ndarray, canvas: np.ndarray) -> None:
    """Draw a 3-px polyline through 2-4 random points of `region` onto `canvas` (clipped)."""
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return
    pick = rng.choice(len(ys), size=min(len(ys), int(rng.integers(2, 5))), replace=False)
    points = np.stack([xs[pick], ys[pick]], 1).astype(np.int32)
    points = points[np.argsort(points[:, 0] + points[:, 1])]
    stroke = np.zeros_like(canvas)
    cv2.polylines(stroke, [points[:, None]], False, 1, thickness=3)
    if len(points) == 1:
        cv2.circle(stroke, tuple(int(v) for v in points[0]), 2, 1, -1)
    canvas |= stroke & region


def scribbles_for(
    rng: np.random.Generator, gt: np.ndarray, prev: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positive scribbles on false negatives, negative on false positives: two (H,W) uint8."""
    pos, neg = np.zeros_like(gt), np.zeros_like(gt)
    size = int(rng.integers(5, 20)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    for error, canvas in ((gt & (1 - prev), pos), (prev & (1 - gt), neg)):
        opened = cv2.morphologyEx(error, cv2.MORPH_OPEN, kernel)
        count, labels = cv2.connectedComponents(opened)
        for c in range(1, count):
            _polyline_in(rng, (labels == c).astype(np.uint8), canvas)
    if rng.random() < 0.3 or not (pos.any() or neg.any()):
        _polyline_in(rng, gt, pos)
        _polyline_in(rng, 1 - gt, neg)
    return pos, neg


def _as_map(mask: np.ndarray) -> torch.Tensor:
    """(H,W) uint8 -> (1,H,W) float32."""
    return torch.from_numpy(mask.astype(np.float32))[None]


class ScribbleSamples(StaticPairs):
    """Static image + mask -> rgb (3,S,S), prev/pos/neg (1,S,S) float, gt (S,S) long."""

    def __getitem__(self, index: int) -> dict:
        rng = sample_rng()
        image, gt = self.load(index)
        image, gt = aug.warp(
            image, gt, aug.random_affine(rng, image.shape[:2], 20, (0.8, 1.25), 10)
        )
        image, gt = aug.resize_short(image, gt, self.crop)
        y, x = aug.crop_box(rng, image.shape[:2], self.crop)
        image, gt = aug.apply_crop(image, y, x, self.crop), aug.apply_crop(gt, y, x, self.crop)
        if rng.random() < 0.5:
            image, gt = aug.hflip(image, gt)
        image = aug.color_jitter(rng, image, 0.1, 0.03, 0.03, grayscale_p=0.05)
        gt = gt[0]
        # One time in three the interaction starts from nothing.
        prev = np.zeros_like(gt) if rng.random() < 0.33 else perturb_mask(rng, gt)
        pos, neg = scribbles_for(rng, gt, prev)
        return {
            "rgb": normalize_frames(image),
            "prev": _as_map(prev),
            "pos": _as_map(pos),
            "neg": _as_map(neg),
            "gt": torch.from_numpy(gt.astype(np.int64)),
        }
