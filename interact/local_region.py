"""Local control: edit a zoomed-in box of a frame at the box's native resolution.

The networks run on the crop alone (its own padding), so small objects get all of S2M's
resolution. Finishing pastes the crop's result back; pixels outside the box never change.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from interact.frame_editor import FrameEditor, Mode
from model.fbrs.controller import ClickController
from model.s2m import S2MNetwork
from util.tensor_util import Pad, pad_amounts

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 in unpadded frame pixels, exclusive ends


def clamp_box(x0: float, y0: float, x1: float, y1: float, size: tuple[int, int]) -> Box | None:
    """Two corners (any order, floats) -> an integer box inside the frame, or None if degenerate."""
    h, w = size
    left, right = sorted((int(round(x0)), int(round(x1))))
    top, bottom = sorted((int(round(y0)), int(round(y1))))
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right + 1, w), min(bottom + 1, h)  # inclusive corners
    if right - left < 4 or bottom - top < 4:
        return None
    return top, bottom, left, right


class LocalRegion:
    """One box on one frame, with its own interactions and undo history."""

    def __init__(
        self,
        frame: int,
        box: Box,
        full_prob: np.ndarray,
        frame_pad: Pad,
        s2m: S2MNetwork | None,
        clicker: ClickController | None = None,
    ) -> None:
        self.frame = frame
        self.box = box
        self.frame_pad = frame_pad
        y0, y1, x0, x1 = box
        self.size = (y1 - y0, x1 - x0)
        self.pad = pad_amounts(*self.size)
        left, _, top, _ = frame_pad
        crop = full_prob[:, top + y0 : top + y1, left + x0 : left + x1]
        self._base = self._pad_prob(crop)
        self.editor = FrameEditor(full_prob.shape[0] - 1, self.size, self.pad, s2m, clicker=clicker)

    def _pad_prob(self, crop: np.ndarray) -> np.ndarray:
        padded = F.pad(torch.from_numpy(np.ascontiguousarray(crop)), self.pad).numpy()
        left, right, top, bottom = self.pad
        h, w = padded.shape[1:]
        outside = np.ones((h, w), bool)
        outside[top : h - bottom, left : w - right] = False
        padded[0][outside] = 1.0  # padding is background
        return padded

    def crop_image(self, frame_rgb: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = self.box
        return np.ascontiguousarray(frame_rgb[y0:y1, x0:x1])

    def current(self) -> np.ndarray:
        """(K+1, h, w) padded probabilities of the crop."""
        return self.editor.current(0, self._base)

    def labels(self) -> np.ndarray:
        """(h, w) unpadded labels of the crop, for display."""
        left, right, top, bottom = self.pad
        prob = self.current()
        h, w = prob.shape[1:]
        return prob[:, top : h - bottom, left : w - right].argmax(0).astype(np.uint8)

    def stroke(self, mode: Mode, label: int, points, brush: int, image: torch.Tensor) -> None:
        """image: the crop, normalised and padded (1,3,h',w')."""
        self.editor.stroke(0, mode, label, points, brush, image, self._base)

    def click(self, x: float, y: float, positive: bool, target: int, image: torch.Tensor) -> None:
        """A click in crop coordinates; f-BRS runs on the crop with the crop's own padding."""
        self.editor.click(0, x, y, positive, target, image, self._base)

    def undo(self) -> bool:
        return self.editor.undo(0, self._base) is not None

    def redo(self) -> bool:
        return self.editor.redo(0, self._base) is not None

    def merged(self, full_prob: np.ndarray) -> np.ndarray:
        """full_prob with the box replaced by the crop's result."""
        left, right, top, bottom = self.pad
        local = self.current()
        h, w = local.shape[1:]
        y0, y1, x0, x1 = self.box
        fl, _, ft, _ = self.frame_pad
        out = full_prob.copy()
        out[:, ft + y0 : ft + y1, fl + x0 : fl + x1] = local[:, top : h - bottom, left : w - right]
        return out
