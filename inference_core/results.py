"""Per-frame results: index masks for every frame, soft probabilities where they were computed.

Both are kept at the padded size (the networks' size) so fusion sees exactly what the original
kept; `mask(t)` returns the unpadded view callers save and display.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from inference_core.result_storage import DEFAULT_RAM_BUDGET, ResultArrays
from util.tensor_util import Pad

# The original's initial state of a frame never processed: background 1e-7, objects 0.
_BACKGROUND_FLOOR = 1e-7


class ResultStore:
    """Thread-safe store: the worker writes, the GUI reads."""

    def __init__(
        self,
        num_frames: int,
        padded_size: tuple[int, int],
        num_objects: int,
        pad: Pad,
        prob_dtype: str = "float16",
        storage_dir: str | Path | None = None,
        ram_budget: int = DEFAULT_RAM_BUDGET,
    ) -> None:
        """Results stay in RAM up to `ram_budget` bytes, else are memory-mapped in storage_dir
        (a temporary folder when None)."""
        self.num_frames = num_frames
        self.padded_size = padded_size
        self.num_objects = num_objects
        self.pad = pad
        self._dtype = np.dtype(prob_dtype)
        self.storage = ResultArrays(
            num_frames, num_objects + 1, padded_size, self._dtype, storage_dir, ram_budget
        )
        self._masks = self.storage.labels
        self._lock = threading.Lock()

    def initial_prob(self) -> np.ndarray:
        """(K+1, H, W) float32 of a frame nothing was computed for."""
        prob = np.zeros((self.num_objects + 1, *self.padded_size), dtype=np.float32)
        prob[0] = _BACKGROUND_FLOOR
        return prob

    def prob(self, t: int) -> np.ndarray:
        """Soft result (K+1, H, W) float32 of frame t (the initial state if never computed)."""
        with self._lock:
            stored = self.storage.get_prob(t)
            if stored is not None:
                return stored.astype(np.float32)  # a copy, also off a memory map
        return self.initial_prob()

    def has_prob(self, t: int) -> bool:
        with self._lock:
            return bool(self.storage.computed[t])

    def set_prob(self, t: int, prob: np.ndarray) -> None:
        """Store frame t's soft result (K+1, H, W) and its arg-max index mask."""
        mask = prob.argmax(axis=0).astype(np.uint8)
        stored = prob.astype(self._dtype, copy=True)
        with self._lock:
            self.storage.put_prob(t, stored)
            self._masks[t] = mask

    def set_mask(self, t: int, padded_mask: np.ndarray) -> None:
        """Replace only frame t's index mask (a preview; the soft result is unchanged)."""
        with self._lock:
            self._masks[t] = padded_mask

    def reset_mask_to_prob(self, t: int) -> None:
        """Make frame t's index mask the arg-max of its soft result again."""
        self.set_mask(t, self.prob(t).argmax(axis=0).astype(np.uint8))

    def padded_mask(self, t: int) -> np.ndarray:
        with self._lock:
            return self._masks[t].copy()

    def mask(self, t: int) -> np.ndarray:
        """Unpadded (h0, w0) uint8 index mask of frame t."""
        left, right, top, bottom = self.pad
        h, w = self.padded_size
        with self._lock:
            return self._masks[t, top : h - bottom, left : w - right].copy()
