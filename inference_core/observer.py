"""Hooks that let a caller watch a round (replays, studies) without changing what it computes."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FusionDetails:
    """Everything fusion computed for target frame ti between tc (old) and tr (this round)."""

    tc: int
    tr: int
    ti: int
    dist: torch.Tensor  # (1, 2) [n_c, n_r]
    attention: torch.Tensor  # (K+1, 2, H, W)
    logits: torch.Tensor  # (K, 1, H, W)
    out: torch.Tensor  # (K+1, 1, H, W)


class RoundObserver:
    """No-op base; override what you need."""

    def memory_written(self, t: int) -> None:
        """A value of frame t was encoded into memory (certain or pass memory)."""

    def fused(self, details: FusionDetails) -> None:
        """Fusion ran on details.ti."""
