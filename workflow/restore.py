"""Reopening a project from its output folder: saved masks, project file, mask files to import.

Used by the GUI's start-up and the headless command alike (open_project.py, headless.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from inference_core.frame_base import FrameSource
from util.jsonl_log import JsonlLog
from util.mask_io import MaskReadError, list_mask_files, read_index_mask
from workflow.mask_files import match_masks_to_frames, read_mask_pair
from workflow.project import GivenMask, Project
from workflow.provenance import Provenance
from workflow.state import LOG_FILE, ProjectState, default_objects, legacy_annotations, read_state

log = logging.getLogger(__name__)


@dataclass
class Existing:
    """What an output folder already holds for these frames."""

    state: ProjectState | None
    masks: dict[int, Path]  # frame -> saved mask file


def scan_output(output: Path, frames: FrameSource) -> Existing:
    """The project file (StateError if damaged) and the saved masks matched to the frames."""
    if not output.is_dir():
        return Existing(None, {})
    state = read_state(output, frames.names)
    masks = match_masks_to_frames(list_mask_files(output), frames.names)
    return Existing(state, masks)


def project_object_count(folder: Path, frames: FrameSource) -> int:
    """The object count of the project saved in `folder` (0 when there is none or it is unusable:
    a --masks folder is read for its masks, its project file is only a hint)."""
    try:
        state = read_state(folder, frames.names)
    except ValueError:
        return 0
    return state.num_objects if state is not None else 0


def mask_files(folder: Path, frames: FrameSource) -> dict[int, Path]:
    """Frame -> mask file of a --masks folder (FileNotFoundError when it does not exist)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: mask folder not found")
    return match_masks_to_frames(list_mask_files(folder), frames.names)


def _max_id(files: dict[int, Path]) -> tuple[int, Path | None]:
    best, where = 0, None
    for path in files.values():
        found = int(read_index_mask(path).max())
        if found > best:
            best, where = found, path
    return best, where


def resolve_num_objects(
    requested: int | None, existing: Existing, imports: dict[int, Path], imported_count: int = 0
) -> int:
    """--num_objects, else the project's count (or that of the project the imported masks come
    from, `imported_count`), else the largest id in the masks, else 1.

    Raises MaskReadError naming a file that holds an id above the count.
    """
    saved_count = existing.state.num_objects if existing.state is not None else 0
    saved_count = max(saved_count, imported_count)
    # Reading every saved mask only when no project file says how many objects there are.
    scan = dict(imports) if saved_count else {**existing.masks, **imports}
    found, where = _max_id(scan)
    count = requested or max(found, saved_count, 1)
    if found > count:
        raise MaskReadError(where, f"holds object id {found} but --num_objects is {count}")
    return count


def _saved_pair(project: Project, path: Path) -> tuple[np.ndarray, np.ndarray]:
    size = project.session.frames.size
    return read_mask_pair(path, size, project.source_size, project.num_objects)


def _only(ids: tuple[int, ...], mask: np.ndarray) -> np.ndarray:
    return np.where(np.isin(mask, ids), mask, 0).astype(np.uint8)


def restore(project: Project, existing: Existing, recompute: bool = False) -> None:
    """Bring the project back to the state it was saved in.

    Committed annotations go back into the certain memory (encoded from their saved masks),
    oldest round first; annotations whose round never ran await it again; propagated frames
    become results. recompute=True (the headless command) instead makes every annotation
    await its round and loads no propagated result, so every frame is computed afresh from
    the annotations. Without a project file, saved masks are propagated results; a first-
    release session recovers its annotations from interactions.jsonl.
    """
    state = existing.state
    provenance = list(state.provenance) if state is not None else []
    if state is not None and state.legacy and project.output is not None:
        recovered = legacy_annotations(JsonlLog(project.output / LOG_FILE).read(), len(provenance))
        for t, prov in recovered.items():
            provenance[t] = prov
    if state is not None:
        project.rounds = state.rounds
        project.start_frame = state.frame
        project.gui_state = dict(state.gui)
        count = project.num_objects
        objects = state.objects[:count]
        project.objects = objects + default_objects(count)[len(objects) :]
    committed: list[tuple[int, int, Provenance]] = []
    for t, path in sorted(existing.masks.items()):
        prov = provenance[t] if provenance else Provenance("propagated", round=0, done=True)
        if prov.kind == "empty":
            prov = Provenance("propagated", round=0, done=True)
        if not prov.is_annotation:
            if not recompute:
                labels, _ = _saved_pair(project, path)
                project.load_results({t: labels})
                project.provenance[t] = prov
            continue
        if prov.round is not None and not recompute:
            committed.append((prov.round, t, prov))
            continue
        labels, source = _saved_pair(project, path)
        if prov.introduces:
            labels, source = _only(prov.introduces, labels), _only(prov.introduces, source)
        prov = replace(prov, round=None, done=False)
        project.await_annotation(t, GivenMask(labels, source, prov.introduces), prov, save=False)
    for _, t, prov in sorted(committed):
        labels, _ = _saved_pair(project, existing.masks[t])
        project.restore_annotation(t, labels, prov)
    project.settle_tracked()
    missing = [t for t, p in enumerate(provenance) if p.is_annotation and t not in existing.masks]
    for t in missing:
        log.warning(
            "%s: the annotation of frame %s has no mask file any more; the frame is empty",
            project.output, project.names[t],
        )  # fmt: skip
