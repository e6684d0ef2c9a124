"""Weight-free parts of an f-BRS parity scenario (shared/parity/FBRS.md §3.4-3.5).

Each function reads its inputs from the scenario and returns the arrays the reference names,
or nothing when the scenario does not hold that part: distance maps (dm*), click squares (cm_*),
the ZoomIn unit (zu_*) and the transform chain with a weight-free stand-in network (tc_*).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from model.fbrs.clicks import NET_CLICKS_LIMIT, Click, click_squares, points_tensor
from model.fbrs.distance_maps import distance_features, squared_distances
from model.fbrs.transforms import Box, TransformChain, ZoomIn, expand_box

Arrays = dict[str, np.ndarray]
NO_BOX = (-1, -1, -1, -1)


def clicks_from_rows(rows: np.ndarray) -> list[Click]:
    """N x 3 rows (y, x, positive) -> clicks."""
    return [Click(float(y), float(x), bool(p)) for y, x, p in np.asarray(rows).reshape(-1, 3)]


def click_rows(clicks: list[Click]) -> np.ndarray:
    return np.array([[c.y, c.x, float(c.positive)] for c in clicks], dtype=np.float64).reshape(
        -1, 3
    )


def box_array(box: Box | None) -> np.ndarray:
    return np.array(NO_BOX if box is None else box, dtype=np.int64)


def distance_map_units(sc: Mapping[str, np.ndarray]) -> Arrays:
    """dmI_dist (raw D) and dmI_feat (tanh(2 sqrt D)) from dmI_points and dmI_hw_norm."""
    out: Arrays = {}
    i = 0
    while f"dm{i}_points" in sc and f"dm{i}_hw_norm" in sc:
        h, w, norm = (float(v) for v in sc[f"dm{i}_hw_norm"])
        dist = squared_distances(sc[f"dm{i}_points"], int(h), int(w), norm)
        out[f"dm{i}_dist"] = dist
        out[f"dm{i}_feat"] = distance_features(dist).numpy()
        i += 1
    return out


def click_square_units(sc: Mapping[str, np.ndarray]) -> Arrays:
    if "cm_clicks" not in sc or "cm_hw" not in sc:
        return {}
    h, w = (int(v) for v in sc["cm_hw"])
    pos, neg = click_squares(clicks_from_rows(sc["cm_clicks"]), h, w)
    return {"cm_pos_np_masks": pos.astype(np.uint8), "cm_neg_np_masks": neg.astype(np.uint8)}


def _ramp(h: int, w: int) -> np.ndarray:
    # The reference's deterministic crop probability: 0.2 + 0.6 * (y/(h-1)) * (x/(w-1)).
    yy = (np.arange(h, dtype=np.float32) / np.float32(h - 1))[:, None]
    xx = (np.arange(w, dtype=np.float32) / np.float32(w - 1))[None, :]
    return (np.float32(0.2) + np.float32(0.6) * yy * xx).astype(np.float32)


def zoom_units(sc: Mapping[str, np.ndarray], frame: torch.Tensor) -> Arrays:
    """The ZoomIn class alone: ROI, crop, mapped clicks and the inverse of a ramp."""
    out: Arrays = {}
    zoom = ZoomIn()
    frame_hw = (int(frame.shape[-2]), int(frame.shape[-1]))
    if "zu_boxes_in" in sc:
        boxes = [
            expand_box(tuple(int(v) for v in b), *frame_hw, 1.4, 200) for b in sc["zu_boxes_in"]
        ]
        out["zu_boxes_roi"] = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    if "zu_prev_prob" not in sc or "zu_clicks" not in sc:
        return out
    zoom.state.prev_prob = torch.from_numpy(np.asarray(sc["zu_prev_prob"], np.float32))[None, None]
    crop, lists = zoom.forward(frame.cpu(), [clicks_from_rows(sc["zu_clicks"])])
    out["zu_roi"] = box_array(zoom.state.roi)
    out["zu_roi_image_ch0"] = crop[0, 0].numpy()
    out["zu_tclicks"] = click_rows(lists[0])
    ramp = sc["zu_fake_crop_prob"] if "zu_fake_crop_prob" in sc else _ramp(*crop.shape[-2:])
    out["zu_fake_crop_prob"] = np.asarray(ramp, dtype=np.float32)
    inv = zoom.inverse(torch.from_numpy(out["zu_fake_crop_prob"])[None, None])
    out["zu_inv_prob"] = inv[0, 0].numpy()
    return out


def standin_logits(batch: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """FBRS.md §3.5's weight-free network: 6 - 0.05 * distance to the copy's first point
    + 0.5 * input channel 0, in float32. batch (B,3,h,w), points (B,2P,2) -> (B,1,h,w)."""
    h, w = batch.shape[-2:]
    yy = torch.arange(h, dtype=torch.float32, device=batch.device)[:, None]
    xx = torch.arange(w, dtype=torch.float32, device=batch.device)[None, :]
    out = []
    for b in range(batch.shape[0]):
        py, px = points[b, 0, 0], points[b, 0, 1]
        dist = torch.sqrt((yy - py) ** 2 + (xx - px) ** 2)
        out.append(6 - 0.05 * dist + 0.5 * batch[b, 0].float())
    return torch.stack(out)[:, None]


def transform_chain_units(sc: Mapping[str, np.ndarray], frame: torch.Tensor) -> Arrays:
    """The transform chain around the stand-in network, one session of tc_clicks."""
    if "tc_clicks" not in sc:
        return {}
    clicks = clicks_from_rows(sc["tc_clicks"])
    chain = TransformChain()
    probs, zoom_rois, limit_rois, sizes = [], [], [], []
    out: Arrays = {"tc_clicks": click_rows(clicks)}
    for k in range(len(clicks)):
        batch, lists, _ = chain.forward(frame.cpu(), clicks[: k + 1])
        points = points_tensor(lists, NET_CLICKS_LIMIT)
        prob = chain.inverse(standin_logits(batch, points))
        probs.append(prob[0, 0].numpy())
        zoom_rois.append(box_array(chain.zoom.state.roi))
        limit_rois.append(box_array(chain.limit.state.roi))
        sizes.append(batch.shape[-2:])
        out[f"tc_net_points_k{k}"] = points.numpy()
    out["tc_prob"] = np.stack(probs).astype(np.float32)
    out["tc_zoom_roi"] = np.stack(zoom_rois)
    out["tc_limit_roi"] = np.stack(limit_rois)
    out["tc_net_input_hw"] = np.array(sizes, dtype=np.int64).reshape(-1, 2)
    return out
