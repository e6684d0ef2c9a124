"""Matching annotation files to frames: by file stem, else by the last number in the name."""

from __future__ import annotations

import logging
import re
from pathlib import Path

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
