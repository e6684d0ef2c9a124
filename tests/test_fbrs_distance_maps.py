"""f-BRS click encodings: the flood-fill distance maps, the points tensor and the click squares."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from model.fbrs.clicks import Click, click_squares, points_tensor
from model.fbrs.distance_maps import distance_features, squared_distances
from tests.shared_assets import require


def _queue_flood(points: np.ndarray, h: int, w: int, norm: float) -> np.ndarray:
    """A literal FIFO transcription of clicks_fbrs.md §3.2, slow but obviously right."""
    dist = np.full((2, h, w), 1e6, dtype=np.float32)
    half = len(points) // 2
    queue = deque()
    for i, (row, col) in enumerate(np.asarray(points, dtype=np.float32)):
        r, c = round(float(row)), round(float(col))
        if r < 0:
            continue
        layer = 0 if i < half else 1
        if 0 <= r < h and 0 <= c < w:
            dist[layer, r, c] = 0
        queue.append((r, c, layer, r, c))
    n = np.float32(norm)
    while queue:
        r, c, layer, r0, c0 = queue.popleft()
        for nr, nc in ((r - 1, c), (r, c - 1), (r, c + 1), (r + 1, c)):
            if not (0 <= nr < h and 0 <= nc < w):
                continue
            dr, dc = np.float32(nr - r0) / n, np.float32(nc - c0) / n
            d = dr * dr + dc * dc
            if dist[layer, nr, nc] > d:
                dist[layer, nr, nc] = d
                queue.append((nr, nc, layer, r0, c0))
    return dist


@pytest.mark.parametrize("i", [0, 1, 2])
def test_matches_reference_vectors(i):
    ref = np.load(require("parity/fbrs_P1.npz"))
    h, w, norm = ref[f"dm{i}_hw_norm"]
    dist = squared_distances(ref[f"dm{i}_points"], int(h), int(w), float(norm))
    np.testing.assert_array_equal(dist, ref[f"dm{i}_dist"])  # bit for bit, BFS quirks included
    feat = distance_features(dist).numpy()
    np.testing.assert_allclose(feat, ref[f"dm{i}_feat"], rtol=0, atol=1e-6)


def test_flood_equals_literal_queue_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(25):
        h, w = int(rng.integers(5, 30)), int(rng.integers(5, 30))
        n = int(rng.integers(1, 5))
        pts = np.stack([rng.uniform(-1.4, h + 0.4, 2 * n), rng.uniform(-1.4, w + 0.4, 2 * n)], 1)
        pts[rng.random(2 * n) < 0.2] = -1  # padding entries
        pts = pts.astype(np.float32)
        norm = float(rng.choice([3.0, 10.0, 260.0]))
        np.testing.assert_array_equal(
            squared_distances(pts, h, w, norm), _queue_flood(pts, h, w, norm)
        )


def test_single_click_is_the_exact_formula():
    dist = squared_distances(np.array([[2, 3], [-1, -1]], np.float32), 5, 6, 10.0)
    assert dist[0, 2, 3] == 0
    assert dist[0, 0, 0] == np.float32(0.2) ** 2 + np.float32(0.3) ** 2
    assert (dist[1] == 1e6).all()  # no negative click: the layer is "infinitely far"
    feat = distance_features(dist)
    assert feat[0, 2, 3] == 0 and torch.all(feat[1] == 1)


def test_rounds_halves_to_even():
    # (2.5, 3.5) is seeded at (2, 4), not (3, 4): Python's round.
    dist = squared_distances(np.array([[2.5, 3.5], [-1, -1]], np.float32), 6, 8, 1.0)
    assert dist[0, 2, 4] == 0 and dist[0, 3, 4] == 1


def test_batch_of_points_maps_each_entry():
    pts = np.array([[[1, 1], [-1, -1]], [[-1, -1], [3, 2]]], np.float32)
    dist = squared_distances(pts, 5, 5, 1.0)
    assert dist.shape == (2, 2, 5, 5)
    assert dist[0, 0, 1, 1] == 0 and dist[1, 1, 3, 2] == 0 and (dist[1, 0] == 1e6).all()


def test_points_tensor_pads_and_limits():
    clicks = [Click(1.0, 2.0, True), Click(3.0, 4.0, False), Click(5.0, 6.0, True)]
    pts = points_tensor([clicks])
    assert pts.dtype == torch.float32 and pts.shape == (1, 4, 2)
    assert pts[0].tolist() == [[1, 2], [5, 6], [3, 4], [-1, -1]]
    # P counts all clicks but the network sees only the first 8.
    many = [Click(float(i), float(i), True) for i in range(10)]
    assert points_tensor([many]).shape == (1, 16, 2)
    assert points_tensor([[]]).shape == (1, 2, 2)


def test_click_squares_follow_python_slicing():
    pos, neg = click_squares([Click(5.0, 5.0, True), Click(0.0, 3.0, False)], 10, 12)
    assert pos.sum() == 9 and pos[4:7, 4:7].all()
    assert neg.sum() == 0  # row 0: the slice starts at -1 and is empty, as in the original
    wrapped, _ = click_squares([Click(-5.0, 4.0, True)], 20, 30)
    assert wrapped[14:17, 3:6].all() and wrapped.sum() == 9


def test_click_squares_against_reference():
    ref = np.load(require("parity/fbrs_P1.npz"))
    clicks = [Click(float(y), float(x), bool(p)) for y, x, p in ref["cm_clicks"]]
    pos, neg = click_squares(clicks, *(int(v) for v in ref["cm_hw"]))
    np.testing.assert_array_equal(pos.astype(np.uint8), ref["cm_pos_np_masks"])
    np.testing.assert_array_equal(neg.astype(np.uint8), ref["cm_neg_np_masks"])
