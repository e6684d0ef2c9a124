"""Strokes (what a person drew) and their rasterisation, as the original draws them."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class Stroke:
    """One press-drag-release: label 0 = background, k = object k; points (x, y) in frame pixels."""

    label: int
    points: list[tuple[float, float]] = field(default_factory=list)
    thickness: int = 3


def _pixel(point: tuple[float, float]) -> tuple[int, int]:
    # Python's round (half to even) on float mouse positions, as the original.
    return int(round(point[0])), int(round(point[1]))


def draw_segments(canvas: np.ndarray, points, value: float, thickness: int) -> None:
    """Draw straight 8-connected segments between consecutive points into `canvas` in place.

    A single point draws nothing: a click without motion has two points (press and release).
    """
    for p0, p1 in zip(points[:-1], points[1:], strict=True):
        cv2.line(canvas, _pixel(p0), _pixel(p1), value, thickness=thickness)


def draw_last_segment(canvas: np.ndarray, stroke: Stroke, value: float) -> None:
    """Draw only the newest segment of a stroke (incremental drawing while the mouse moves)."""
    if len(stroke.points) >= 2:
        draw_segments(canvas, stroke.points[-2:], value, stroke.thickness)
