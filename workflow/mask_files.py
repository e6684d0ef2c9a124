"""Mask files given by the person: matching them to frames (by file stem, else by the last number
in the name) and reading them at the working and the source size."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from util.mask_io import read_index_mask

log = logging.getLogger(__name__)


def match_masks_to_frames(mask_files: list[Path], frame_names: list[str]) -> dict[int, Path]:
    """frame index -> mask file. 'bear_00012.png' matches frame 'bear_00012', else frame 12."""
    by_stem = {name: t for t, name in enumerate(frame_names)}
    matched: dict[int, Path] = {}
    for path in mask_files:
        t = by_stem.get(path.stem)
        if t is None:
            numbers = re.findall(r"\d+", path.stem)
            t = int(numbers[-1]) if numbers else None
        if t is None or not 0 <= t < len(frame_names):
            log.warning("%s: matches no frame (by name or number); ignored", path)
            continue
        if t in matched:
            log.warning("%s: frame %d already has %s; ignored", path, t, matched[t])
            continue
        matched[t] = path
    return matched


def file_sha1(path: Path) -> str:
    """Content hash of a mask file: an import already recorded with it is not imported again."""
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


VOID_ID = 255  # DAVIS/VOC ground truth: "not labelled" (object borders, unclear pixels)


@dataclass(frozen=True)
class MaskPair:
    """One mask file at the working and the source size, (h, w) and (h0, w0) uint8 ids as the
    file's author wrote them (void pixels already set to background); `void` counts them."""

    labels: np.ndarray
    source: np.ndarray
    void: int


def read_mask_pair(
    path: Path, working_size: tuple[int, int], source_size: tuple[int, int]
) -> MaskPair:
    """One mask file at both sizes; void (255) pixels become background, never an object.

    The source-size copy is what gets saved, so an imported mask is written back as given
    (only resized, nearest neighbour, when it is not the frames' size: with a warning).
    Raises MaskReadError naming the file when it cannot be read.
    """
    raw = read_index_mask(path)
    if raw.shape != tuple(source_size):
        log.warning(
            "%s: %dx%d differs from the frames' %dx%d; resized (nearest neighbour)",
            path, raw.shape[1], raw.shape[0], source_size[1], source_size[0],
        )  # fmt: skip
    void = raw == VOID_ID
    count = int(void.sum())
    if count:
        raw = np.where(void, 0, raw).astype(np.uint8)
    return MaskPair(_resized(raw, working_size), _resized(raw, source_size), count)


def object_ids(mask: np.ndarray) -> set[int]:
    """The object ids present in an index mask (background and void aside)."""
    return {int(i) for i in np.unique(mask)} - {0, VOID_ID}


def _resized(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape == tuple(size):
        return mask
    return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
