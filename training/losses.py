"""Bootstrapped cross-entropy (spec §4.1) and `wbg` aggregation into logits for training."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_EPS = 1e-7
# A class that is absent (no second object) gets this logit, i.e. zero probability: the CE then
# equals the 2-class CE the spec asks for. Kept finite so fp16 autocast cannot produce NaN.
_ABSENT_LOGIT = -1e4


@dataclass(frozen=True)
class BootstrappedCE:
    """Mean CE over all pixels before `start`, then the mean of the top-p hardest pixels.

    p falls linearly from 1 to `p_min` between `start` and `end`. `s2m_variant` switches to
    p_min already at it >= end (the S2M repository's off-by-one), otherwise at it > end.
    """

    start: int
    end: int
    p_min: float = 0.15
    s2m_variant: bool = False

    def fraction(self, it: int) -> float:
        """The kept fraction p of the hardest pixels at iteration `it` (1.0 = plain CE)."""
        if it < self.start:
            return 1.0
        past_end = it >= self.end if self.s2m_variant else it > self.end
        if past_end or self.end <= self.start:
            return self.p_min
        return self.p_min + (1 - self.p_min) * (self.end - it) / (self.end - self.start)

    def __call__(self, logits: torch.Tensor, target: torch.Tensor, it: int) -> torch.Tensor:
        """logits (B,C,H,W), integer target (B,H,W) -> scalar: mean over the batch."""
        raw = F.cross_entropy(logits.float(), target.long(), reduction="none").flatten(1)
        p = self.fraction(it)
        if p >= 1.0:
            return raw.mean()
        # N is all pixels of one sample; top-k per sample, then the batch mean.
        k = max(1, int(p * raw.shape[1]))
        return raw.topk(k, dim=1, sorted=False).values.mean()


def wbg_logits(prob: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """Per-object probabilities (B,K,H,W) -> logits (B,K+1,H,W) with a `wbg` background.

    present (B,K) bool marks objects that exist; absent ones get a very low logit, so a sample
    without a second object is scored over [background, first object] only.
    """
    if present is not None:
        prob = prob * present[:, :, None, None].to(prob.dtype)
    bg = torch.prod(1 - prob, dim=1, keepdim=True)
    stacked = torch.cat([bg, prob], dim=1).clamp(_EPS, 1 - _EPS)
    logits = torch.log(stacked / (1 - stacked))
    if present is not None:
        absent = torch.cat([torch.zeros_like(present[:, :1]), ~present], dim=1)
        logits = logits.masked_fill(absent[:, :, None, None], _ABSENT_LOGIT)
    return logits


def class_target(masks: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Binary masks (B,K,H,W) -> class map (B,H,W): 0 background, k+1 object k; later wins."""
    target = torch.zeros(masks.shape[0], *masks.shape[2:], dtype=torch.long, device=masks.device)
    for k in range(masks.shape[1]):
        on = (masks[:, k] > 0.5) & present[:, k, None, None]
        target[on] = k + 1
    return target
