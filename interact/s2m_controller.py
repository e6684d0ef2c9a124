"""Scribble-to-mask: per-object S2M on positive/negative scribble maps (inference.md 10)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from model.s2m import S2MNetwork
from util.tensor_util import pad_divide_by

NO_SCRIBBLE = 255


def scribble_logits(
    s2m: S2MNetwork,
    image: torch.Tensor,
    prev_mask: torch.Tensor,
    scribbles: np.ndarray,
    num_objects: int,
    dilate: bool = False,
    ignore: int = NO_SCRIBBLE,
) -> torch.Tensor:
    """S2M logits (K,1,H,W) for every object.

    image: (1,3,H,W) normalised and padded; prev_mask: (H,W) padded index mask (the frame's
    current hard mask); scribbles: (h0,w0) label map, `ignore` where nothing was drawn. For object
    k the positive map is its own scribbles, the negative map everything else that was drawn.
    `dilate` widens both maps by one pixel (the DAVIS-evaluation variant).
    """
    labels = torch.from_numpy(np.asarray(scribbles).astype(np.int64))
    prev_mask = prev_mask.to(image.device)
    inputs = []
    for k in range(1, num_objects + 1):
        pos = (labels == k).numpy().astype(np.uint8)
        neg = ((labels != k) & (labels != ignore)).numpy().astype(np.uint8)
        if dilate:
            kernel = np.ones((3, 3), np.uint8)
            pos, neg = cv2.dilate(pos, kernel), cv2.dilate(neg, kernel)
        maps = torch.from_numpy(np.stack([pos, neg])).float().unsqueeze(0).to(image.device)
        maps, _ = pad_divide_by(maps, 16)
        own = (prev_mask == k).to(image.dtype)[None, None]
        inputs.append(torch.cat([image, own, maps.to(image.dtype)], dim=1))
    # One batch for all objects: BN runs on running statistics, so items do not interact.
    return s2m(torch.cat(inputs, dim=0))
