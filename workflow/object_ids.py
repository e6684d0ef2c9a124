"""The person's object ids (the values in their mask files) and the session's numbers 1..K.

Mask files may use any ids (1, 3, 7; only the ids present are objects); the networks number
the objects 1..K in project order. Files are read through `to_internal` and written through
`to_user`, so every saved mask and export keeps the person's ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from util.mask_io import MaskReadError

_NONE = 255  # in the lookup table: a value that is no object of the project


class ObjectIds:
    """ids[k-1] is the id of the session's object k (k = 1..K); id 0 is the background."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = [int(i) for i in ids]
        if len(set(self.ids)) != len(self.ids) or not all(0 < i < _NONE for i in self.ids):
            raise ValueError(f"object ids must be distinct and in 1..254, got {self.ids}")
        self._to_user = np.array([0, *self.ids], np.uint8)
        self._to_internal = np.full(256, _NONE, np.uint8)
        self._to_internal[self._to_user] = np.arange(len(self._to_user), dtype=np.uint8)

    def internal(self, object_id: int) -> int:
        """The session's number (1..K) of the object with this id (0 for 0); KeyError if none."""
        k = int(self._to_internal[object_id])
        if k == _NONE:
            raise KeyError(f"no object with id {object_id}")
        return k

    def user(self, k: int) -> int:
        """The id of the session's object k (0 for the background)."""
        return int(self._to_user[k])

    def to_internal(self, mask: np.ndarray, path: Path | str) -> np.ndarray:
        """(h, w) uint8 file ids -> session numbers; MaskReadError naming `path` for an id
        that is not one of the project's objects."""
        out = self._to_internal[mask]
        if (out == _NONE).any():
            bad = min(int(i) for i in np.unique(mask[out == _NONE]))
            known = ", ".join(str(i) for i in self.ids)
            raise MaskReadError(
                path, f"holds object id {bad}, not one of the project's objects ({known})"
            )
        return out

    def to_user(self, labels: np.ndarray) -> np.ndarray:
        """(h, w) uint8 session numbers 0..K -> the person's ids."""
        return self._to_user[labels]
