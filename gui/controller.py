"""The application's state machine: what the person is doing, and who does the work.

Widgets emit intents; the controller turns them into worker jobs and emits state signals that
widgets render. It never touches a widget and never blocks: jobs run on the worker thread.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

import numpy as np
from PyQt5.QtCore import (
    QCoreApplication,
    QEventLoop,
    QObject,
    Qt,
    QThread,
    QTimer,
    pyqtSignal,
)

from gui.console import Timers
from gui.display import StrokePreview, compose
from gui.jobs import (
    AddObjectJob,
    ClickJob,
    CommitJob,
    EnterLocalJob,
    ExportJob,
    FinishLocalJob,
    PropagateJob,
    ResetJob,
    ShutdownJob,
    StrokeJob,
    UndoJob,
)
from gui.worker import InferenceWorker
from inference_core.frame_base import FrameReadError
from interact.local_region import clamp_box
from util.memory import memory_summary
from workflow.overlay import OVERLAY_MODES, minimap_crop
from workflow.project import Project

log = logging.getLogger(__name__)

SCRIBBLE_THICKNESS = 3


def _duration(seconds: float) -> str:
    """A rough, readable duration: "40 s", "3 min"."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


class AppController(QObject):
    frame_changed = pyqtSignal(int)
    object_changed = pyqtSignal(int)
    mode_changed = pyqtSignal(str)
    brush_changed = pyqtSignal(int)
    busy_changed = pyqtSignal(bool)
    history_changed = pyqtSignal(bool, bool)  # can undo, can redo (current frame)
    progress_changed = pyqtSignal(int, int)  # done, total
    display_changed = pyqtSignal()
    message = pyqtSignal(str)
    error = pyqtSignal(str)
    playing_changed = pyqtSignal(bool)
    status_changed = pyqtSignal(str)
    provenance_changed = pyqtSignal(list, set)  # kind per frame, frames awaiting their round
    local_changed = pyqtSignal(bool)
    export_done = pyqtSignal()
    write_failed = pyqtSignal(str)  # emitted from the writer thread; queued to the GUI
    objects_changed = pyqtSignal()  # added, renamed or hidden: the panel redraws its list
    offer_object = pyqtSignal(int)  # an object key past the count was pressed
    job_status = pyqtSignal(str, bool)  # what runs now ("Idle" when nothing), a result pending
    _submit = pyqtSignal(object)

    def __init__(
        self, project: Project, s2m_available: bool = True, clicks_available: bool = False
    ) -> None:
        super().__init__()
        self.project = project
        self.num_objects = project.num_objects
        self.num_frames = project.num_frames
        self.frame = project.start_frame
        self.object = 1
        self.mode = "click" if clicks_available else ("scribble" if s2m_available else "free")
        self.clicks_available = clicks_available
        self.s2m_available = s2m_available
        self.brush = 3
        self.overlay = "davis"
        # The mode and overlay of the last sitting, where still possible.
        saved_mode = project.gui_state.get("mode")
        if saved_mode == "free" or (saved_mode == "scribble" and s2m_available):
            self.mode = saved_mode
        elif saved_mode == "click" and clicks_available:
            self.mode = saved_mode
        if project.gui_state.get("overlay") in OVERLAY_MODES:
            self.overlay = project.gui_state["overlay"]
        self.busy = False
        self.follow = True  # the view follows propagation until the person navigates
        self.timers = Timers()
        self._stroke: StrokePreview | None = None
        self._strokes: list[StrokePreview] = []  # shown scribbles of the live interaction
        self._cursor: tuple[float, float] | None = None
        self._selection: list[float] | None = None  # x0, y0, x1, y1 while Ctrl-dragging
        self.local_box: tuple[int, int, int, int] | None = None  # y0, y1, x0, x1
        self._unreadable: set[int] = set()  # frames whose file could not be read (reported)
        # (frame, ids) a running click showed early (f-BRS' first click, before its flip
        # average): shown until the click's own result arrives; never saved
        self._preview: tuple[int, np.ndarray] | None = None
        # What each queued or running job is doing, oldest first (the worker runs them in
        # order): the status says the truth from the moment a job is queued until it ends.
        self._jobs: deque[str] = deque()
        self._propagation_started: float | None = None
        self._thread = QThread()
        self._thread.setObjectName("inference-worker")
        self.worker = InferenceWorker(project)
        self.worker.moveToThread(self._thread)
        self._submit.connect(self.worker.run, Qt.QueuedConnection)
        self.worker.edited.connect(self._on_edited)
        self.worker.click_preview.connect(self._on_click_preview)
        self.worker.progress.connect(self._on_progress)
        self.worker.propagation_started.connect(self._on_propagation_started)
        self.worker.propagation_finished.connect(self._on_propagation_finished)
        self.worker.nothing_to_propagate.connect(self._on_nothing_to_propagate)
        self.worker.export_finished.connect(self._on_export_finished)
        self.worker.export_progress.connect(self.progress_changed)
        self.worker.failed.connect(self._on_failed)
        self.worker.job_done.connect(self._on_job_done)
        self.worker.object_added.connect(self._on_object_added)
        self._thread.start()
        self._play_timer = QTimer(self)
        self._play_timer.setInterval(40)
        self._play_timer.timeout.connect(self._play_step)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(2000)
        self._status_timer.timeout.connect(self._emit_status)
        self._status_timer.start()
        # The current frame is remembered for a resume, written once navigation settles.
        self._state_timer = QTimer(self)
        self._state_timer.setSingleShot(True)
        self._state_timer.setInterval(500)
        self._state_timer.timeout.connect(self._save_state)
        project.write_error_listener = lambda t, exc: self.write_failed.emit(str(exc))

    # ---- what the canvas shows
    def _frame_image(self) -> np.ndarray:
        """The current frame; a grey stand-in (and one message) when its file cannot be read."""
        try:
            return self.project.session.frames.get(self.frame)
        except FrameReadError as exc:
            if self.frame not in self._unreadable:
                self._unreadable.add(self.frame)
                # Queued: a dialog opened while painting would re-enter this paint.
                text = str(exc)
                QTimer.singleShot(0, lambda: self.error.emit(text))
            h, w = self.project.session.frames.size
            return np.full((h, w, 3), 128, np.uint8)

    def composed(self) -> np.ndarray:
        frame = self._frame_image()
        local = self.project.local
        if self.local_box is not None and local is not None:
            frame, mask = local.crop_image(frame), local.labels()
        elif self._preview is not None and self._preview[0] == self.frame:
            mask = self._preview[1]
        else:
            mask = self.project.mask(self.frame)
        hidden = [k for k, o in enumerate(self.project.objects, start=1) if o.hidden]
        if hidden:  # shown as background; the saved masks keep them
            mask = np.where(np.isin(mask, hidden), 0, mask).astype(np.uint8)
        strokes = self._strokes + ([self._stroke] if self._stroke else [])
        radius = self.brush // 2 + 1 if self.mode == "free" else 2
        return compose(
            frame, mask, self.overlay, self.num_objects, strokes, self._cursor, radius,
            self.object, self._selection, self.project.clicks(self.frame),
        )  # fmt: skip

    def minimap(self, image: np.ndarray, zoom_px: int) -> np.ndarray:
        cx, cy = self._cursor or (image.shape[1] / 2, image.shape[0] / 2)
        return minimap_crop(image, int(cx), int(cy), zoom_px)

    # ---- navigation
    def set_frame(self, t: int, from_user: bool = True) -> None:
        t = int(min(max(t, 0), self.num_frames - 1))
        if from_user:
            self.timers.start()
            self.follow = False
        if t == self.frame or self.local_box is not None:
            return
        self.frame = t
        self._state_timer.start()
        self._strokes.clear()
        self._stroke = None
        self.frame_changed.emit(t)
        self._emit_history()
        self.display_changed.emit()

    def step(self, delta: int) -> None:
        self.set_frame(self.frame + delta)

    def toggle_play(self) -> None:
        if self._play_timer.isActive():
            self._play_timer.stop()
        else:
            self._play_timer.start()
        self.playing_changed.emit(self._play_timer.isActive())

    def _play_step(self) -> None:
        self.set_frame((self.frame + 1) % self.num_frames)

    # ---- tools
    def set_object(self, k: int) -> None:
        if 1 <= k <= self.num_objects and k != self.object:
            self.object = k
            self.object_changed.emit(k)
            self.message.emit(f"Current object changed to {k}!")
            self.display_changed.emit()

    def select_object_key(self, k: int) -> None:
        """Object key k: select object k, or offer to add one when there are fewer."""
        if k <= self.num_objects:
            self.set_object(k)
        else:
            self.offer_object.emit(k)

    def add_object(self, name: str | None = None) -> None:
        """Queue adding an object (not during a propagation or local control)."""
        if self.busy or self.local_box is not None:
            self.message.emit("Objects can be added once the propagation or local control ends.")
            return
        self._queue(AddObjectJob(name), "Adding an object…")

    def _on_object_added(self, k: int) -> None:
        self.num_objects = k
        self.objects_changed.emit()
        info = self.project.objects[k - 1]
        self.message.emit(f"Added object {info.id} ({info.name}); press {k} to select it."
                          if k <= 9 else f"Added object {info.id} ({info.name}).")  # fmt: skip
        self.set_object(k)
        self.display_changed.emit()

    def rename_object(self, k: int, name: str) -> None:
        name = name.strip()
        if name and 1 <= k <= self.num_objects:
            self.project.rename_object(k, name)
            self.objects_changed.emit()

    def set_object_hidden(self, k: int, hidden: bool) -> None:
        if 1 <= k <= self.num_objects and self.project.objects[k - 1].hidden != hidden:
            self.project.set_hidden(k, hidden)
            self.display_changed.emit()

    def set_mode(self, mode: str) -> None:
        if mode != self.mode:
            self.mode = mode
            if mode != "free":
                self.set_brush(3)
            self.mode_changed.emit(mode)
            self._state_timer.start()

    def set_brush(self, size: int) -> None:
        size = int(min(max(size, 1), 100))
        if size != self.brush:
            self.brush = size
            self.brush_changed.emit(size)
            self.display_changed.emit()

    def wheel(self, steps: int) -> None:
        if self.mode == "free":
            self.set_brush(self.brush + steps)
        self.display_changed.emit()

    def set_overlay(self, mode: str) -> None:
        self.overlay = mode
        self._state_timer.start()
        self.display_changed.emit()

    # ---- mouse
    def press(self, x: float, y: float, button: int, ctrl: bool = False) -> None:
        self.timers.start()
        self._cursor = (x, y)
        if self.busy:
            self.message.emit("Propagating: editing is disabled (Esc cancels).")
            return
        if ctrl and button == int(Qt.LeftButton) and self.local_box is None:
            self._selection = [x, y, x, y]  # choosing a local-control region
            self.display_changed.emit()
            return
        if self.mode == "click":
            return  # a click is sent on release, like the original
        label = self.object if button == int(Qt.LeftButton) else 0
        thickness = SCRIBBLE_THICKNESS if self.mode == "scribble" else self.brush
        self._stroke = StrokePreview(label, thickness, [(x, y)])
        self.display_changed.emit()

    def move(self, x: float, y: float) -> None:
        self._cursor = (x, y)
        if self._selection is not None:
            self._selection[2:] = [x, y]
        if self._stroke is not None:
            self._stroke.points.append((x, y))
        self.display_changed.emit()

    def release(self, x: float, y: float, button: int) -> None:
        if self._selection is not None:
            self._enter_local(x, y)
            return
        if self.mode == "click" and not self.busy:
            self.timers.pause_user()
            positive = button == int(Qt.LeftButton)
            self._queue(ClickJob(self.frame, x, y, positive, self.object), "Click: refining…")
            return
        stroke, self._stroke = self._stroke, None
        if stroke is None:
            return
        stroke.points.append((x, y))
        self.timers.pause_user()
        if self.mode == "scribble":
            self._strokes.append(stroke)
        pts = tuple(stroke.points)
        job = StrokeJob(self.frame, self.mode, stroke.label, pts, self.brush)
        self._queue(job, self._stroke_status())
        self.display_changed.emit()

    # ---- buttons
    def undo(self, redo: bool = False) -> None:
        if self.busy:
            return
        if not redo and self.mode == "scribble" and self._strokes:
            self._strokes.pop()
        self._queue(UndoJob(self.frame, redo), "Redo…" if redo else "Undo…")

    def reset_frame(self) -> None:
        if not self.busy:
            self._strokes.clear()
            self._queue(ResetJob(self.frame), "Resetting the frame…")

    def commit(self) -> None:
        self._strokes.clear()
        self._queue(CommitJob(), "Committing…")
        self.display_changed.emit()

    # ---- local control
    def _enter_local(self, x: float, y: float) -> None:
        x0, y0, _, _ = self._selection
        self._selection = None
        box = clamp_box(x0, y0, x, y, self.project.session.frames.size)
        if box is None:
            self.message.emit("Local region too small; Ctrl+drag a bigger box.")
        else:
            self.local_box = box
            self._strokes.clear()
            self._queue(EnterLocalJob(self.frame, box), "Local control: preparing the region…")
            self.local_changed.emit(True)
        self.display_changed.emit()

    def finish_local(self) -> None:
        if self.local_box is not None:
            self._strokes.clear()
            self._queue(FinishLocalJob(), "Local control: pasting the region back…")
            self.local_box = None
            self.local_changed.emit(False)

    def propagate(self) -> None:
        # What to propagate is decided on the worker, after the edits queued before this job
        # (a stroke released just before Ctrl+Return is still queued here).
        if self.busy or self.local_box is not None:
            return
        self.timers.pause_user()
        self._strokes.clear()
        self.busy = True
        self.follow = True
        self.worker.cancel.clear()
        self.busy_changed.emit(True)
        self._propagation_started = None
        self._queue(PropagateJob(self.frame), "Propagating…")

    def cancel(self) -> None:
        if self.busy:
            self.worker.cancel.set()  # read by the worker between frames
            self.message.emit("Cancelling...")
            self._set_front("Cancelling…")

    def export(self, kind: str, path: str) -> None:
        self.worker.cancel.clear()
        self.message.emit(f"Exporting {kind} to {path}...")
        self._queue(ExportJob(kind, path), f"Exporting {kind}…")

    # ---- what runs: one status line per queued job
    def _queue(self, job: object, status: str) -> None:
        self._jobs.append(status)
        self._emit_job_status()
        self._submit.emit(job)

    def _stroke_status(self) -> str:
        if self.mode == "scribble":
            k = self.num_objects
            return f"Scribble → mask ({k} object{'s' if k != 1 else ''})…"
        return "Brush: updating the mask…"

    def _set_front(self, status: str) -> None:
        if self._jobs:
            self._jobs[0] = status
            self._emit_job_status()

    def _on_job_done(self) -> None:
        if self._jobs:
            self._jobs.popleft()
        self._emit_job_status()
        self._drop_preview()  # a failed click leaves the frame as it was

    def _on_click_preview(self, t: int, ids: np.ndarray) -> None:
        self._preview = (t, ids)
        self._set_front("Click: preview shown, refining…")  # fits the status box
        if t == self.frame:
            self.display_changed.emit()

    def _drop_preview(self) -> None:
        if self._preview is not None:
            self._preview = None
            self.display_changed.emit()

    def _emit_job_status(self) -> None:
        pending = len(self._jobs)
        if not pending:
            self.job_status.emit("Idle", False)
            return
        more = f" (+{pending - 1} queued)" if pending > 1 else ""
        self.job_status.emit(self._jobs[0] + more, True)

    # ---- worker results
    def _on_edited(self, t: int, what: str) -> None:
        self._preview = None  # the click's own result replaces its early one
        self.timers.resume_user()
        if what:
            self.message.emit(what)
        self.emit_provenance()
        if t == self.frame:
            if self.mode == "free":
                self._strokes.clear()
            self._emit_history()
            self.display_changed.emit()

    def _on_progress(self, t: int, done: int, total: int) -> None:
        self.progress_changed.emit(done, total)
        now = time.monotonic()
        if self._propagation_started is None or done <= 1:
            # The first frame includes warm-up (encoders, caches): time the rest from here.
            self._propagation_started = now
            text = f"Propagating {done} / {total}…"
        else:
            per_frame = (now - self._propagation_started) / (done - 1)
            text = f"Propagating {done} / {total}, ~{_duration(per_frame * (total - done))} left"
        if not self.worker.cancel.is_set():  # "Cancelling…" stays until the job ends
            self._set_front(text)
        if done % 10 == 1 or done == total:  # the strip need not follow every frame
            self.emit_provenance()
        if self.follow:
            self.set_frame(t, from_user=False)
        elif t == self.frame:
            self.display_changed.emit()

    def _on_propagation_started(self, frames: list) -> None:
        where = ", ".join(str(f) for f in frames[:8]) + ("..." if len(frames) > 8 else "")
        self.message.emit(f"Propagation started from frame(s) {where}.")
        self.emit_provenance()

    def _on_nothing_to_propagate(self, why: str) -> None:
        self.busy = False
        self.timers.resume_user()
        self.busy_changed.emit(False)
        self.message.emit(f"Nothing to propagate: {why}")

    def _on_propagation_finished(self, t: int, cancelled: bool) -> None:
        self.busy = False
        self.timers.resume_user()
        self.busy_changed.emit(False)
        self.message.emit("Propagation cancelled." if cancelled else "Propagation finished!")
        self.emit_provenance()
        self._emit_history()
        self.display_changed.emit()

    def _on_export_finished(self, what: str) -> None:
        self.message.emit(what)
        self.export_done.emit()

    def _on_failed(self, what: str) -> None:
        self.timers.resume_user()
        self.error.emit(what)
        self.display_changed.emit()

    def emit_provenance(self) -> None:
        kinds = [p.kind for p in self.project.provenance.snapshot()]
        self.provenance_changed.emit(kinds, set(self.project.awaiting()))

    def _emit_history(self) -> None:
        local = self.project.local
        editor, t = (local.editor, 0) if local is not None else (self.project.editor, self.frame)
        self.history_changed.emit(editor.can_undo(t), editor.can_redo(t))

    def _emit_status(self) -> None:
        self.status_changed.emit(memory_summary(self.project.session.device))

    def _save_state(self) -> None:
        self.project.remember_view(frame=self.frame, mode=self.mode, overlay=self.overlay)

    def save_to(self, folder: str) -> None:
        """Switch the output folder (e.g. the first one is read-only or full)."""
        self.project.retarget(Path(folder))
        self._save_state()
        self.message.emit(f"Masks are now saved to {folder}")

    # ---- shutdown
    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop the worker (cancelling a propagation) and write every pending mask."""
        self._play_timer.stop()
        self._status_timer.stop()
        self._state_timer.stop()
        self._save_state()
        self.worker.cancel.set()
        # Queued edits still run (nothing the person did is dropped); then the thread stops.
        self._submit.emit(ShutdownJob())
        # Wait for the jobs queued before (a click can take seconds) while still painting:
        # a frozen window with a menu drawn open looked like a crash.
        deadline = time.monotonic() + timeout_ms / 1000
        while not self._thread.wait(50) and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ExcludeUserInputEvents, 50)
        self.project.close()
