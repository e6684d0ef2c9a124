"""The click interaction: f-BRS clicks on one object of one frame -> the frame's probabilities.

As the original (inference.md §11, clicks_fbrs.md §8): the interaction starts from the frame's
previous soft probabilities of all K objects, replaces the target object's channel with the
binary f-BRS mask after every click, and aggregates with the fixed-0.5-background rule, hard.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from model.aggregate import aggregate_sbg
from model.fbrs.clicks import Click
from model.fbrs.controller import ClickController
from util.tensor_util import Pad


def merge_click_mask(
    prev_prob: torch.Tensor, target_object: int, mask: torch.Tensor
) -> torch.Tensor:
    """prev_prob (K,1,H,W) soft, mask (1,1,H,W) binary -> (K+1,1,H,W): the target's channel
    replaced by the mask, then hard aggregation with the background fixed at 0.5."""
    prob = prev_prob.to(mask.device, torch.float32).clone()
    prob[target_object - 1] = mask[0]
    return aggregate_sbg(prob, keep_bg=True, hard=True)


class ClickInteraction:
    """Clicks for `target_object` (1-based) on one frame; each click re-predicts from all.

    image: (1,3,H,W) normalised padded frame; prev_prob: (K,1,H,W) padded soft probabilities
    (no background); pad: (left, right, top, bottom) of the padding; controller: the shared
    ClickController. Creating an interaction starts a new f-BRS session.
    """

    def __init__(
        self,
        image: torch.Tensor,
        prev_prob: torch.Tensor,
        target_object: int,
        pad: Pad,
        controller: ClickController,
    ) -> None:
        num_objects = prev_prob.shape[0]
        if not 1 <= target_object <= num_objects:
            raise ValueError(f"target object {target_object} is not in 1..{num_objects}")
        self.image = image
        self.prev_prob = prev_prob.detach().clone()
        self.target_object = target_object
        self.pad = pad
        self.controller = controller
        self._results: list[torch.Tensor] = []
        controller.unanchor()  # a new interaction is a new session, as in the GUI

    @property
    def clicks(self) -> list[Click]:
        """The clicks so far in unpadded image coordinates (for drawing green/red dots)."""
        left, _, top, _ = self.pad
        return [c.moved(c.y - top, c.x - left) for c in self.controller.clicks]

    def add_click(
        self,
        x: float,
        y: float,
        positive: bool,
        preview: Callable[[torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """A click at unpadded image coordinates -> the frame's (K+1,1,H,W) probabilities.

        preview: called with early (K+1,1,H,W) probabilities where f-BRS has them (a session's
        first click, before its flip average), merged like the final ones."""
        left, _, top, _ = self.pad
        early = None
        if preview is not None:

            def early(mask: torch.Tensor) -> None:
                preview(merge_click_mask(self.prev_prob, self.target_object, mask))

        mask = self.controller.interact(self.image, x + left, y + top, positive, preview=early)
        out = merge_click_mask(self.prev_prob, self.target_object, mask)
        self._results.append(out)
        return out

    def undo_click(self) -> torch.Tensor | None:
        """Forget the last click; returns the probabilities after the remaining clicks, or None
        when none remain (the frame is then back to what it was before the interaction)."""
        if not self._results:
            return None
        self.controller.undo()
        self._results.pop()
        return self._results[-1] if self._results else None
