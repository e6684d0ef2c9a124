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
from workflow.mask_files import match_masks_to_frames, object_ids, read_mask_pair
from workflow.project import GivenMask, Project
from workflow.provenance import Provenance
from workflow.state import LOG_FILE, STATE_FILE, ProjectState, legacy_annotations, read_state

log = logging.getLogger(__name__)


@dataclass
class Existing:
    """What an output folder already holds for these frames."""

    state: ProjectState | None
    masks: dict[int, Path]  # frame -> saved mask file
    folder: Path | None = None


def scan_output(output: Path, frames: FrameSource) -> Existing:
    """The project file (StateError if damaged) and the saved masks matched to the frames."""
    if not output.is_dir():
        return Existing(None, {}, output)
    state = read_state(output, frames.names)
    masks = match_masks_to_frames(list_mask_files(output), frames.names)
    return Existing(state, masks, output)


def project_object_ids(folder: Path, frames: FrameSource) -> list[int]:
    """The object ids of the project saved in `folder` ([] when there is none or it is unusable:
    a --masks folder is read for its masks, its project file is only a hint)."""
    try:
        state = read_state(folder, frames.names)
    except ValueError:
        return []
    return [o.id for o in state.objects] if state is not None else []


def mask_files(folder: Path, frames: FrameSource) -> dict[int, Path]:
    """Frame -> mask file of a --masks folder (FileNotFoundError when it does not exist)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: mask folder not found")
    return match_masks_to_frames(list_mask_files(folder), frames.names)


def _ids_in(files: dict[int, Path]) -> dict[int, Path]:
    """Object id -> the first file holding it (void and background aside)."""
    found: dict[int, Path] = {}
    for _, path in sorted(files.items()):
        for k in sorted(object_ids(read_index_mask(path))):
            found.setdefault(k, path)
    return found


def resolve_object_ids(
    requested: int | None, existing: Existing, imports: dict[int, Path], hint: list[int] = ()
) -> list[int]:
    """The project's object ids (the values its mask files use), ascending.

    --num_objects N: ids 1..N, as in the original (MaskReadError naming a file that holds a
    larger id). Otherwise only ids present are objects: the project's own (or, without a
    project file, those in its saved masks), those of the project the imported masks come
    from (`hint`) and those in the imported masks; [1] when there is none.
    """
    saved = [o.id for o in existing.state.objects] if existing.state is not None else []
    # Reading every saved mask only when no project file says which objects there are.
    scan = dict(imports) if saved else {**existing.masks, **imports}
    found = _ids_in(scan)
    if requested:
        above = sorted(k for k in [*found, *saved] if k > requested)
        if above:
            where = found.get(above[-1]) or Path(existing.folder or ".") / STATE_FILE
            raise MaskReadError(
                where, f"holds object id {above[-1]} but --num_objects is {requested}"
            )
        return list(range(1, requested + 1))
    return sorted({*saved, *hint, *found}) or [1]


def _saved_pair(project: Project, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A saved mask as (working, source) ids of the project's objects (1..K)."""
    pair = read_mask_pair(path, project.session.frames.size, project.source_size)
    return project.ids.to_internal(pair.labels, path), project.ids.to_internal(pair.source, path)


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
        by_id = {o.id: o for o in state.objects}  # names and colours of the project's objects
        project.set_objects([by_id.get(o.id, o) for o in project.objects])
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
        introduces = tuple(project.ids.internal(k) for k in prov.introduces)
        if introduces:
            labels, source = _only(introduces, labels), _only(introduces, source)
        prov = replace(prov, round=None, done=False)
        project.await_annotation(t, GivenMask(labels, source, introduces), prov, save=False)
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
