"""Bring a padded soft result back to a requested resolution (usually the source's).

The networks work at a padded working size; saved and exported masks are wanted at the input's
size. Resizing the probabilities and then taking the arg-max gives smoother object borders than
resizing the index mask with nearest neighbour.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from util.tensor_util import Pad, unpad


def _resized(prob: np.ndarray, pad: Pad, size: tuple[int, int]) -> torch.Tensor:
    """(K+1, H, W) padded probabilities -> (K+1, size[0], size[1]) float32 tensor."""
    if prob.ndim != 3:
        raise ValueError(f"expected probabilities of shape (K+1, H, W), got {prob.shape}")
    # float32: float16 storage would make interpolation lossy, and CPU half ops are slow.
    x = unpad(torch.from_numpy(np.asarray(prob, dtype=np.float32)), pad)
    height, width = int(size[0]), int(size[1])
    if tuple(x.shape[-2:]) != (height, width):
        x = F.interpolate(x[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return x


def probs_at_size(prob: np.ndarray, pad: Pad, size: tuple[int, int]) -> np.ndarray:
    """Padded prob (K+1, H, W) -> unpadded and bilinearly resized (K+1, size) float32."""
    return np.ascontiguousarray(_resized(prob, pad, size).numpy(), dtype=np.float32)


def labels_at_size(prob: np.ndarray, pad: Pad, size: tuple[int, int]) -> np.ndarray:
    """Padded prob (K+1, H, W), background first -> (size) uint8 index mask (arg-max)."""
    return _resized(prob, pad, size).argmax(dim=0).to(torch.uint8).numpy()
