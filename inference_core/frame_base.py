"""What every frame source shares: the protocol, its error, the working size and a cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np


class FrameReadError(ValueError):
    """An input that cannot be read; the message starts with its path."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {problem}")


class FrameSource(Protocol):
    """T frames at one working size; `get` returns a fresh array the caller may modify.

    Frames are as viewers show them: EXIF orientation (images) and display rotation (videos)
    are applied, and every size reported is the upright one.
    """

    def __len__(self) -> int: ...

    @property
    def size(self) -> tuple[int, int]:
        """Working (H, W)."""

    @property
    def source_size(self) -> tuple[int, int]:
        """(H, W) of the input."""

    @property
    def names(self) -> list[str]:
        """Per-frame output stem: the image file stem, or f"{t:05d}" for a video."""

    @property
    def fps(self) -> float | None:
        """The source's average frame rate for a video; None for image folders and arrays."""

    def get(self, t: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB at the working size, C-contiguous; IndexError if out of range."""


def working_size(height: int, width: int, resolution: int | None) -> tuple[int, int]:
    """Scale so the shorter side is `resolution` (integer arithmetic, as the original).

    None or a negative resolution keeps the input size, and so does a resolution above the
    input's shorter side: upscaling adds no detail, only computation.
    """
    short = min(height, width)
    if resolution is None or resolution < 0 or resolution >= short:
        return height, width
    return height * resolution // short, width * resolution // short


class FrameLRU:
    """Thread-safe LRU of decoded frames (the GUI thread and the worker both read)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, t: int) -> np.ndarray | None:
        with self._lock:
            frame = self._items.get(t)
            if frame is not None:
                self._items.move_to_end(t)
            return frame

    def put(self, t: int, frame: np.ndarray) -> None:
        with self._lock:
            self._items[t] = frame
            self._items.move_to_end(t)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def check_index(t: int, length: int) -> None:
    """Raise IndexError unless 0 <= t < length."""
    if not 0 <= t < length:
        raise IndexError(f"frame {t} is outside 0..{length - 1}")
