"""Undo/redo as data: each user action stores the changed box of the frame's probabilities."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MaskEdit:
    """One action on one frame: probabilities (K+1, h, w) inside `box` before and after.

    `source` is the interaction that made the edit and `stroke` its stroke (None for resets),
    so undoing the newest stroke of a live interaction also removes that stroke from it.
    """

    box: tuple[int, int, int, int]  # y0, y1, x0, x1 (exclusive ends)
    before: np.ndarray
    after: np.ndarray
    source: object | None = None
    stroke: object | None = None


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int] | None:
    """Smallest box holding every pixel that differs between two (C, H, W) arrays."""
    diff = np.any(before != after, axis=0)
    rows, cols = np.nonzero(diff.any(axis=1))[0], np.nonzero(diff.any(axis=0))[0]
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def make_edit(before: np.ndarray, after: np.ndarray, source=None, stroke=None) -> MaskEdit | None:
    """The edit turning `before` into `after`, or None when nothing changed."""
    box = changed_box(before, after)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    return MaskEdit(
        box, before[:, y0:y1, x0:x1].copy(), after[:, y0:y1, x0:x1].copy(), source, stroke
    )


def apply_crop(prob: np.ndarray, box: tuple[int, int, int, int], crop: np.ndarray) -> np.ndarray:
    """A copy of prob with `crop` written into `box`."""
    y0, y1, x0, x1 = box
    out = prob.copy()
    out[:, y0:y1, x0:x1] = crop
    return out


class EditHistory:
    """Undo and redo stacks of one frame; a new edit clears redo; the oldest edits fall off."""

    def __init__(self, capacity: int = 50) -> None:
        self._undo: deque[MaskEdit] = deque(maxlen=capacity)
        self._redo: list[MaskEdit] = []

    def push(self, edit: MaskEdit) -> None:
        self._undo.append(edit)
        self._redo.clear()

    def pop_undo(self) -> MaskEdit | None:
        if not self._undo:
            return None
        edit = self._undo.pop()
        self._redo.append(edit)
        return edit

    def pop_redo(self) -> MaskEdit | None:
        if not self._redo:
            return None
        edit = self._redo.pop()
        self._undo.append(edit)
        return edit

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)
