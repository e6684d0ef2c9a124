"""Click distance maps as the original's CPU variant computes them (clicks_fbrs.md §3.2).

The original does not compute an exact distance transform: it floods the image from the seeds
with a FIFO breadth-first propagation that carries each seed's origin along, so a pixel can keep
a slightly larger value than the exact minimum near the boundary between two seeds. We reproduce
that flood bit for bit, but vectorised one BFS level at a time: the FIFO queue always holds one
level followed by the next, so processing a whole level at once in queue order is equivalent.
"""

from __future__ import annotations

import numpy as np
import torch

UNREACHED = np.float32(1e6)
# Neighbour order of the original flood: up, left, right, down.
_DR = np.array([-1, 0, 0, 1], dtype=np.int64)
_DC = np.array([0, -1, 1, 0], dtype=np.int64)


def _seeds(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """points (L, 2P, 2) -> seed rows, cols, layer ids (in queue order)."""
    layers, n, _ = points.shape
    half = n // 2
    # np.rint rounds halves to even, as Python's round does on the float32 coordinates.
    rows = np.rint(points[..., 0].astype(np.float64)).astype(np.int64)
    cols = np.rint(points[..., 1].astype(np.float64)).astype(np.int64)
    layer = np.arange(layers)[:, None] * 2 + (np.arange(n)[None, :] >= half)
    keep = rows >= 0  # only the row marks padding (-1, -1); the column is not tested
    return rows[keep], cols[keep], layer[keep]


def _ranks(flat: np.ndarray) -> np.ndarray:
    """Occurrence index of each value among the earlier equal values (0 for the first)."""
    order = np.argsort(flat, kind="stable")
    s = flat[order]
    start = np.ones(len(s), dtype=bool)
    start[1:] = s[1:] != s[:-1]
    pos = np.arange(len(s))
    first = np.maximum.accumulate(np.where(start, pos, 0))
    ranks = np.empty_like(pos)
    ranks[order] = pos - first
    return ranks


def _flood(points: np.ndarray, height: int, width: int, norm: float) -> np.ndarray:
    """Squared normalised distances (2L, H, W) float32 for points (L, 2P, 2)."""
    n_layers = 2 * points.shape[0]
    dist = np.full(n_layers * height * width, UNREACHED, dtype=np.float32)
    norm32 = np.float32(norm)
    rows, cols, layer = _seeds(points)
    inside = (rows < height) & (cols >= 0) & (cols < width)
    # Out-of-frame seeds still spread to in-frame neighbours; their own write is clipped.
    dist[((layer * height + rows) * width + cols)[inside]] = 0
    r, c, lay, r0, c0 = rows, cols, layer, rows, cols
    while len(r):
        nr = (r[:, None] + _DR).ravel()
        nc = (c[:, None] + _DC).ravel()
        lay, r0, c0 = (np.repeat(a, 4) for a in (lay, r0, c0))
        valid = (nr >= 0) & (nr < height) & (nc >= 0) & (nc < width)
        nr, nc, lay, r0, c0 = nr[valid], nc[valid], lay[valid], r0[valid], c0[valid]
        dr = (nr - r0).astype(np.float32) / norm32
        dc = (nc - c0).astype(np.float32) / norm32
        d = dr * dr + dc * dc
        flat = (lay * height + nr) * width + nc
        improved = np.zeros(len(flat), dtype=bool)
        ranks = _ranks(flat) if len(flat) else flat
        # Within a level, the k-th candidate for a pixel sees the writes of the k-1 before it.
        for k in range(int(ranks.max()) + 1 if len(ranks) else 0):
            sel = np.flatnonzero(ranks == k)
            better = dist[flat[sel]] > d[sel]
            hit = sel[better]
            dist[flat[hit]] = d[hit]
            improved[hit] = True
        r, c, lay, r0, c0 = nr[improved], nc[improved], lay[improved], r0[improved], c0[improved]
    return dist.reshape(n_layers, height, width)


def _single_seed_layers(points: np.ndarray, height: int, width: int) -> bool:
    rows, cols, layer = _seeds(points)
    inside = (rows < height) & (cols >= 0) & (cols < width)
    counts = np.bincount(layer, minlength=2 * points.shape[0])
    return bool(inside.all()) and bool((counts <= 1).all())


def _exact_single(points: np.ndarray, height: int, width: int, norm: float) -> np.ndarray:
    # With at most one in-frame seed per layer the flood writes exactly this formula everywhere.
    n_layers = 2 * points.shape[0]
    dist = np.full((n_layers, height, width), UNREACHED, dtype=np.float32)
    norm32 = np.float32(norm)
    rows, cols, layer = _seeds(points)
    for r, c, lay in zip(rows, cols, layer, strict=True):
        dr = (np.arange(height, dtype=np.int64) - r).astype(np.float32) / norm32
        dc = (np.arange(width, dtype=np.int64) - c).astype(np.float32) / norm32
        dist[lay] = (dr * dr)[:, None] + (dc * dc)[None, :]
    return dist


def squared_distances(points: np.ndarray, height: int, width: int, norm: float) -> np.ndarray:
    """Raw maps D: points (2P,2) or (B,2P,2) float32 (row, col), the first P positive and
    (-1,-1) for padding -> (2,H,W) or (B,2,H,W) float32, 1e6 where a layer has no seed."""
    pts = np.asarray(points, dtype=np.float32)
    batched = pts.ndim == 3
    pts = pts if batched else pts[None]
    if _single_seed_layers(pts, height, width):
        dist = _exact_single(pts, height, width, norm)
    else:
        dist = _flood(pts, height, width, norm)
    dist = dist.reshape(pts.shape[0], 2, height, width)
    return dist if batched else dist[0]


def distance_features(dist: np.ndarray | torch.Tensor) -> torch.Tensor:
    """tanh(2 sqrt(D)) in float32: 0 at a click, ~0.96 at norm pixels, 1 with no click."""
    d = torch.as_tensor(dist, dtype=torch.float32)
    return torch.tanh(2 * torch.sqrt(d))


def click_maps(points: torch.Tensor, height: int, width: int, norm: float) -> torch.Tensor:
    """Points tensor (B,2P,2) -> network click features (B,2,H,W) on the points' device."""
    dist = squared_distances(points.detach().cpu().numpy(), height, width, norm)
    return distance_features(dist).to(points.device)
