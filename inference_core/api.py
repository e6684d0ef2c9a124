"""Helpers for callers that hand the session index masks (the workflow layer, benchmarks).

Rounds over several annotated frames are the workflow's (workflow/project.py, Project.propagate).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def index_mask_to_prob(mask: np.ndarray, num_objects: int, pad) -> torch.Tensor:
    """(h0, w0) ids -> padded one-hot probabilities (K+1, 1, H, W), background first."""
    ids = torch.from_numpy(np.asarray(mask, dtype=np.int64))
    if int(ids.max()) > num_objects:
        raise ValueError(f"mask holds object id {int(ids.max())} but num_objects is {num_objects}")
    onehot = F.one_hot(ids, num_objects + 1).permute(2, 0, 1).float().unsqueeze(1)
    return F.pad(onehot, pad)
