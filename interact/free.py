"""The free-hand interaction: brush strokes paint one object's probability directly."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from interact.strokes import Stroke, draw_last_segment, draw_segments
from model.aggregate import aggregate_sbg
from util.tensor_util import Pad


class FreeInteraction:
    """Paints into a copy of the frame's soft masks (K,1,h0,w0, unpadded).

    Painting object k sets p_k = 1 and every other p = 0 under the brush; label 0 sets all to 0.
    """

    def __init__(self, prev_prob: np.ndarray, pad: Pad) -> None:
        self.prev_prob = np.array(prev_prob, dtype=np.float32)
        self.num_objects = self.prev_prob.shape[0]
        self.pad = pad
        self.strokes: list[Stroke] = []
        self._drawn = self.prev_prob.copy()

    def start_stroke(self, label: int, x: float, y: float, brush: int) -> None:
        self.strokes.append(Stroke(label, [(x, y)], max(1, int(brush))))

    def extend_stroke(self, x: float, y: float) -> None:
        stroke = self.strokes[-1]
        stroke.points.append((x, y))
        for i in range(self.num_objects):
            draw_last_segment(self._drawn[i, 0], stroke, 1.0 if stroke.label == i + 1 else 0.0)

    def add_stroke(self, label: int, points, brush: int) -> None:
        (x, y), *rest = points
        self.start_stroke(label, x, y, brush)
        for x, y in rest:
            self.extend_stroke(x, y)

    def _paint(self, stroke: Stroke) -> None:
        for i in range(self.num_objects):
            value = 1.0 if stroke.label == i + 1 else 0.0
            draw_segments(self._drawn[i, 0], stroke.points, value, stroke.thickness)

    def undo(self) -> Stroke | None:
        """Remove and return the last stroke (None when there is none)."""
        if not self.strokes:
            return None
        stroke = self.strokes.pop()
        self._drawn = self.prev_prob.copy()
        for kept in self.strokes:
            self._paint(kept)
        return stroke

    def append_stroke(self, stroke: Stroke) -> None:
        """Put back a whole stroke (redo)."""
        self.strokes.append(stroke)
        self._paint(stroke)

    def drawn_map(self) -> np.ndarray:
        """(K,1,h0,w0) float32: the painted soft masks, unpadded."""
        return self._drawn.copy()

    def predict(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(K+1,1,H,W): padded, soft aggregation with the background fixed at 0.5."""
        drawn = F.pad(torch.from_numpy(self._drawn).to(device), self.pad)
        return aggregate_sbg(drawn, keep_bg=True)
