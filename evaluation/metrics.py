"""Region (J) and boundary (F) accuracy of index masks, as the DAVIS benchmark defines them.

J is the intersection over union of an object's predicted and true regions. F is the F-measure
of boundary precision and recall: a boundary pixel counts as matched when the other mask's
boundary lies within a tolerance of 0.008 x the image diagonal (rounded up to whole pixels).
A boundary pixel is a pixel whose value differs from its right, lower or lower-right neighbour,
where a neighbour outside the image takes the pixel's own value. Both measures are 1 when the
object is absent from both masks. J&F is their mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

BOUNDARY_TOLERANCE = 0.008  # fraction of the image diagonal


def region_similarity(true_mask: np.ndarray, pred_mask: np.ndarray) -> float:
    """J of two (H, W) binary masks: |A and B| / |A or B| (1.0 when both are empty)."""
    true_mask, pred_mask = np.asarray(true_mask, bool), np.asarray(pred_mask, bool)
    _check_same_shape(true_mask, pred_mask)
    union = np.count_nonzero(true_mask | pred_mask)
    if union == 0:
        return 1.0
    return np.count_nonzero(true_mask & pred_mask) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose value differs from the right, lower or lower-right neighbour."""
    mask = np.asarray(mask, bool)
    # Edge padding makes a pixel outside the image equal its neighbour inside: the image border
    # itself is no boundary.
    padded = np.pad(mask, ((0, 1), (0, 1)), mode="edge")
    right, down, diagonal = padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]
    return (mask != right) | (mask != down) | (mask != diagonal)


def boundary_tolerance_px(shape: tuple[int, int], fraction: float = BOUNDARY_TOLERANCE) -> int:
    """The match radius in pixels for an image of `shape` (H, W)."""
    return math.ceil(fraction * math.hypot(shape[0], shape[1]))


def _disk(radius: int) -> np.ndarray:
    """uint8 kernel of the pixels within `radius` of the centre (Euclidean)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return ((xx * xx + yy * yy) <= radius * radius).astype(np.uint8)


def boundary_measure(
    true_mask: np.ndarray, pred_mask: np.ndarray, fraction: float = BOUNDARY_TOLERANCE
) -> float:
    """F of two (H, W) binary masks: harmonic mean of boundary precision and recall."""
    true_mask, pred_mask = np.asarray(true_mask, bool), np.asarray(pred_mask, bool)
    _check_same_shape(true_mask, pred_mask)
    true_edge, pred_edge = boundary_map(true_mask), boundary_map(pred_mask)
    n_true, n_pred = np.count_nonzero(true_edge), np.count_nonzero(pred_edge)
    if n_true == 0 and n_pred == 0:
        return 1.0
    if n_true == 0 or n_pred == 0:
        return 0.0  # nothing to match on one side: precision or recall is 0
    kernel = _disk(boundary_tolerance_px(true_mask.shape, fraction))
    true_near = cv2.dilate(true_edge.astype(np.uint8), kernel).astype(bool)
    pred_near = cv2.dilate(pred_edge.astype(np.uint8), kernel).astype(bool)
    precision = np.count_nonzero(pred_edge & true_near) / n_pred
    recall = np.count_nonzero(true_edge & pred_near) / n_true
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _check_same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two (H, W) masks of one shape, got {a.shape} and {b.shape}")


def frame_scores(
    true_ids: np.ndarray, pred_ids: np.ndarray, num_objects: int, void_id: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """J and F, each (num_objects,), of one frame's (H, W) index masks (objects 1..K).

    With `void_id`, ground-truth pixels of that value count for neither mask (the DAVIS 2017
    semi-supervised evaluation does so for its unlabelled pixels, 255).
    """
    true_ids, pred_ids = np.asarray(true_ids), np.asarray(pred_ids)
    keep = np.ones(true_ids.shape, bool) if void_id is None else true_ids != void_id
    j = np.empty(num_objects)
    f = np.empty(num_objects)
    for k in range(1, num_objects + 1):
        true_k, pred_k = (true_ids == k) & keep, (pred_ids == k) & keep
        j[k - 1] = region_similarity(true_k, pred_k)
        f[k - 1] = boundary_measure(true_k, pred_k)
    return j, f


@dataclass(frozen=True)
class Score:
    """Mean J, F and J&F of one sequence (or of all), in [0, 1]."""

    name: str
    j: float
    f: float
    num_objects: int

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2


@dataclass
class ScoreTable:
    """Per-object means over frames, grouped by sequence; the DAVIS 2017 aggregation.

    A sequence's score averages its objects; the overall score averages every object of every
    sequence (so a sequence with more objects weighs more, as in the benchmark).
    """

    _objects: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def add_sequence(self, name: str, j: np.ndarray, f: np.ndarray) -> Score:
        """j, f: (num_frames, num_objects) scores of the frames scored; returns its Score."""
        j, f = np.atleast_2d(np.asarray(j, float)), np.atleast_2d(np.asarray(f, float))
        if j.shape != f.shape or j.size == 0:
            raise ValueError(f"{name}: J {j.shape} and F {f.shape} must be equal and non-empty")
        self._objects[name] = (j.mean(axis=0), f.mean(axis=0))
        return self.sequence(name)

    def sequence(self, name: str) -> Score:
        j, f = self._objects[name]
        return Score(name, float(j.mean()), float(f.mean()), len(j))

    def sequences(self) -> list[Score]:
        return [self.sequence(name) for name in self._objects]

    def overall(self) -> Score:
        """Mean over all objects of all sequences added."""
        if not self._objects:
            raise ValueError("no sequence was scored")
        j = np.concatenate([jo for jo, _ in self._objects.values()])
        f = np.concatenate([fo for _, fo in self._objects.values()])
        return Score("overall", float(j.mean()), float(f.mean()), len(j))
