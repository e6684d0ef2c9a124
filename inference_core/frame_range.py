"""A contiguous slice [start, end) of another frame source, indexed from 0."""

from __future__ import annotations

import numpy as np

from inference_core.frames import FrameSource


class FrameRange:
    """Frames start..end-1 of `source`; names, sizes and frame rate are the source's.

    Raises ValueError unless 0 <= start < end <= len(source).
    """

    def __init__(self, source: FrameSource, start: int = 0, end: int | None = None) -> None:
        total = len(source)
        end = total if end is None else end
        if not 0 <= start < end <= total:
            raise ValueError(f"frame range [{start}, {end}) is not inside the video's 0..{total}")
        self.source = source
        self.start = start
        self.end = end

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def size(self) -> tuple[int, int]:
        return self.source.size

    @property
    def source_size(self) -> tuple[int, int]:
        return self.source.source_size

    @property
    def fps(self) -> float | None:
        """The source's frame rate (a slice plays at the same rate); None when it has none."""
        return getattr(self.source, "fps", None)

    @property
    def names(self) -> list[str]:
        return self.source.names[self.start : self.end]

    def get(self, t: int) -> np.ndarray:
        """The source's frame start + t ((H, W, 3) uint8); IndexError outside 0..len-1."""
        if not 0 <= t < len(self):
            raise IndexError(f"frame {t} outside 0..{len(self) - 1}")
        return self.source.get(self.start + t)
