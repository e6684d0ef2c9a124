"""The transforms around the click network and their inverses (clicks_fbrs.md §5).

Applied in the order ZoomIn -> LimitLongestSide -> (sigmoid) -> horizontal flip and inverted in
reverse. ZoomIn and LimitLongestSide are stateful; their state is a small dataclass so the
controller can snapshot it for undo. Boxes are (r0, r1, c0, c1), inclusive.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from model.fbrs.clicks import Click

Box = tuple[int, int, int, int]
ClickLists = list[list[Click]]


def resize_ac(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with align_corners=True, as every resize of this path."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def fit_longest_side(height: int, width: int, target: int) -> tuple[int, int]:
    """Size whose longer side is `target`; the other side is rounded half to even."""
    # Scale first, then multiply, as the original computes it: in rare exact-half cases
    # (e.g. 319 x 704 -> 217.5) this can round differently from side * target / longer.
    scale = target / max(height, width)
    return round(height * scale), round(width * scale)


def box_of_mask(mask: np.ndarray) -> Box:
    """Inclusive bounding box of the True pixels of a non-empty (H, W) mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def expand_box(box: Box, height: int, width: int, ratio: float, min_size: int) -> Box:
    """Grow a box about its centre by `ratio` (at least `min_size` per side), then clamp."""
    r0, r1, c0, c1 = box
    cy, cx = (r0 + r1) / 2, (c0 + c1) / 2
    h = max((r1 - r0 + 1) * ratio, min_size)
    w = max((c1 - c0 + 1) * ratio, min_size)
    nr0, nr1 = int(round(cy - h / 2)), int(round(cy + h / 2))
    nc0, nc1 = int(round(cx - w / 2)), int(round(cx + w / 2))
    return max(0, nr0), min(height - 1, nr1), max(0, nc0), min(width - 1, nc1)


def _interval_iou(a0: int, a1: int, b0: int, b1: int) -> float:
    inter = max(0, min(a1, b1) - max(a0, b0) + 1)
    hull = max(1e-6, max(a1, b1) - min(a0, b0) + 1)
    return inter / hull


def box_iou(a: Box, b: Box) -> float:
    """Product of the row and column interval IoUs (inclusive lengths)."""
    return _interval_iou(a[0], a[1], b[0], b[1]) * _interval_iou(a[2], a[3], b[2], b[3])


def map_clicks(clicks: Sequence[Click], box: Box, out_hw: tuple[int, int]) -> list[Click]:
    """Frame coordinates -> coordinates in the box resized to out_hw (the original's formula,
    which is not exactly the align-corners mapping; reproduced as written)."""
    r0, r1, c0, c1 = box
    h, w = out_hw
    return [c.moved(h * (c.y - r0) / (r1 - r0 + 1), w * (c.x - c0) / (c1 - c0 + 1)) for c in clicks]


def crop_resize(image: torch.Tensor, box: Box, out_hw: tuple[int, int]) -> torch.Tensor:
    r0, r1, c0, c1 = box
    return resize_ac(image[..., r0 : r1 + 1, c0 : c1 + 1], out_hw)


def paste_back(prob: torch.Tensor, box: Box, frame_hw: tuple[int, int]) -> torch.Tensor:
    """Resize prob (1,1,h,w) to the box and paste it into zeros of frame_hw."""
    r0, r1, c0, c1 = box
    out = prob.new_zeros((*prob.shape[:-2], *frame_hw))
    out[..., r0 : r1 + 1, c0 : c1 + 1] = resize_ac(prob, (r1 - r0 + 1, c1 - c0 + 1))
    return out


@dataclass
class ZoomState:
    """What ZoomIn remembers between clicks (restored wholesale on undo)."""

    roi: Box | None = None
    roi_image: torch.Tensor | None = None  # (1,3,h',w') the resized crop
    prev_prob: torch.Tensor | None = None  # (1,1,H,W) the last full-frame probability
    frame_hw: tuple[int, int] | None = None


class ZoomIn:
    """Crop around the previous mask and the positive clicks, enlarged to `target_size`."""

    def __init__(
        self,
        skip_clicks: int = 1,
        target_size: int = 480,
        expansion_ratio: float = 1.4,
        min_crop_size: int = 200,
        recompute_iou: float = 0.5,
        prob_thresh: float = 0.5,
    ) -> None:
        self.skip_clicks = skip_clicks
        self.target_size = target_size
        self.expansion_ratio = expansion_ratio
        self.min_crop_size = min_crop_size
        self.recompute_iou = recompute_iou
        self.prob_thresh = prob_thresh
        self.state = ZoomState()
        self.image_changed = False
        self.input_roi: Box | None = None  # the crop the last forward returned (None: frame)

    def reset(self) -> None:
        self.state = ZoomState()

    def candidate_roi(self, clicks: Sequence[Click], frame_hw: tuple[int, int]) -> Box | None:
        """The box the previous mask and the positive clicks ask for (None: empty mask)."""
        mask = (self.state.prev_prob[0, 0] > self.prob_thresh).cpu().numpy()
        if not mask.any():
            return None
        h, w = frame_hw
        for c in clicks:
            # int() truncates, unlike every other consumer of click coordinates.
            if c.positive and -h <= int(c.y) < h and -w <= int(c.x) < w:
                mask[int(c.y), int(c.x)] = True
        box = box_of_mask(mask)
        return expand_box(box, h, w, self.expansion_ratio, self.min_crop_size)

    def _keeps(self, box: Box, clicks: Sequence[Click]) -> bool:
        roi = self.state.roi
        if roi is None:
            return False
        r0, r1, c0, c1 = roi
        # The last row and column of the stored box count as outside.
        for c in clicks:
            if c.positive and (c.y < r0 or c.y >= r1 or c.x < c0 or c.x >= c1):
                return False
        return box_iou(box, roi) >= self.recompute_iou

    def forward(self, image: torch.Tensor, clicks_lists: ClickLists):
        """(1,3,H,W) frame -> crop (or the frame itself) and the clicks mapped into it."""
        self.image_changed = False
        self.input_roi = None
        clicks = clicks_lists[0]
        frame_hw = (int(image.shape[-2]), int(image.shape[-1]))
        self.state.frame_hw = frame_hw
        if len(clicks) <= self.skip_clicks or self.state.prev_prob is None:
            return image, clicks_lists
        box = self.candidate_roi(clicks, frame_hw)
        if box is None:
            # Nothing to zoom on; a stored ROI still applies at the inverse (spec §7).
            return image, clicks_lists
        if not self._keeps(box, clicks):
            r0, r1, c0, c1 = box
            out_hw = fit_longest_side(r1 - r0 + 1, c1 - c0 + 1, self.target_size)
            self.state.roi = box
            self.state.roi_image = crop_resize(image, box, out_hw)
            self.image_changed = True
        crop = self.state.roi_image
        self.input_roi = self.state.roi
        out_hw = (int(crop.shape[-2]), int(crop.shape[-1]))
        return crop, [map_clicks(cl, self.state.roi, out_hw) for cl in clicks_lists]

    def inverse(self, prob: torch.Tensor) -> torch.Tensor:
        """(1,1,h',w') probability -> (1,1,H,W); remembered as the next click's previous mask."""
        if self.state.roi is not None:
            prob = paste_back(prob, self.state.roi, self.state.frame_hw)
        self.state.prev_prob = prob
        return prob


@dataclass
class LimitState:
    roi: Box | None = None  # set once the transform has fired, then kept (spec §5.3)
    frame_hw: tuple[int, int] | None = None


class LimitLongestSide:
    """Shrink inputs longer than `max_size`. Its state goes stale on purpose (spec §5.3)."""

    def __init__(self, max_size: int = 800) -> None:
        self.max_size = max_size
        self.state = LimitState()
        self.image_changed = False

    def reset(self) -> None:
        self.state = LimitState()

    def forward(self, image: torch.Tensor, clicks_lists: ClickLists):
        self.image_changed = False
        h, w = int(image.shape[-2]), int(image.shape[-1])
        if max(h, w) <= self.max_size:
            return image, clicks_lists  # state untouched, even a stale ROI
        box = (0, h - 1, 0, w - 1)
        out_hw = fit_longest_side(h, w, self.max_size)
        self.state = LimitState(box, (h, w))
        self.image_changed = True
        return resize_ac(image, out_hw), [map_clicks(cl, box, out_hw) for cl in clicks_lists]

    def inverse(self, prob: torch.Tensor) -> torch.Tensor:
        if self.state.roi is None:
            return prob
        return paste_back(prob, self.state.roi, self.state.frame_hw)


def flip_forward(image: torch.Tensor, clicks_lists: ClickLists):
    """Batch [x, mirror(x)]; mirrored clicks use x' = w' - 1 - x."""
    width = image.shape[-1]
    flipped = [[c.moved(c.y, width - 1 - c.x) for c in cl] for cl in clicks_lists]
    return torch.cat([image, image.flip(-1)], dim=0), clicks_lists + flipped


def flip_inverse(logits: torch.Tensor) -> torch.Tensor:
    """(2,1,h,w) logits -> (1,1,h,w): the copies are averaged as logits, before the sigmoid."""
    return 0.5 * (logits[:1] + logits[1:].flip(-1))


@dataclass
class ChainState:
    zoom: ZoomState
    limit: LimitState


class TransformChain:
    """ZoomIn -> LimitLongestSide -> sigmoid -> flip, with MiVOS' settings.

    flip=False leaves out the mirrored copy (f-BRS's own `with_flip=False` option): one
    network input instead of two, half a click's backbone time, for the fast mode (README,
    Speed); MiVOS, and the fp32 default, use the flip."""

    def __init__(
        self,
        zoom: ZoomIn | None = None,
        limit: LimitLongestSide | None = None,
        flip: bool = True,
    ) -> None:
        self.zoom = zoom or ZoomIn()
        self.limit = limit or LimitLongestSide()
        self.flip = flip

    def reset(self) -> None:
        self.zoom.reset()
        self.limit.reset()

    def get_state(self) -> ChainState:
        # Tensors in the state are replaced, never written in place, so a shallow copy suffices.
        return ChainState(copy.copy(self.zoom.state), copy.copy(self.limit.state))

    def set_state(self, state: ChainState) -> None:
        self.zoom.state = copy.copy(state.zoom)
        self.limit.state = copy.copy(state.limit)

    def forward(self, image: torch.Tensor, clicks: Sequence[Click]):
        """Frame (1,3,H,W) + clicks -> (network batch (B,3,h',w'), click lists, image
        changed); B = 2 with the flip (image and mirror), else 1."""
        x, lists = self.zoom.forward(image, [list(clicks)])
        x, lists = self.limit.forward(x, lists)
        if self.flip:
            x, lists = flip_forward(x, lists)
        return x, lists, self.zoom.image_changed or self.limit.image_changed

    def inverse(self, logits: torch.Tensor) -> torch.Tensor:
        """Network logits (B,1,h',w') as forward's batch -> full-frame probability (1,1,H,W)."""
        prob = torch.sigmoid(flip_inverse(logits) if logits.shape[0] == 2 else logits)
        return self.zoom.inverse(self.limit.inverse(prob))
