"""ImageNet normalisation of uint8 RGB frames, the input convention of every network."""

from __future__ import annotations

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_frames(
    rgb: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(T,H,W,3) or (H,W,3) uint8 RGB -> (T,3,H,W) or (3,H,W) float32, normalised per channel."""
    x = torch.as_tensor(np.ascontiguousarray(rgb) if isinstance(rgb, np.ndarray) else rgb)
    x = x.to(device=device).float().div_(255).movedim(-1, -3)
    shape = (3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=x.device).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=x.device).view(shape)
    return (x - mean) / std
