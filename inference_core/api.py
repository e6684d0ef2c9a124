"""Semi-supervised propagation: given index masks on some frames, segment the whole video.

Each annotated frame is one interaction round, in frame order, exactly as if a person had drawn
it in the GUI and pressed Propagate: round k propagates forward to the end and backward to the
previous annotation, fusing with round k-1's result in between.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from inference_core.session import Session


def index_mask_to_prob(mask: np.ndarray, num_objects: int, pad) -> torch.Tensor:
    """(h0, w0) ids -> padded one-hot probabilities (K+1, 1, H, W), background first."""
    ids = torch.from_numpy(np.asarray(mask, dtype=np.int64))
    if int(ids.max()) > num_objects:
        raise ValueError(f"mask holds object id {int(ids.max())} but num_objects is {num_objects}")
    onehot = F.one_hot(ids, num_objects + 1).permute(2, 0, 1).float().unsqueeze(1)
    return F.pad(onehot, pad)


def planned_frame_count(annotated: list[int], num_frames: int) -> int:
    """How many frames propagate_from_masks will yield (for progress bars)."""
    total, previous = 0, -1
    for a in sorted(annotated):
        total += (num_frames - 1 - a) + (a - previous - 1)
        previous = a
    return total


def propagate_from_masks(
    session: Session,
    masks: Mapping[int, np.ndarray],
    cancel: threading.Event | None = None,
    on_final: Callable[[int], None] | None = None,
) -> Iterator[int]:
    """Run one round per annotated frame (ascending); yield every propagated frame index.

    masks: frame -> (h0, w0) index mask at the session's working size. `on_final(t)` is called
    once per frame as soon as no later round can change it (so results can be written early).
    """
    order = sorted(masks)
    if not order:
        raise ValueError("no annotated frame to propagate from")
    done = on_final or (lambda t: None)
    for i, a in enumerate(order):
        if cancel is not None and cancel.is_set():
            return
        session.commit(a, index_mask_to_prob(masks[a], session.num_objects, session.pad))
        done(a)  # passes stop at annotated frames: nothing changes it again
        last_round = i == len(order) - 1
        for t in session.propagate(a, cancel):
            # A later round's backward pass re-fuses the frames between a and the next
            # annotation; frames before a, or after the last annotation, are final now.
            if t < a or last_round:
                done(t)
            yield t
