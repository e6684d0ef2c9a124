"""A project: one video being annotated, and everything that makes its masks.

The project owns the frame source (through the session), the objects, the session, the frame
editor, the background mask writer, the interaction log, exports, and the provenance of every
frame (workflow/provenance.py). It is Qt-free: the GUI's worker thread, the headless command,
eval_semi.py and the DAVIS evaluation all drive it.

What a frame shows, what is saved for it and what the session holds come from one place,
`current_prob`: the person's unpropagated edit (the editor's pending result) if any, else a
given mask awaiting its round (imported, or restored from an earlier sitting), else the
session's result. There is no second copy of "edited but not propagated" to settle after a
round, so the three agree after a round ends, is cancelled or raises at any frame.

Rounds (`round`, `propagate`) follow shared/spec/inference.md: commit the annotation into the
certain memory, propagate both ways up to the nearest committed annotation, fusing in between.
Annotations are never overwritten: passes stop at committed annotations, and frames awaiting
their round keep showing (and saving) their annotation while a pass runs through them.

Mask files given on several frames (import_masks): a file whose objects were all absent from
every earlier annotation *introduces* them (earlier objects keep being tracked through that
frame: their pixels come from propagation, the new objects' pixels win where they overlap);
a file holding an object annotated earlier is a full annotation of its frame. `full_masks=True`
takes every file as a full annotation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from inference_core.api import index_mask_to_prob
from inference_core.session import Session
from inference_core.upsample import labels_at_size, probs_at_size
from interact.frame_editor import FrameEditor
from interact.local_region import Box, LocalRegion
from model.normalize import normalize_frames
from util.jsonl_log import JsonlLog
from util.tensor_util import pad_divide_by, unpad
from workflow import export
from workflow.mask_files import file_sha1, read_mask_pair
from workflow.mask_writer import MaskWriter
from workflow.object_ids import ObjectIds
from workflow.overlay import overlay_davis
from workflow.provenance import Provenance, ProvenanceTable
from workflow.state import (
    ObjectInfo,
    ProjectState,
    default_objects,
    objects_for_ids,
    write_state,
)

log = logging.getLogger(__name__)


class NothingToPropagate(ValueError):
    """No frame has an annotation waiting for its round."""


@dataclass(frozen=True)
class GivenMask:
    """A mask file's content awaiting its round (or kept to save it exactly as given).

    labels: (h, w) uint8 ids at the working size; source: (h0, w0) uint8 at the source size;
    introduces: the object ids this mask introduces (empty: a full annotation of the frame).
    tracked: for an introducing mask, the objects annotated on earlier frames, whose
    propagated pixels it keeps (None: not worked out yet).
    """

    labels: np.ndarray
    source: np.ndarray
    introduces: tuple[int, ...] = ()
    tracked: tuple[int, ...] | None = None  # introducing: the objects annotated before it


@dataclass(frozen=True)
class RoundPlan:
    """The rounds one Propagate runs: annotated frames in order, and the frames they visit."""

    frames: list[int]
    total: int  # frame visits, for progress bars


class Project:
    """See the module docstring. Methods that run networks are called on one worker thread;
    the reads (`mask`, `provenance`, `current_prob`, ...) are safe from any thread."""

    def __init__(
        self,
        session: Session,
        editor: FrameEditor,
        objects: list[ObjectInfo] | None = None,
        writer: MaskWriter | None = None,
        output: Path | None = None,
        log_file: JsonlLog | None = None,
        full_masks: bool = False,
    ) -> None:
        self.session = session
        self.editor = editor
        self.set_objects(objects or default_objects(session.num_objects))
        self.writer = writer
        self.output = output
        self.log = log_file  # interactions.jsonl: annotation-time studies, legacy resume
        self.full_masks = full_masks
        self.provenance = ProvenanceTable(session.num_frames)
        self.rounds = 0
        self.start_frame = 0
        self.gui_state: dict = {}  # the GUI's choices to restore (mode, overlay)
        self.source_path: str | None = None
        self.storage_dir: Path | None = None  # where the session memory-maps long videos' results
        self.write_error_listener = None  # called (frame, error) on the writer thread
        self.local: LocalRegion | None = None
        self.source_size = session.frames.source_size
        self.names = session.frames.names
        # Frames per second of the overlay video export: the source's own rate, else the
        # default; the GUI and the headless command set the person's --fps choice.
        self.fps: float = export.source_fps(session.frames) or export.DEFAULT_FPS
        self._given: dict[int, GivenMask] = {}  # mask files awaiting their round
        self._exact: dict[int, GivenMask] = {}  # committed mask files, saved as given
        self._state_lock = threading.Lock()

    @property
    def num_frames(self) -> int:
        return self.session.num_frames

    @property
    def num_objects(self) -> int:
        return self.session.num_objects

    def set_objects(self, objects: list[ObjectInfo]) -> None:
        """The project's objects, in session order (object k of the session is objects[k-1]);
        their ids are the values the person's mask files use (see object_ids.py)."""
        if len(objects) != self.session.num_objects:
            raise ValueError(f"{len(objects)} objects for a session of {self.session.num_objects}")
        self.objects = list(objects)
        self.ids = ObjectIds(o.id for o in objects)

    def add_object(self, name: str | None = None) -> ObjectInfo:
        """A new object (the next free id), while annotating; worker thread.

        The networks' per-object state has one slot per object, so the session is rebuilt
        for K+1 objects: every frame keeps its soft result (the new object at zero), the
        annotations go back into the certain memory in their order (encoded again), and
        unpropagated edits and given masks stay as they are. Undo histories end here, as at
        a propagation. Raises ValueError past 254 objects or during local control.
        """
        if self.local is not None:
            raise ValueError("finish local control before adding an object")
        used = [o.id for o in self.objects]
        new_id = max(used, default=0) + 1
        if new_id >= 255:
            free = sorted(set(range(1, 255)) - set(used))
            if not free:
                raise ValueError("no object id left (254 objects at most)")
            new_id = free[0]
        info = objects_for_ids([new_id])[0]
        if name:
            info = replace(info, name=name)
        old = self.session
        k = old.num_objects + 1
        storage = None
        if self.storage_dir is not None:
            storage = Path(self.storage_dir) / f"objects-{k}"  # never the old session's files
        new = Session(old.nets, old.frames, k, old.cfg, old.observer, storage_dir=storage)
        zero = np.zeros((1, *old.padded_size), np.float32)
        for t in range(old.num_frames):
            if old.results.has_prob(t):
                new.results.set_prob(t, np.concatenate([old.results.prob(t), zero]))
        for t in old.memory_frames():
            prob = torch.from_numpy(new.results.prob(t)).unsqueeze(1)
            new.restore(t, prob)
        new.interacted = list(old.interacted)
        self.editor = self.editor.grown(k)
        self.session = new
        self.set_objects([*self.objects, info])
        old.close()
        self.save_state()
        log.info("added object %d (%s)", info.id, info.name)
        return info

    def rename_object(self, k: int, name: str) -> None:
        """Name the session's object k (1..K); saved in the project file."""
        self.objects[k - 1] = replace(self.objects[k - 1], name=name)
        self.save_state()

    def set_hidden(self, k: int, hidden: bool) -> None:
        """Hide object k in the overlay (its masks are kept and saved); saved in the project."""
        self.objects[k - 1] = replace(self.objects[k - 1], hidden=hidden)
        self.save_state()

    # ---- reads (any thread) ---------------------------------------------------------------
    def _given_prob(self, t: int, given: GivenMask) -> np.ndarray:
        """(K+1, H, W) padded probabilities of a given mask.

        An introducing mask is merged with the propagated result: objects annotated earlier
        keep their propagated probabilities (renormalised without the others), every other
        object is there only where the mask puts it, and the mask's pixels are certain.
        """
        if not given.introduces:
            return index_mask_to_prob(given.labels, self.num_objects, self.session.pad)[
                :, 0
            ].numpy()
        tracked = given.tracked
        if tracked is None:
            tracked = tuple(sorted(self._objects_before(t)))
        prob = self.session.results.prob(t)
        absent = [k for k in range(1, self.num_objects + 1) if k not in tracked]
        prob[absent] = 0
        prob /= np.maximum(prob.sum(axis=0, keepdims=True), 1e-7)
        left, right, top, bottom = self.session.pad
        h, w = prob.shape[-2:]
        region = prob[:, top : h - bottom, left : w - right]
        new = given.labels > 0
        region[:, new] = 0
        region[given.labels[new], new] = 1
        return prob

    def _base(self, t: int) -> np.ndarray:
        """Frame t without the person's pending edit: a given mask, else the session's result."""
        given = self._given.get(t)
        return self._given_prob(t, given) if given is not None else self.session.results.prob(t)

    def current_prob(self, t: int) -> np.ndarray:
        """(K+1, H, W) float32 padded: what frame t shows and saves."""
        pending = self.editor.pending(t)
        return pending if pending is not None else self._base(t)

    def committed(self, t: int) -> np.ndarray:
        """The session's soft result for frame t (K+1, H, W), ignoring edits and given masks."""
        return self.session.results.prob(t)

    def mask(self, t: int) -> np.ndarray:
        """(h, w) uint8 ids frame t shows at the working size (unpadded)."""
        if self.editor.pending(t) is None and t not in self._given:
            return self.session.results.mask(t)
        prob = torch.from_numpy(self.current_prob(t))
        return unpad(prob, self.session.pad).argmax(0).to(torch.uint8).numpy()

    def padded_mask(self, t: int) -> np.ndarray:
        """(H, W) uint8 ids frame t shows, at the padded size (S2M's previous mask)."""
        if self.editor.pending(t) is None and t not in self._given:
            return self.session.results.padded_mask(t)
        return self.current_prob(t).argmax(0).astype(np.uint8)

    def has_content(self, t: int) -> bool:
        return (
            self.editor.pending(t) is not None
            or t in self._given
            or self.session.results.has_prob(t)
        )

    def labels_at_source(self, t: int) -> np.ndarray:
        """Frame t's ids at the input's resolution, as saved: given masks exactly as given,
        otherwise upsampled probabilities, then arg-max."""
        exact = self._given.get(t) or self._exact.get(t)
        if exact is not None and self.editor.pending(t) is None:
            if not exact.introduces:
                return exact.source.copy()
            # _base: the merge shown while awaiting its round; the committed merge afterwards.
            labels = labels_at_size(self._base(t), self.session.pad, self.source_size)
            labels[exact.source > 0] = exact.source[exact.source > 0]
            return labels
        return labels_at_size(self.current_prob(t), self.session.pad, self.source_size)

    def probs_at_source(self, t: int) -> np.ndarray:
        return probs_at_size(self.current_prob(t), self.session.pad, self.source_size)

    def awaiting(self) -> list[int]:
        """Annotations whose round has not run to its end (edits, imports), in frame order."""
        frames = set(self.editor.pending_frames()) | set(self._given)
        return sorted(frames | set(self.provenance.awaiting()))

    def plan(self) -> RoundPlan:
        """The rounds `propagate` would run now, and how many frame visits they make."""
        order = self.awaiting()
        stops = set(self.session.interacted)
        total = 0
        for a in order:
            stops.add(a)
            after = min((f for f in stops if f > a), default=self.num_frames)
            before = max((f for f in stops if f < a), default=-1)
            total += (after - a - 1) + (a - before - 1)
        return RoundPlan(order, total)

    # ---- saving ------------------------------------------------------------------------------
    def write_failed(self, t: int, error: Exception) -> None:
        """A mask could not be written; it stays in memory until another folder is chosen."""
        if self.write_error_listener is not None:
            self.write_error_listener(t, error)

    def retarget(self, folder: Path) -> None:
        """Save to `folder` from now on; every mask so far and the project file go there too."""
        folder.mkdir(parents=True, exist_ok=True)
        self.output = folder
        if self.log is not None:
            self.log = JsonlLog(folder / self.log.path.name)
        if self.writer is not None:
            self.writer.retarget(folder)
            # Frames of earlier sittings were never submitted in this one: copy them too.
            for t in range(self.num_frames):
                if self.has_content(t):
                    self.writer.submit(t)
        self.save_state()

    def attach_writer(self, on_error: Callable[[int, Exception], None] | None = None) -> None:
        """Save every changed frame to the output folder from now on (a background MaskWriter
        writing `saved_labels`); on_error(frame, error) runs on the writer thread."""
        if self.output is None:
            raise ValueError("the project has no output folder")
        self.writer = MaskWriter(self.output, self.names, self.saved_labels, on_error=on_error)

    def saved_labels(self, t: int) -> np.ndarray:
        """(h0, w0) uint8: what is written to frame t's PNG, the person's object ids at the
        source size."""
        return self.ids.to_user(self.labels_at_source(t))

    def _save(self, t: int) -> None:
        if self.writer is not None:
            self.writer.submit(t)

    def state(self) -> ProjectState:
        """The persisted part of the project, as it is now."""
        return ProjectState(
            objects=list(self.objects),
            frame_names=list(self.names),
            provenance=self.provenance.snapshot(),
            source=self.source_path,
            frame=self.start_frame,
            rounds=self.rounds,
            gui=dict(self.gui_state),
        )

    def save_state(self) -> None:
        """Write the project file atomically (no-op without an output folder).

        A failure is logged, not raised: the masks are what matters, and the writer reports
        its own failures; the next save tries again.
        """
        if self.output is None:
            return
        with self._state_lock:
            try:
                write_state(self.output, self.state())
            except OSError as exc:
                log.warning("%s: cannot save the project state (%s)", self.output, exc)

    def remember_view(self, frame: int | None = None, **gui) -> None:
        """The GUI's current frame and choices (mode, overlay), restored on reopen."""
        if frame is not None:
            self.start_frame = frame
        self.gui_state.update(gui)
        self.save_state()

    def close(self) -> None:
        """Write the project file and every pending mask; stop the writer."""
        self.save_state()
        if self.writer is not None:
            self.writer.close()

    # ---- the person's edits (worker thread) ----------------------------------------------
    def record(self, kind: str, frame: int, **fields) -> None:
        if self.log is not None:
            self.log.append(kind=kind, frame=frame, **fields)

    def _show(self, t: int, interaction: str | None) -> None:
        """Frame t has a new edit (in the editor): it is an annotation awaiting its round.

        interaction: the kind of edit, listed in the provenance (None for undo and redo)."""
        self._given.pop(t, None)
        self._exact.pop(t, None)
        self.provenance.annotated(t, interaction)
        self._save(t)
        self.save_state()

    def apply_stroke(self, t: int, mode: str, label: int, points, brush: int) -> None:
        """A finished scribble ("scribble") or brush ("free") stroke; label 0 = background."""
        self.record(mode, t, object=label, points=len(points), local=self.local is not None)
        if self.local is not None and self.local.frame == t:
            self.local.stroke(mode, label, points, brush, self._local_image())
            return
        self.editor.stroke(t, mode, label, points, brush, self.session.image(t), self._base(t))
        self._show(t, mode)

    def apply_click(
        self,
        t: int,
        x: float,
        y: float,
        positive: bool,
        object_id: int,
        preview: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        """One f-BRS click at unpadded (x, y) for object `object_id`.

        preview: called (on this thread) with an early (h, w) uint8 id mask of frame t, as
        mask(t) would show it, where f-BRS has one before its result (a session's first click
        on the whole frame, before the flip average; not in a local region). Only for display:
        nothing is recorded or saved until the click's own result.
        """
        self.record("click", t, object=object_id, positive=positive, local=self.local is not None)
        if self.local is not None and self.local.frame == t:
            self.local.click(x, y, positive, object_id, self._local_image())
            return
        early = None
        if preview is not None:

            def early(prob: np.ndarray) -> None:
                ids = unpad(torch.from_numpy(prob), self.session.pad).argmax(0)
                preview(ids.to(torch.uint8).numpy())

        image, base = self.session.image(t), self._base(t)
        self.editor.click(t, x, y, positive, object_id, image, base, early)
        self._show(t, "click")

    def clicks(self, t: int):
        """Clicks of the live click session on frame t (or in the local region), for drawing."""
        if self.local is not None:
            return self.local.editor.clicks(0)
        return self.editor.clicks(t)

    def undo(self, t: int) -> bool:
        """Revert frame t's newest edit (or the local region's); False when there is none."""
        return self._history_step(t, redo=False)

    def redo(self, t: int) -> bool:
        return self._history_step(t, redo=True)

    def _history_step(self, t: int, redo: bool) -> bool:
        self.record("redo" if redo else "undo", t)
        if self.local is not None:
            return self.local.redo() if redo else self.local.undo()
        step = self.editor.redo if redo else self.editor.undo
        changed = step(t, self._base(t)) is not None
        if changed:
            self._show(t, None)
        return changed

    def reset_frame(self, t: int) -> None:
        self.record("reset", t)
        self.editor.reset_frame(t, self._base(t))
        self._show(t, "reset")

    def set_annotation(self, t: int, prob: np.ndarray, interaction: str) -> None:
        """Frame t's annotation made elsewhere (e.g. S2M in the DAVIS evaluation), undoably.

        prob: (K+1, H, W) or (K+1, 1, H, W) padded probabilities, background first.
        """
        prob = np.asarray(prob, dtype=np.float32).reshape(self.num_objects + 1, -1)
        prob = prob.reshape(self.num_objects + 1, *self.session.padded_size)
        self.editor.replace(t, prob, self._base(t))
        self._show(t, interaction)

    def end_interaction(self) -> None:
        """Commit button: the next strokes start a new interaction from the current mask."""
        self.editor.end_interaction()

    # ---- local control (worker thread) ---------------------------------------------------
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
        self.editor.replace(t, merged, self._base(t))
        self._show(t, "local")
        return t

    # ---- masks from files and earlier sittings -------------------------------------------
    def load_results(self, masks: dict[int, np.ndarray]) -> None:
        """Saved index masks (working size) of propagated frames become the frames' results."""
        k, pad = self.num_objects, self.session.pad
        for t, mask in masks.items():
            self.session.results.set_prob(t, index_mask_to_prob(mask, k, pad)[:, 0].numpy())

    def restore_annotation(self, t: int, labels: np.ndarray, provenance: Provenance) -> None:
        """A committed annotation of an earlier sitting back in the certain memory.

        labels: (h, w) uint8 ids at the working size (its saved mask).
        """
        prob = index_mask_to_prob(labels, self.num_objects, self.session.pad)
        self.session.restore(t, prob)
        self.provenance[t] = provenance

    def await_annotation(
        self, t: int, given: GivenMask, provenance: Provenance, save: bool = True
    ) -> None:
        """An annotation whose round has not run (an import, or an earlier sitting's edit)."""
        self._given[t] = given
        self.provenance[t] = provenance
        if save:
            self._save(t)

    def settle_tracked(self) -> None:
        """Work out, once every annotation is in place, which objects each introducing mask
        awaiting its round keeps from propagation (see GivenMask.tracked)."""
        for t, given in list(self._given.items()):
            if given.introduces and given.tracked is None:
                self._given[t] = replace(given, tracked=tuple(sorted(self._objects_before(t))))

    def import_masks(self, files: dict[int, Path]) -> list[int]:
        """Mask files (frame -> path) become annotations awaiting their round; returns frames.

        A file whose content was already imported for that frame (the project records its
        SHA-1) is skipped, so reopening with the same --masks keeps the state, and a frame the
        person corrected after importing keeps the correction. Introduce or full: see the
        module docstring. Raises MaskReadError naming a file that cannot be used.
        """
        imported = []
        voided: list[Path] = []
        size = self.session.frames.size
        for t, path in sorted(files.items()):
            sha1 = file_sha1(path)
            if self.provenance[t].sha1 == sha1:
                log.info("%s: already imported for frame %d; kept as it is", path, t)
                continue
            pair = read_mask_pair(path, size, self.source_size)
            if pair.void:
                voided.append(path)
            labels = self.ids.to_internal(pair.labels, path)
            self.import_mask(t, labels, self.ids.to_internal(pair.source, path), str(path), sha1)
            imported.append(t)
        if voided:
            # Said once for the whole import, not once per file.
            log.warning(
                "%d mask file(s) hold the value 255 (void, as in DAVIS/VOC ground truth; first: "
                "%s): those pixels are ignored (background), never an object",
                len(voided), voided[0],
            )  # fmt: skip
        if imported:
            self.save_state()
        return imported

    def import_mask(
        self,
        t: int,
        labels: np.ndarray,
        source: np.ndarray,
        file: str | None = None,
        sha1: str | None = None,
    ) -> GivenMask:
        """One given mask for frame t: labels (h, w) at the working size, source (h0, w0) as
        it is saved, both in the session's object numbers 1..K (see ObjectIds). It replaces
        any unpropagated edit of t and awaits its round."""
        introduces = () if self.full_masks else self._introduced(t, labels)
        tracked = tuple(sorted(self._objects_before(t))) if introduces else None
        given = GivenMask(labels, source, introduces, tracked)
        self.editor.discard(t)
        self._exact.pop(t, None)
        user_ids = tuple(self.ids.user(k) for k in introduces)
        prov = Provenance("imported", file=file, sha1=sha1, introduces=user_ids)
        self.await_annotation(t, given, prov)
        return given

    def _objects_before(self, t: int) -> set[int]:
        """Object ids present in the annotations of frames before t."""
        earlier: set[int] = set()
        for f in range(t):
            if self.provenance[f].is_annotation:
                earlier |= {int(i) for i in np.unique(self.mask(f)) if i != 0}
        return earlier

    def _introduced(self, t: int, labels: np.ndarray) -> tuple[int, ...]:
        """The ids `labels` introduces at t: all of them when none is annotated before t."""
        ids = {int(i) for i in np.unique(labels) if i != 0}
        earlier = self._objects_before(t)
        if not earlier or not ids or ids & earlier:
            return ()
        return tuple(sorted(ids))

    # ---- rounds (worker thread) ----------------------------------------------------------
    def round(
        self,
        t: int,
        cancel: threading.Event | None = None,
        on_frame: Callable[[int], None] | None = None,
        final: Callable[[int], bool] | None = None,
        deferred: set[int] | None = None,
    ) -> bool:
        """One round at frame t: commit its annotation, propagate, save. True if not cancelled.

        The annotation is the person's pending edit, else the given mask, else (a round an
        error or a crash interrupted) the committed result. `on_frame(f)` after each
        propagated frame. A frame for which `final(f)` is false (a later round of the same
        Propagate will change it) is not saved now but added to `deferred`; without
        `deferred` it is saved when the round ends. On success, cancel or an exception, every
        frame is saved or deferred and the project file written before returning or raising.
        A cancelled round keeps what it did and is over; one that raised runs again at the
        next Propagate (its annotation still awaits). Raises NothingToPropagate when t holds
        no annotation.
        """
        if t not in self.awaiting() and not self.provenance[t].is_annotation:
            raise NothingToPropagate(f"frame {t} is not annotated; edit it first")
        prob = self.current_prob(t)
        self.rounds += 1
        number = self.rounds
        self.record("propagate", t, round=number)
        self.session.commit(t, torch.from_numpy(prob).unsqueeze(1))
        self.editor.committed(t)
        given = self._given.pop(t, None)
        if given is not None:
            self._exact[t] = given
        self.provenance.committed(t, number)
        self._save(t)
        if deferred is not None:
            deferred.discard(t)  # an earlier round's pass ran through it: saved now, as given
        self.save_state()  # a crash from here on: reopening restores t and reruns its round
        unsaved: set[int] = set() if deferred is None else deferred
        try:
            for f in self.session.propagate(t, cancel):
                self.provenance.propagated(f, number)
                if final is None or final(f):
                    self._save(f)
                    unsaved.discard(f)
                else:
                    unsaved.add(f)
                if on_frame is not None:
                    on_frame(f)
            self.provenance.finished(t)
        finally:
            if deferred is None:
                for f in sorted(unsaved):
                    self._save(f)
            self.save_state()
        return cancel is None or not cancel.is_set()

    def propagate(
        self,
        cancel: threading.Event | None = None,
        on_frame: Callable[[int, int, int], None] | None = None,
    ) -> bool:
        """Run the round of every awaiting annotation, in frame order; True if not cancelled.

        on_frame(frame, visits done, visits planned). Each frame is saved once, at its last
        visit (frames a later round revisits are saved when the last round ends, or at a
        cancel or an exception). Raises NothingToPropagate when no frame awaits. This is what
        the GUI's Propagate and the headless command run.
        """
        plan = self.plan()
        if not plan.frames:
            raise NothingToPropagate(
                "nothing to propagate: no frame has a new edit or an imported mask; edit a frame"
            )
        done = 0

        def visited(f: int) -> None:
            nonlocal done
            done += 1
            if on_frame is not None:
                on_frame(f, done, plan.total)

        deferred: set[int] = set()
        try:
            for i, a in enumerate(plan.frames):
                if cancel is not None and cancel.is_set():
                    return False
                last = i == len(plan.frames) - 1
                # A later round's backward pass re-fuses the frames between a and the next
                # annotation: only frames before a, or every frame in the last round, are final.
                final = (lambda f: True) if last else (lambda f, a=a: f < a)
                if not self.round(a, cancel, visited, final, deferred):
                    return False
            return True
        finally:
            for f in sorted(deferred):
                self._save(f)

    # ---- exports (worker thread) ---------------------------------------------------------
    def export(
        self,
        kind: str,
        path: str | Path,
        cancel: threading.Event | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> str:
        """Write an export of every frame; returns the one-line report for the person.

        kind: "binary" | "alpha" (alias "soft") | "overlay" (alias "video") | "coco" (see
        workflow/export.py); binary and alpha write one folder per object id under `path`,
        overlay a video at self.fps (frames per second) at the working resolution, coco a
        JSON file. A file name without its extension gets one (".mp4", ".json":
        export.export_path). progress(done, total) after each frame; `cancel` is checked
        between frames. Masks are the source-resolution ones that are saved, with the
        person's object ids. Raises ValueError for an unknown kind, OSError when the files
        cannot be written.
        """
        kind = export.canonical_kind(kind)
        target = export.export_path(kind, path)
        names, objects, count = self.names, self.objects, self.num_frames
        note = self._unmasked_note()
        opts = {"cancel": cancel, "progress": progress}
        if kind == "binary":
            n = export.export_binary_masks(target, names, objects, self.labels_at_source, **opts)
            what, unit = "binary masks", "files"
            done = n == count * len(objects)
        elif kind == "alpha":
            n = export.export_alpha_masks(target, names, objects, self.probs_at_source, **opts)
            what, unit = "alpha mattes", "files"
            done = n == count * len(objects)
        elif kind == "coco":
            n = export.export_coco_rle(target, names, objects, self.labels_at_source, **opts)
            what, unit = "COCO RLE annotations", "frames"
            done = n == count
        else:
            frames = self.session.frames

            def overlay(t: int) -> np.ndarray:
                return overlay_davis(frames.get(t), self.mask(t))

            video = export.export_overlay_video(
                target, frames.get, count, self.fps, overlay=overlay, **opts
            )
            if video.frames < count:
                return f"Overlay video export cancelled after {video.frames} of {count} frames."
            return (
                f"Exported the overlay video to {target} ({video.frames} frames, "
                f"{video.fps:g} fps, {video.describe()}).{note}"
            )
        if not done:
            if n == 0:
                return f"Export of {what} to {target} cancelled: nothing was written."
            return f"Export of {what} to {target} cancelled ({n} {unit} written)."
        return f"Exported {what} to {target} ({n} {unit}).{note}"

    def _unmasked_note(self) -> str:
        """Says how many frames have no mask yet (exported empty), rather than nothing."""
        missing = [t for t in range(self.num_frames) if not self.has_content(t)]
        if not missing:
            return ""
        first = self.names[missing[0]]
        return (
            f" {len(missing)} frame{'s' if len(missing) != 1 else ''} have no mask (never "
            f"propagated, first: {first}) and were exported empty."
        )
