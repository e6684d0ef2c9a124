"""Clicks and their two encodings: the network's points tensor and BRS's click squares.

Coordinates are float (row y, column x) in whatever frame the caller is in (padded frame,
zoomed crop, ...). See clicks_fbrs.md §3.1 and §6 step 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

NET_CLICKS_LIMIT = 8  # the network sees only a session's first 8 clicks
SQUARE_RADIUS = 1  # BRS constrains a 3x3 square around every click


@dataclass(frozen=True)
class Click:
    """One click: row y, column x (floats), positive (foreground) or negative."""

    y: float
    x: float
    positive: bool

    def moved(self, y: float, x: float) -> Click:
        return Click(float(y), float(x), self.positive)


def points_tensor(
    clicks_lists: Sequence[Sequence[Click]],
    limit: int = NET_CLICKS_LIMIT,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(B, 2P, 2) float32 [positives..., negatives...] as (row, col), (-1, -1) padded.

    P = max(1, min(limit, largest positive or negative count over the batch)), counted before
    the first-`limit` cut, as the original does.
    """
    counts = [
        max(sum(c.positive for c in cl), sum(not c.positive for c in cl)) for cl in clicks_lists
    ]
    n = max(1, min(limit, max(counts, default=0)))
    out = np.full((len(clicks_lists), 2 * n, 2), -1.0, dtype=np.float64)
    for b, cl in enumerate(clicks_lists):
        head = list(cl[:limit])
        pos = [(c.y, c.x) for c in head if c.positive]
        neg = [(c.y, c.x) for c in head if not c.positive]
        if pos:
            out[b, : len(pos)] = pos
        if neg:
            out[b, n : n + len(neg)] = neg
    return torch.from_numpy(out.astype(np.float32)).to(device)


def click_squares(
    clicks: Sequence[Click], height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative (H, W) float32 maps with a 3x3 square of ones at every click.

    Centres are rounded half to even. The slices follow Python's rules on purpose, as in the
    original: a start of -1 or below wraps to the far edge, so a click on row or column 0 gives
    an empty square and a click at -5 marks rows H-6..H-4 (clicks_fbrs.md §6 step 3).
    """
    pos = np.zeros((height, width), dtype=np.float32)
    neg = np.zeros((height, width), dtype=np.float32)
    for click in clicks:
        y, x = round(click.y), round(click.x)
        target = pos if click.positive else neg
        r = slice(y - SQUARE_RADIUS, y + SQUARE_RADIUS + 1)
        c = slice(x - SQUARE_RADIUS, x + SQUARE_RADIUS + 1)
        target[r, c] = 1
    return pos, neg
