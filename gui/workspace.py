"""What the GUI works on: the session, the frame editor and the autosaving writer, together.

Qt-free. Every method that runs networks is called on the worker thread; the GUI thread only
reads (results are locked, pending edits are replaced and never mutated).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from gui.overlay import overlay_davis
from inference_core import export
from inference_core.api import index_mask_to_prob
from inference_core.mask_writer import MaskWriter
from inference_core.session import Session
from inference_core.upsample import labels_at_size, probs_at_size
from interact.frame_editor import FrameEditor
from interact.local_region import Box, LocalRegion
from model.normalize import normalize_frames
from util.jsonl_log import JsonlLog
from util.tensor_util import pad_divide_by


class NothingToPropagate(ValueError):
    pass


class Workspace:
    def __init__(
        self,
        session: Session,
        editor: FrameEditor,
        writer: MaskWriter | None = None,
        output: Path | None = None,
        log: JsonlLog | None = None,
    ) -> None:
        self.session = session
        self.editor = editor
        self.writer = writer
        self.output = output
        self.log = log  # interactions.jsonl: for resuming and annotation-time studies
        self.start_frame = 0
        self.write_error_listener = None  # called (frame, error) on the writer thread
        self.local: LocalRegion | None = None
        self.source_size = session.frames.source_size
        self.names = session.frames.names
        self.fps = 25.0
        self.notices: list[str] = []  # start-up problems the person should read (console)

    # ---- state reads (any thread)
    def committed(self, t: int) -> np.ndarray:
        return self.session.results.prob(t)

    def current_prob(self, t: int) -> np.ndarray:
        return self.editor.current(t, self.committed(t))

    def has_content(self, t: int) -> bool:
        return self.editor.pending(t) is not None or self.session.results.has_prob(t)

    def labels_at_source(self, t: int) -> np.ndarray:
        """Frame t's labels at the input's resolution: upsampled probabilities, then arg-max."""
        return labels_at_size(self.current_prob(t), self.session.pad, self.source_size)

    def probs_at_source(self, t: int) -> np.ndarray:
        return probs_at_size(self.current_prob(t), self.session.pad, self.source_size)

    def write_failed(self, t: int, error: Exception) -> None:
        """A mask could not be written; it stays in memory until another folder is chosen."""
        if self.write_error_listener is not None:
            self.write_error_listener(t, error)

    def retarget(self, folder: Path) -> None:
        """Save to `folder` from now on; every mask so far is written there too."""
        folder.mkdir(parents=True, exist_ok=True)
        self.output = folder
        if self.log is not None:
            self.log = JsonlLog(folder / self.log.path.name)
        if self.writer is not None:
            self.writer.retarget(folder)

    def _save(self, t: int) -> None:
        if self.writer is not None:
            self.writer.submit(t)

    # ---- edits (worker thread)
    def _show(self, t: int, prob: np.ndarray) -> None:
        self.session.update_mask_only(t, prob)
        self._save(t)

    def record(self, kind: str, frame: int, **fields) -> None:
        if self.log is not None:
            self.log.append(kind=kind, frame=frame, **fields)

    def apply_stroke(self, t: int, mode: str, label: int, points, brush: int) -> None:
        self.record(mode, t, object=label, points=len(points), local=self.local is not None)
        if self.local is not None and self.local.frame == t:
            self.local.stroke(mode, label, points, brush, self._local_image())
            return
        new = self.editor.stroke(
            t, mode, label, points, brush, self.session.image(t), self.committed(t)
        )
        self._show(t, new)

    def apply_click(self, t: int, x: float, y: float, positive: bool, target: int) -> None:
        self.record("click", t, object=target, positive=positive, local=self.local is not None)
        if self.local is not None and self.local.frame == t:
            self.local.click(x, y, positive, target, self._local_image())
            return
        new = self.editor.click(t, x, y, positive, target, self.session.image(t), self.committed(t))
        self._show(t, new)

    def clicks(self, t: int):
        """Clicks of the live click session on frame t (or in the local region), for drawing."""
        if self.local is not None:
            return self.local.editor.clicks(0)
        return self.editor.clicks(t)

    def undo(self, t: int) -> bool:
        self.record("undo", t)
        if self.local is not None:
            return self.local.undo()
        new = self.editor.undo(t, self.committed(t))
        if new is not None:
            self._show(t, new)
        return new is not None

    def redo(self, t: int) -> bool:
        self.record("redo", t)
        if self.local is not None:
            return self.local.redo()
        new = self.editor.redo(t, self.committed(t))
        if new is not None:
            self._show(t, new)
        return new is not None

    def reset_frame(self, t: int) -> None:
        self.record("reset", t)
        self._show(t, self.editor.reset_frame(t, self.committed(t)))

    # ---- local control (worker thread)
    def enter_local(self, t: int, box: Box) -> None:
        self.record("local", t, box=list(box))
        self.editor.end_interaction()
        self.local = LocalRegion(
            t, box, self.current_prob(t), self.session.pad, self.editor.s2m, self.editor.clicker
        )

    def _local_image(self):
        crop = self.local.crop_image(self.session.frames.get(self.local.frame))
        image = normalize_frames(crop, self.session.device).unsqueeze(0)
        return pad_divide_by(image, 16)[0]

    def finish_local(self) -> int:
        local, self.local = self.local, None
        t = local.frame
        merged = local.merged(self.current_prob(t))
        self._show(t, self.editor.replace(t, merged, self.committed(t)))
        return t

    def import_masks(self, masks: dict[int, np.ndarray]) -> None:
        """Existing index masks (working size) become the frames' results (a resumed session)."""
        k, pad = self.session.num_objects, self.session.pad
        for t, mask in masks.items():
            self.session.results.set_prob(t, index_mask_to_prob(mask, k, pad)[:, 0].numpy())

    # ---- propagation (worker thread)
    def begin_propagation(self, t: int) -> list[int]:
        pending = self.editor.pending(t)
        if pending is None:
            raise NothingToPropagate(f"frame {t} has no new edit to propagate; edit it first")
        self.record("propagate", t)
        self.session.commit(t, torch.from_numpy(pending).unsqueeze(1))
        self.editor.committed(t)
        self._save(t)
        return self.session.propagation_order(t)

    def frame_propagated(self, t: int) -> None:
        self._save(t)

    def end_propagation(self) -> None:
        # A round resets every preview; edits not propagated yet stay visible and saved.
        for f in self.editor.pending_frames():
            self.session.update_mask_only(f, self.editor.pending(f))

    # ---- exports (worker thread)
    def export(self, kind: str, path: str, cancel: threading.Event, progress=None) -> str:
        """Write an export; progress(done, total) after each frame."""
        k, names, count = self.session.num_objects, self.names, self.session.num_frames
        opts = {"cancel": cancel, "progress": progress}
        if kind == "binary":
            n = export.export_binary_masks(path, names, k, self.labels_at_source, **opts)
        elif kind == "soft":
            n = export.export_soft_masks(path, names, k, self.probs_at_source, **opts)
        elif kind == "coco":
            n = export.export_coco_rle(path, names, k, self.labels_at_source, **opts)
        elif kind == "video":
            frames = self.session.frames

            def overlay(t: int) -> np.ndarray:
                return overlay_davis(frames.get(t), self.session.results.mask(t))

            n = export.export_overlay_video(
                path, frames.get, count, self.fps, overlay=overlay, **opts
            )
        else:
            raise ValueError(f"unknown export {kind!r}")
        return f"Exported {kind} to {path} ({n})."
