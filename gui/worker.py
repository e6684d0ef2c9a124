"""The one thread that runs networks: interactions, propagation and exports.

Jobs arrive through a queued signal, in order. Grad mode and autocast are thread-local, so the
worker enters the inference context itself, per job. Cancel is a threading.Event the GUI sets
directly: a queued signal would wait until propagation ended.
"""

from __future__ import annotations

import logging
import threading

from PyQt5.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

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
from util.device import inference_context
from workflow.project import Project

log = logging.getLogger(__name__)


class InferenceWorker(QObject):
    edited = pyqtSignal(int, str)  # frame, what happened
    click_preview = pyqtSignal(int, object)  # frame, early (h, w) uint8 ids of a slow click
    progress = pyqtSignal(int, int, int)  # frame just finished, done, total
    propagation_started = pyqtSignal(list)  # the annotated frames whose rounds run, in order
    propagation_finished = pyqtSignal(int, bool)  # frame propagated from, cancelled
    nothing_to_propagate = pyqtSignal(str)  # why (no frame awaits its round)
    export_finished = pyqtSignal(str)  # message
    export_progress = pyqtSignal(int, int)  # done, total
    failed = pyqtSignal(str)
    object_added = pyqtSignal(int)  # the new object's number in the session (1..K)
    job_done = pyqtSignal()  # after every job, however it ended (the GUI's status follows)

    def __init__(self, project: Project) -> None:
        super().__init__()
        self.project = project
        self.cancel = threading.Event()

    @pyqtSlot(object)
    def run(self, job: object) -> None:
        try:
            session = self.project.session
            with inference_context(session.device, session.nets.precision.autocast):
                self._dispatch(job)
        except Exception as exc:  # noqa: BLE001 - report at the thread boundary, keep running
            log.exception("job %r failed", job)
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            if isinstance(job, PropagateJob):
                self.propagation_finished.emit(job.frame, True)
        finally:
            self.job_done.emit()

    def _dispatch(self, job: object) -> None:
        project = self.project
        if isinstance(job, StrokeJob):
            project.apply_stroke(job.frame, job.mode, job.label, list(job.points), job.brush)
            self.edited.emit(
                job.frame, f"Interaction {job.mode.capitalize()} at frame {job.frame}."
            )
        elif isinstance(job, ClickJob):
            frame = job.frame

            def preview(ids) -> None:  # f-BRS' early result, shown until the click's own
                self.click_preview.emit(frame, ids)

            project.apply_click(frame, job.x, job.y, job.positive, job.target, preview)
            self.edited.emit(frame, f"Interaction Click at frame {frame}.")
        elif isinstance(job, UndoJob):
            changed = project.redo(job.frame) if job.redo else project.undo(job.frame)
            what = "Redo" if job.redo else "Undo"
            self.edited.emit(job.frame, f"{what} at frame {job.frame}." if changed else "")
        elif isinstance(job, ResetJob):
            project.reset_frame(job.frame)
            self.edited.emit(job.frame, f"Frame {job.frame} reset.")
        elif isinstance(job, ShutdownJob):
            QThread.currentThread().quit()
        elif isinstance(job, EnterLocalJob):
            project.enter_local(job.frame, job.box)
            self.edited.emit(job.frame, "Entered local control.")
        elif isinstance(job, FinishLocalJob):
            self.edited.emit(project.finish_local(), "Finished local control.")
        elif isinstance(job, AddObjectJob):
            project.add_object(job.name)
            self.object_added.emit(project.num_objects)
        elif isinstance(job, CommitJob):
            project.end_interaction()
        elif isinstance(job, PropagateJob):
            self._propagate(job.frame)
        elif isinstance(job, ExportJob):
            report = project.export(job.kind, job.path, self.cancel, self.export_progress.emit)
            self.export_finished.emit(report)
        else:
            raise TypeError(f"unknown job {job!r}")

    def _propagate(self, t: int) -> None:
        # The rounds themselves (commit, propagate, save, provenance) are the project's.
        plan = self.project.plan()
        if not plan.frames:
            self.nothing_to_propagate.emit(
                "no frame has a new edit or an imported mask. Edit a frame first."
            )
            return
        self.propagation_started.emit(plan.frames)
        finished = self.project.propagate(self.cancel, self.progress.emit)
        self.propagation_finished.emit(t, not finished)
