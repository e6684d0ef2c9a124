"""The keys and values a propagation pass reads from.

Certain memory (every interacted frame, all rounds) is shared by all passes; each pass adds its
own frames every mem_freq frames, and those are dropped when the pass ends.
"""

from __future__ import annotations

import torch


class MemoryBank:
    """Pre-allocated bank: slots [0, used) hold keys (1,Ck,T,h,w) and values (K,Cv,T,h,w).

    Values are float32 (what the memory read computes in) and laid out position-major: each
    object's (T, h, w, Cv) block is contiguous, so the read-out (model/memory_read.py) takes
    every memory position's channels as one row without transposing or casting the whole
    memory at every frame (at 11 memory frames of 480p that was ~25 ms per object per frame).
    """

    def __init__(
        self,
        certain_keys: torch.Tensor,
        certain_values: torch.Tensor,
        extra: int,
        rolling: bool = False,
    ) -> None:
        """extra: slots for this pass's frames. rolling: when they are full, the oldest pass
        frame makes room for the newest (a bounded memory for very long passes)."""
        n = certain_keys.shape[2]
        self.certain = n
        self.rolling = rolling
        self._keys = certain_keys.new_empty(
            (*certain_keys.shape[:2], n + extra, *certain_keys.shape[3:])
        )
        k, cv, _, h, w = certain_values.shape
        self._values = certain_values.new_empty((k, n + extra, h, w, cv), dtype=torch.float32)
        self._values = self._values.permute(0, 4, 1, 2, 3)  # the (K,Cv,T,h,w) view of it
        self._keys[:, :, :n] = certain_keys
        self._values[:, :, :n] = certain_values
        self.used = n

    @property
    def keys(self) -> torch.Tensor:
        return self._keys[:, :, : self.used]

    @property
    def values(self) -> torch.Tensor:
        return self._values[:, :, : self.used]

    def add(self, key: torch.Tensor, value: torch.Tensor) -> None:
        """key (1,Ck,h,w) or (1,Ck,1,h,w); value (K,Cv,1,h,w)."""
        if self.used >= self._keys.shape[2]:
            if not self.rolling or self.used == self.certain:
                raise RuntimeError("memory bank is full: more writes than the pass planned")
            first = self.certain
            for bank in (self._keys, self._values):
                bank[:, :, first:-1] = bank[:, :, first + 1 :].clone()
            self.used -= 1
        self._keys[:, :, self.used] = key.reshape(self._keys[:, :, 0].shape)
        self._values[:, :, self.used] = value.reshape(self._values[:, :, 0].shape)
        self.used += 1
