"""Editing frames: the live interaction, per-frame pending masks and undo/redo.

Qt-free and session-free: callers pass the frame's image and its committed (last propagated)
probabilities. Probabilities are (K+1, H, W) float32 at the padded size, background first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from interact.click import ClickInteraction
from interact.free import FreeInteraction
from interact.history import EditHistory, apply_crop, make_edit
from interact.scribble import ScribbleInteraction
from interact.strokes import Stroke
from model.fbrs.controller import ClickController
from model.s2m import S2MNetwork
from util.tensor_util import Pad, unpad

Mode = Literal["scribble", "free"]


@dataclass(frozen=True)
class ClickMark:
    """One click as the history and the overlay see it (unpadded image coordinates)."""

    x: float
    y: float
    positive: bool


class _ClickSession:
    """A click interaction seen like the stroke-based ones: `strokes` are its clicks."""

    def __init__(self, interaction: ClickInteraction) -> None:
        self.interaction = interaction
        self.strokes: list[ClickMark] = []

    def click(
        self, mark: ClickMark, preview: Callable[[torch.Tensor], None] | None = None
    ) -> torch.Tensor:
        out = self.interaction.add_click(mark.x, mark.y, mark.positive, preview)
        self.strokes.append(mark)
        return out

    def undo(self) -> ClickMark:
        self.interaction.undo_click()  # restores f-BRS's state from before that click
        return self.strokes.pop()

    def append_stroke(self, mark: ClickMark) -> None:
        self.click(mark)  # redo: re-run the click so f-BRS's state follows the mask


class FrameEditor:
    """Turns strokes into masks and remembers how to undo them; one history per frame."""

    def __init__(
        self,
        num_objects: int,
        frame_size: tuple[int, int],
        pad: Pad,
        s2m: S2MNetwork | None = None,
        history_capacity: int = 50,
        clicker: ClickController | None = None,
    ) -> None:
        self.num_objects = num_objects
        self.frame_size = frame_size
        self.pad = pad
        self.s2m = s2m
        self.clicker = clicker  # the f-BRS click controller, when fbrs.pth is loaded
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

    def click(
        self,
        t: int,
        x: float,
        y: float,
        positive: bool,
        target: int,
        image: torch.Tensor,
        committed: np.ndarray,
        preview: Callable[[np.ndarray], None] | None = None,
    ) -> np.ndarray:
        """One f-BRS click for object `target` at unpadded (x, y); the frame's new probabilities.

        Clicks on the same frame and object accumulate in one session; another frame, another
        object or another kind of interaction starts a new one. preview: called with early
        padded probabilities (K+1,H,W) float32 where f-BRS has them (a session's first click),
        which are not recorded: only the returned result is an edit.
        """
        if self.clicker is None:
            raise RuntimeError("clicks need the f-BRS network (fbrs.pth), which is not loaded")
        base = self.current(t, committed)
        live = self._live
        same = isinstance(live, _ClickSession) and self._live_frame == t
        if not (same and live.interaction.target_object == target):
            prev = torch.from_numpy(base[1:, None]).to(image.device)
            live = _ClickSession(ClickInteraction(image, prev, target, self.pad, self.clicker))
            self._live, self._live_frame = live, t
        mark = ClickMark(x, y, positive)
        early = None
        if preview is not None:

            def early(prob: torch.Tensor) -> None:
                preview(prob[:, 0].float().cpu().numpy())

        new = live.click(mark, early)[:, 0].float().cpu().numpy()
        self._record(t, base, new, live, mark)
        return new

    def clicks(self, t: int) -> list[ClickMark]:
        """The live click session's clicks on frame t (for drawing)."""
        live = self._live
        return (
            list(live.strokes) if isinstance(live, _ClickSession) and self._live_frame == t else []
        )

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

    def grown(self, num_objects: int) -> FrameEditor:
        """A copy for more objects (added at the end): pending edits keep their masks, the
        new objects absent (zero probability); undo histories and the live interaction end
        there (an added object is a barrier, like a propagation)."""
        if num_objects < self.num_objects:
            raise ValueError(f"cannot shrink {self.num_objects} objects to {num_objects}")
        editor = FrameEditor(
            num_objects, self.frame_size, self.pad, self.s2m, self._capacity, self.clicker
        )
        extra = num_objects - self.num_objects
        for t, prob in self._pending.items():
            zeros = np.zeros((extra, *prob.shape[1:]), prob.dtype)
            editor._pending[t] = np.concatenate([prob, zeros])
        return editor

    def discard(self, t: int) -> None:
        """Forget frame t's pending edit and its history (e.g. a mask file replaces it)."""
        self._pending.pop(t, None)
        self._histories.pop(t, None)
        if self._live_frame == t:
            self.end_interaction()

    def committed(self, t: int) -> None:
        """Frame t was propagated: its edits are now the committed result."""
        self._pending.pop(t, None)
        self.end_interaction()
        # Propagation is a barrier: edits before it cannot be undone into memory.
        self._histories.clear()
