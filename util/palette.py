"""The 256-colour DAVIS (PASCAL VOC) palette used for index masks and overlays."""

from __future__ import annotations

import numpy as np


def _voc_palette() -> np.ndarray:
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[index] = (r, g, b)
    palette.setflags(write=False)
    return palette


DAVIS_PALETTE = _voc_palette()


def palette_bytes() -> bytes:
    """768 bytes (r, g, b per index) for PIL's putpalette."""
    return DAVIS_PALETTE.tobytes()
