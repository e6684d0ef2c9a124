"""The click session: clicks accumulate on one (frame, object) and turn into a binary mask.

Mirrors how MiVOS drives f-BRS (clicks_fbrs.md §8): the first click of a session anchors the
frame and resets every state; each click re-predicts from all clicks; undo restores the state
from before the last click without recomputing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from model.fbrs.clicks import Click
from model.fbrs.network import FBRSNetwork
from model.fbrs.predictor import FBRSPredictor, PredictorState

PROB_THRESH = 0.5


@dataclass(frozen=True)
class _Step:
    """One click of the session, with what undo needs to go back to before it."""

    click: Click
    state_before: PredictorState
    prob: torch.Tensor  # (1,1,H,W) probability after this click


class ClickController:
    """Accumulates clicks for one session; a new frame/object (session key) starts afresh."""

    def __init__(self, net: FBRSNetwork, predictor: FBRSPredictor | None = None) -> None:
        self.net = net
        self.predictor = predictor or FBRSPredictor(net)
        self._image: torch.Tensor | None = None
        self._key: Hashable | None = None
        self._steps: list[_Step] = []

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def anchored(self) -> bool:
        return self._image is not None

    @property
    def clicks(self) -> list[Click]:
        """The session's clicks, oldest first, in padded-frame coordinates."""
        return [s.click for s in self._steps]

    def unanchor(self) -> None:
        """End the session: the next click starts a new one on the image it is given."""
        self._image = None
        self._key = None
        self._steps = []
        self.predictor.reset()

    def interact(
        self,
        image: torch.Tensor,
        x: float,
        y: float,
        positive: bool,
        key: Hashable | None = None,
        replay: Sequence[np.ndarray] | None = None,
        preview: Callable[[torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Add a click at padded coordinates (x, y); returns the binary mask (1,1,H,W).

        image: (1,3,H,W) normalised padded frame, used only when a session starts. `key` (e.g.
        (frame_idx, object)) starts a new session when it differs from the current one.
        preview: called with an early binary mask (1,1,H,W) where the predictor has one (a
        session's first click, about halfway; see model/fbrs/predictor.py).
        """
        if self.anchored and key is not None and key != self._key:
            self.unanchor()
        if not self.anchored:
            self.unanchor()
            self._image = image.to(self.device)
            self._key = key
        click = Click(float(y), float(x), bool(positive))
        before = self.predictor.get_state()
        early = None if preview is None else (lambda p: preview((p > PROB_THRESH).float()))
        prob = self.predictor.predict(self._image, [*self.clicks, click], replay, early)
        self._steps.append(_Step(click, before, prob))
        return (prob > PROB_THRESH).float()

    @property
    def prob(self) -> torch.Tensor | None:
        """The latest probability (1,1,H,W), or None before the first click."""
        return self._steps[-1].prob if self._steps else None

    def undo(self) -> torch.Tensor | None:
        """Forget the last click; returns the previous binary mask, or None if no click is left."""
        if not self._steps:
            return None
        step = self._steps.pop()
        self.predictor.set_state(step.state_before)
        return None if not self._steps else (self._steps[-1].prob > PROB_THRESH).float()
