"""Driving the workflow's Project from tests on in-memory frames."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from inference_core.session import Session
from interact.frame_editor import FrameEditor
from workflow.project import Project


def project_for(session: Session, **kwargs) -> Project:
    """A project without an output folder around `session` (no S2M, no clicks)."""
    editor = FrameEditor(session.num_objects, session.frames.size, session.pad)
    return Project(session, editor, **kwargs)


def propagate_masks(
    session: Session, masks: Mapping[int, np.ndarray], full_masks: bool = True
) -> list[int]:
    """Import (h, w) index masks as annotations and run every round; the frames visited."""
    project = project_for(session, full_masks=full_masks)
    for t, mask in sorted(masks.items()):
        project.import_mask(t, mask, mask)
    seen: list[int] = []
    project.propagate(on_frame=lambda f, done, total: seen.append(f))
    return seen
