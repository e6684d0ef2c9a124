"""Editing frames: the live interaction, per-frame pending masks and undo/redo.

Qt-free and session-free: callers pass the frame's image and its committed (last propagated)
probabilities. Probabilities are (K+1, H, W) float32 at the padded size, background first.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from interact.free import FreeInteraction
from interact.history import EditHistory, apply_crop, make_edit
from interact.scribble import ScribbleInteraction
from interact.strokes import Stroke
from model.s2m import S2MNetwork
from util.tensor_util import Pad, unpad

Mode = Literal["scribble", "free"]


class FrameEditor:
    """Turns strokes into masks and remembers how to undo them; one history per frame."""

    def __init__(
        self,
        num_objects: int,
        frame_size: tuple[int, int],
        pad: Pad,
        s2m: S2MNetwork | None = None,
        history_capacity: int = 50,
    ) -> None:
        self.num_objects = num_objects
        self.frame_size = frame_size
        self.pad = pad
        self.s2m = s2m
        self._capacity = history_capacity
        self._pending: dict[int, np.ndarray] = {}
        self._histories: dict[int, EditHistory] = {}
        self._live: ScribbleInteraction | FreeInteraction | None = None
        self._live_frame: int | None = None

    # Pending results are replaced, never mutated, so other threads may read them safely.
    def pending(self, t: int) -> np.ndarray | None:
        """Frame t's edited, not yet propagated probabilities."""
        return self._pending.get(t)

    def pending_frames(self) -> list[int]:
        return sorted(self._pending)

    def current(self, t: int, committed: np.ndarray) -> np.ndarray:
        pending = self._pending.get(t)
        return committed if pending is None else pending

    def history(self, t: int) -> EditHistory:
        return self._histories.setdefault(t, EditHistory(self._capacity))

    def can_undo(self, t: int) -> bool:
        return t in self._histories and self._histories[t].can_undo

    def can_redo(self, t: int) -> bool:
        return t in self._histories and self._histories[t].can_redo

    def end_interaction(self) -> None:
        """Complete the live interaction: the next stroke starts a new one."""
        self._live = None
        self._live_frame = None

    def _interaction(self, t: int, mode: Mode, base: np.ndarray):
        live = self._live
        wanted = ScribbleInteraction if mode == "scribble" else FreeInteraction
        if isinstance(live, wanted) and self._live_frame == t:
            return live
        if mode == "scribble":
            if self.s2m is None:
                raise RuntimeError("scribbles need the S2M network (s2m.pth), which is not loaded")
            live = ScribbleInteraction(self.frame_size, self.num_objects, base.argmax(0))
        else:
            soft = unpad(torch.from_numpy(base[1:, None]), self.pad).numpy()
            live = FreeInteraction(soft, self.pad)
        self._live, self._live_frame = live, t
        return live

    def stroke(
        self,
        t: int,
        mode: Mode,
        label: int,
        points: list[tuple[float, float]],
        brush: int,
        image: torch.Tensor,
        committed: np.ndarray,
    ) -> np.ndarray:
        """Apply one finished stroke on frame t; returns the frame's new probabilities.

        image: (1,3,H,W) normalised padded frame (its device is where S2M runs).
        """
        if not points:
            raise ValueError("a stroke needs at least one point")
        base = self.current(t, committed)
        live = self._interaction(t, mode, base)
        thickness = 3 if mode == "scribble" else max(1, int(brush))
        stroke = Stroke(label, list(points), thickness)
        live.append_stroke(stroke)
        if isinstance(live, ScribbleInteraction):
            new = live.predict(self.s2m, image)
        else:
            new = live.predict(image.device)
        new = new[:, 0].float().cpu().numpy()
        self._record(t, base, new, live, stroke)
        return new

    def reset_frame(self, t: int, committed: np.ndarray) -> np.ndarray:
        """Make frame t all background (an undoable edit)."""
        base = self.current(t, committed)
        new = np.zeros_like(base)
        new[0] = 1
        self.end_interaction()
        self._record(t, base, new, None, None)
        return new

    def replace(self, t: int, new: np.ndarray, committed: np.ndarray) -> np.ndarray:
        """Set frame t's probabilities wholesale (e.g. a local-region result), undoably."""
        self.end_interaction()
        self._record(t, self.current(t, committed), new.astype(np.float32), None, None)
        return new

    def _record(self, t, base, new, source, stroke) -> None:
        edit = make_edit(base, new, source, stroke)
        if edit is not None:
            self.history(t).push(edit)
        self._pending[t] = new

    def undo(self, t: int, committed: np.ndarray) -> np.ndarray | None:
        """Revert frame t's newest edit; returns its probabilities, or None if nothing to undo."""
        edit = self.history(t).pop_undo()
        if edit is None:
            return None
        live = self._live
        if (
            live is not None
            and live is edit.source
            and live.strokes
            and live.strokes[-1] is edit.stroke
        ):
            live.undo()
        else:
            self.end_interaction()
        restored = apply_crop(self.current(t, committed), edit.box, edit.before)
        self._pending[t] = restored
        return restored

    def redo(self, t: int, committed: np.ndarray) -> np.ndarray | None:
        edit = self.history(t).pop_redo()
        if edit is None:
            return None
        if self._live is not None and self._live is edit.source and edit.stroke is not None:
            self._live.append_stroke(edit.stroke)
        else:
            self.end_interaction()
        restored = apply_crop(self.current(t, committed), edit.box, edit.after)
        self._pending[t] = restored
        return restored

    def committed(self, t: int) -> None:
        """Frame t was propagated: its edits are now the committed result."""
        self._pending.pop(t, None)
        self.end_interaction()
        # Propagation is a barrier: edits before it cannot be undone into memory.
        self._histories.clear()
