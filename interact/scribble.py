"""The scribble interaction: strokes per object -> S2M -> the frame's new probabilities."""

from __future__ import annotations

import numpy as np
import torch

from interact.s2m_controller import NO_SCRIBBLE, scribble_logits
from interact.strokes import Stroke, draw_last_segment, draw_segments
from model.aggregate import aggregate_wbg
from model.s2m import S2MNetwork

SCRIBBLE_THICKNESS = 3


class ScribbleInteraction:
    """Scribbles on one frame, all re-evaluated together against a frozen previous mask.

    frame_size: unpadded (h0, w0); prev_mask: padded (H, W) index mask at creation.
    """

    def __init__(self, frame_size: tuple[int, int], num_objects: int, prev_mask: np.ndarray):
        self.frame_size = frame_size
        self.num_objects = num_objects
        self.prev_mask = np.asarray(prev_mask, dtype=np.uint8).copy()
        self.strokes: list[Stroke] = []
        self._canvas = np.full(frame_size, NO_SCRIBBLE, dtype=np.uint8)
        self.logits: torch.Tensor | None = None
        self.prob: torch.Tensor | None = None  # (K,1,H,W) S2M sigmoid, before aggregation

    def start_stroke(self, label: int, x: float, y: float) -> None:
        self.strokes.append(Stroke(label, [(x, y)], SCRIBBLE_THICKNESS))

    def extend_stroke(self, x: float, y: float) -> None:
        stroke = self.strokes[-1]
        stroke.points.append((x, y))
        draw_last_segment(self._canvas, stroke, stroke.label)

    def add_stroke(self, label: int, points) -> None:
        """A whole stroke at once (replays, tests)."""
        (x, y), *rest = points
        self.start_stroke(label, x, y)
        for x, y in rest:
            self.extend_stroke(x, y)

    def undo(self) -> Stroke | None:
        """Remove and return the last stroke (None when there is none)."""
        if not self.strokes:
            return None
        stroke = self.strokes.pop()
        self._canvas.fill(NO_SCRIBBLE)
        for kept in self.strokes:
            draw_segments(self._canvas, kept.points, kept.label, kept.thickness)
        return stroke

    def append_stroke(self, stroke: Stroke) -> None:
        """Put back a whole stroke (redo)."""
        self.strokes.append(stroke)
        draw_segments(self._canvas, stroke.points, stroke.label, stroke.thickness)

    def scribble_map(self) -> np.ndarray:
        """(h0, w0) uint8: 255 where nothing is drawn, else the label of the last stroke there."""
        return self._canvas.copy()

    def predict(self, s2m: S2MNetwork, image: torch.Tensor) -> torch.Tensor:
        """The frame's new probabilities (K+1,1,H,W), hard-aggregated as the original does."""
        prev = torch.from_numpy(self.prev_mask)
        self.logits = scribble_logits(s2m, image, prev, self._canvas, self.num_objects)
        self.prob = torch.sigmoid(self.logits)
        return aggregate_wbg(self.prob, keep_bg=True, hard=True)
