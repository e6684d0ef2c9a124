"""Padding to multiples of 16 (the networks' stride) and the matching unpadding."""

from __future__ import annotations

import torch
import torch.nn.functional as F

Pad = tuple[int, int, int, int]  # (left, right, top, bottom)


def pad_amounts(height: int, width: int, divisor: int = 16) -> Pad:
    """Symmetric zero padding that makes (height, width) multiples of `divisor`.

    The extra pixel of an odd amount goes to the bottom/right, as the original does.
    """
    new_h = -(-height // divisor) * divisor
    new_w = -(-width // divisor) * divisor
    top = (new_h - height) // 2
    left = (new_w - width) // 2
    return (left, new_w - width - left, top, new_h - height - top)


def pad_divide_by(x: torch.Tensor, divisor: int = 16) -> tuple[torch.Tensor, Pad]:
    """Zero-pad the last two dims of `x` to multiples of `divisor`; returns (padded, pad)."""
    pad = pad_amounts(x.shape[-2], x.shape[-1], divisor)
    if any(pad):
        x = F.pad(x, pad)
    return x, pad


def unpad(x: torch.Tensor, pad: Pad) -> torch.Tensor:
    """Inverse of pad_divide_by on the last two dims."""
    left, right, top, bottom = pad
    if top + bottom > 0:
        x = x[..., top : x.shape[-2] - bottom, :]
    if left + right > 0:
        x = x[..., left : x.shape[-1] - right]
    return x
