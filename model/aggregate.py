"""Merging per-object probabilities into background + objects (networks.md E)."""

from __future__ import annotations

import torch

_EPS = 1e-7


def _softmax_of_logits(stacked: torch.Tensor, hard: bool) -> torch.Tensor:
    p = stacked.clamp(_EPS, 1 - _EPS)
    logits = torch.log(p / (1 - p))
    if hard:
        logits = logits * 1000  # near one-hot, as the original sharpens interaction results
    return torch.softmax(logits, dim=0)


def aggregate_wbg(prob: torch.Tensor, keep_bg: bool = True, hard: bool = False) -> torch.Tensor:
    """Background = prod(1 - p_k). prob (K,1,H,W) -> (K+1,1,H,W) (or (K,...) without keep_bg)."""
    bg = torch.prod(1 - prob, dim=0, keepdim=True)
    out = _softmax_of_logits(torch.cat([bg, prob], dim=0), hard)
    return out if keep_bg else out[1:]


def aggregate_sbg(prob: torch.Tensor, keep_bg: bool = True, hard: bool = False) -> torch.Tensor:
    """Background fixed at 0.5 (logit 0). prob (K,1,H,W) -> (K+1,1,H,W) (or (K,...))."""
    bg = torch.full_like(prob[:1], 0.5)
    out = _softmax_of_logits(torch.cat([bg, prob], dim=0), hard)
    return out if keep_bg else out[1:]
