"""Where per-frame results live: RAM for short videos, memory-mapped files for long ones.

A 480p frame costs (K+1) x H x W x 2 bytes of float16 probabilities plus H x W bytes of labels;
an 18,000-frame video would need tens of GB of RAM, so beyond a budget both arrays are
memory-mapped files: the OS keeps only the pages in use resident.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_RAM_BUDGET = 1 << 30  # 1 GiB of results in RAM before spilling to disk


class ResultArrays:
    """labels (T, H, W) uint8, probs (T, C, H, W) and a computed flag per frame."""

    def __init__(
        self,
        num_frames: int,
        channels: int,
        size: tuple[int, int],
        dtype: np.dtype,
        spill_dir: str | Path | None = None,
        ram_budget: int = DEFAULT_RAM_BUDGET,
    ) -> None:
        """Arrays in RAM up to `ram_budget` bytes; beyond, memory-mapped in `spill_dir` (a
        temporary folder, removed by close(), when None)."""
        shape = (num_frames, channels, *size)
        nbytes = int(np.prod(shape)) * dtype.itemsize + num_frames * size[0] * size[1]
        self.computed = np.zeros(num_frames, dtype=bool)
        self._owned: Path | None = None
        if nbytes <= ram_budget:
            self.memory_mapped = False
            self.labels = np.zeros((num_frames, *size), dtype=np.uint8)
            self._probs: dict[int, np.ndarray] | np.memmap = {}
            return
        if spill_dir is None:
            folder = self._owned = Path(tempfile.mkdtemp(prefix="mivos-results-"))
            # Removed when this object is collected or the process exits, so a session that is
            # dropped without close() does not leave gigabytes of spilled results in /tmp.
            self._cleanup = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        else:
            folder = Path(spill_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.memory_mapped = True
        # Files are created sparse where the file system allows: untouched frames cost nothing.
        self.labels = np.lib.format.open_memmap(
            folder / "labels.npy", mode="w+", dtype=np.uint8, shape=(num_frames, *size)
        )
        self._probs = np.lib.format.open_memmap(
            folder / "probs.npy", mode="w+", dtype=dtype, shape=shape
        )
        log.info("results memory-mapped in %s (%.1f GB at most)", folder, nbytes / 2**30)

    def get_prob(self, t: int) -> np.ndarray | None:
        if isinstance(self._probs, dict):
            return self._probs.get(t)
        return self._probs[t] if self.computed[t] else None

    def ram_bytes(self) -> int:
        """Bytes of results held in RAM (memory-mapped arrays count as none: the OS pages them)."""
        if self.memory_mapped:
            return self.computed.nbytes
        probs = sum(p.nbytes for p in self._probs.values())
        return probs + self.labels.nbytes + self.computed.nbytes

    def put_prob(self, t: int, prob: np.ndarray) -> None:
        self._probs[t] = prob
        self.computed[t] = True

    def close(self) -> None:
        """Remove a temporary backing folder (results are gone after this)."""
        if self._owned is not None:
            self.labels = self._probs = None
            self._cleanup()
            self._owned = None
