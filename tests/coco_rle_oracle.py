"""A from-the-specification COCO RLE encoder/decoder, kept only as a test oracle.

The application encodes with pycocotools (workflow/export.py); this independent implementation
checks it, and pycocotools checks this (tests/test_export.py round-trips both ways).

Runs are counted over the mask in column-major order starting with a (possibly empty) run of
zeros, and the compressed string stores each count (delta-coded against the count two places
back, from the fourth count on) in little-endian groups of 5 bits, one character per group:
value + 48, with 0x20 set when another group follows and 0x10 of the last group acting as the
sign bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def counts_to_string(counts: Sequence[int]) -> str:
    """COCO's compressed form of uncompressed RLE counts (module docstring)."""
    chars: list[str] = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative deltas end in a run of 1 bits
            more = x != -1 if c & 0x10 else x != 0
            chars.append(chr(c + 48 + (0x20 if more else 0)))
    return "".join(chars)


def string_to_counts(text: str) -> list[int]:
    """Inverse of counts_to_string."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x = shift = 0
        more = True
        while more:
            if pos >= len(text):
                raise ValueError(f"truncated RLE string {text!r}")
            c = ord(text[pos]) - 48
            x |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                x -= 1 << shift  # sign-extend the last group
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _run_lengths(mask: np.ndarray) -> list[int]:
    """Column-major run lengths of mask != 0, starting with the (maybe empty) zero run."""
    flat = (np.asarray(mask).ravel(order="F") != 0).astype(np.int8)
    if flat.size == 0:
        return []
    edges = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    return [0, *counts] if flat[0] else counts


def rle_encode(mask: np.ndarray) -> dict:
    """(H, W) mask (nonzero = inside) -> {"size": [H, W], "counts": compressed string}."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    size = [int(mask.shape[0]), int(mask.shape[1])]
    return {"size": size, "counts": counts_to_string(_run_lengths(mask))}


def rle_decode(rle: dict) -> np.ndarray:
    """COCO RLE (counts as a compressed string or a list) -> (H, W) uint8 0/1 mask."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    counts = string_to_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]
    if sum(counts) != height * width:
        raise ValueError(f"RLE counts sum to {sum(counts)}, expected {height}x{width}")
    values = np.arange(len(counts), dtype=np.int64) % 2  # runs alternate 0, 1, 0, ...
    flat = np.repeat(values.astype(np.uint8), counts)
    return np.ascontiguousarray(flat.reshape((height, width), order="F"))
