"""The project file beside the masks: objects, provenance per frame, and the GUI's choices.

`.mivos_project.json` is versioned JSON, written atomically (temporary file, fsync, rename), so
a crash leaves the previous or the new state, never half of one. Annotations are keyed by frame
name (the masks' file names), so they survive a changed --start/--end; propagated frames are
stored as index runs, trusted only when the frame names are the same as when they were saved.

The first release wrote `.mivos_session.json` ({num_objects, source, frame}); it still opens:
which of its frames were annotations is recovered from `interactions.jsonl` (legacy_annotations).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from util.palette import DAVIS_PALETTE
from workflow.provenance import Provenance

log = logging.getLogger(__name__)

STATE_FILE = ".mivos_project.json"
LEGACY_STATE_FILE = ".mivos_session.json"
LOG_FILE = "interactions.jsonl"
FORMAT = "mivos-project"
VERSION = 1

# Log records that are the person's edits of a frame (interactions.jsonl "kind" values).
EDIT_KINDS = ("scribble", "free", "click", "reset", "local", "undo", "redo")


@dataclass
class ObjectInfo:
    """One object: its id (1..K, the value in index masks), a name and an RGB colour."""

    id: int
    name: str
    colour: tuple[int, int, int]
    hidden: bool = False  # not drawn in the overlay (a view choice: its masks are kept)


def objects_for_ids(ids) -> list[ObjectInfo]:
    """Objects with these ids (the values in the mask files), named "Object <id>", coloured
    from the DAVIS palette."""
    return [ObjectInfo(k, f"Object {k}", tuple(int(c) for c in DAVIS_PALETTE[k])) for k in ids]


def default_objects(count: int) -> list[ObjectInfo]:
    """Objects 1..count (see objects_for_ids)."""
    return objects_for_ids(range(1, count + 1))


def names_digest(names: list[str]) -> str:
    return hashlib.sha1("\n".join(names).encode("utf-8")).hexdigest()


@dataclass
class ProjectState:
    """Everything a reopen needs besides the mask files themselves."""

    objects: list[ObjectInfo]
    frame_names: list[str]
    provenance: list[Provenance]  # one per frame
    source: str | None = None
    frame: int = 0
    rounds: int = 0  # rounds run so far (the next one is rounds + 1)
    gui: dict = field(default_factory=dict)  # mode, overlay, ...: the GUI's own choices
    legacy: bool = False  # read from the first release's .mivos_session.json

    @property
    def num_objects(self) -> int:
        return len(self.objects)

    def to_json(self) -> dict:
        annotations = {}
        runs: list[list[int]] = []  # [start, stop, round] of propagated frames
        for t, p in enumerate(self.provenance):
            if p.is_annotation:
                annotations[self.frame_names[t]] = p.to_json()
            elif p.kind == "propagated":
                rnd = p.round or 0
                if runs and runs[-1][1] == t and runs[-1][2] == rnd:
                    runs[-1][1] = t + 1
                else:
                    runs.append([t, t + 1, rnd])
        return {
            "format": FORMAT,
            "version": VERSION,
            "source": self.source,
            "num_frames": len(self.frame_names),
            "frame_names_sha1": names_digest(self.frame_names),
            "objects": [
                {"id": o.id, "name": o.name, "colour": list(o.colour), "hidden": o.hidden}
                for o in self.objects
            ],
            "frame": self.frame,
            "rounds": self.rounds,
            "gui": self.gui,
            "annotations": annotations,
            "propagated": runs,
        }


class StateError(ValueError):
    """The project file exists but cannot be used; the message names it."""


def _objects_from(data: list, path: Path) -> list[ObjectInfo]:
    objects = []
    for k, item in enumerate(data, start=1):
        try:
            colour = tuple(int(c) for c in item.get("colour", DAVIS_PALETTE[k]))[:3]
            hidden = bool(item.get("hidden", False))
            objects.append(
                ObjectInfo(int(item.get("id", k)), str(item.get("name", k)), colour, hidden)
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise StateError(f"{path}: object {k} is malformed ({exc})") from exc
    return objects


def parse_state(data: dict, frame_names: list[str], path: Path) -> ProjectState:
    """A ProjectState for these frames from the file's JSON; StateError if it is not ours."""
    if data.get("format") != FORMAT or not isinstance(data.get("version"), int):
        raise StateError(f"{path}: not a MiVOS project file")
    if data["version"] > VERSION:
        raise StateError(
            f"{path}: written by a newer version (format {data['version']}, this one reads "
            f"{VERSION}); update the application"
        )
    provenance = [Provenance()] * len(frame_names)
    index = {name: t for t, name in enumerate(frame_names)}
    for name, entry in (data.get("annotations") or {}).items():
        t = index.get(name)
        if t is None:
            log.warning("%s: annotated frame %s is not among the frames; ignored", path, name)
            continue
        try:
            provenance[t] = Provenance.from_json(entry)
        except (AttributeError, TypeError, ValueError) as exc:
            raise StateError(f"{path}: frame {name}: {exc}") from exc
    if data.get("frame_names_sha1") == names_digest(frame_names):
        for start, stop, rnd in data.get("propagated") or []:
            for t in range(max(0, start), min(stop, len(frame_names))):
                if not provenance[t].is_annotation:
                    provenance[t] = Provenance("propagated", round=rnd, done=True)
    frame = data.get("frame", 0)
    return ProjectState(
        objects=_objects_from(data.get("objects") or [], path),
        frame_names=list(frame_names),
        provenance=provenance,
        source=data.get("source"),
        frame=frame if isinstance(frame, int) and 0 <= frame < len(frame_names) else 0,
        rounds=int(data.get("rounds", 0) or 0),
        gui=dict(data.get("gui") or {}),
    )


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: unreadable project file ({exc})") from exc
    if not isinstance(data, dict):
        raise StateError(f"{path}: not a MiVOS project file")
    return data


def read_state(folder: Path, frame_names: list[str]) -> ProjectState | None:
    """The saved project state of `folder` for these frames; None when there is none.

    Reads `.mivos_project.json`, else the first release's `.mivos_session.json` (legacy=True,
    provenance empty: see legacy_annotations). Raises StateError naming the file when the
    project file is damaged, so a broken file is never silently replaced by an empty project.
    """
    data = _read_json(folder / STATE_FILE)
    if data is not None:
        return parse_state(data, frame_names, folder / STATE_FILE)
    try:
        legacy = _read_json(folder / LEGACY_STATE_FILE)
    except StateError as exc:  # the old file was advisory; an unreadable one was ignored
        log.warning("%s", exc)
        legacy = None
    if legacy is None:
        return None
    count = legacy.get("num_objects")
    frame = legacy.get("frame", 0)
    return ProjectState(
        objects=default_objects(count if isinstance(count, int) and count > 0 else 0),
        frame_names=list(frame_names),
        provenance=[Provenance()] * len(frame_names),
        source=legacy.get("source"),
        frame=frame if isinstance(frame, int) and 0 <= frame < len(frame_names) else 0,
        legacy=True,
    )


def legacy_annotations(records: list[dict], num_frames: int) -> dict[int, Provenance]:
    """Annotated frames of a first-release session, recovered from its interactions.jsonl.

    A frame the person edited is an annotation (its interaction kinds listed); it is done when
    a "propagate" record for it follows its last edit (that release propagated only edited
    frames), otherwise it awaits its round.
    """
    kinds: dict[int, list[str]] = {}
    last_edit: dict[int, int] = {}
    last_propagate: dict[int, int] = {}
    for i, rec in enumerate(records):
        t, kind = rec.get("frame"), rec.get("kind")
        if not isinstance(t, int) or not 0 <= t < num_frames:
            continue
        if kind in EDIT_KINDS:
            last_edit[t] = i
            if kind not in ("undo", "redo") and kind not in kinds.setdefault(t, []):
                kinds[t].append(kind)
        elif kind == "propagate":
            last_propagate[t] = i
    out = {}
    for t in sorted(set(last_edit) | set(last_propagate)):
        done = last_propagate.get(t, -1) > last_edit.get(t, -1)
        out[t] = Provenance(
            "annotated", tuple(kinds.get(t, ())), round=0 if t in last_propagate else None,
            done=done,
        )  # fmt: skip
    return out


def write_state(folder: Path, state: ProjectState) -> None:
    """Write `state` to folder/.mivos_project.json atomically (OSError on failure)."""
    text = json.dumps(state.to_json(), ensure_ascii=False, separators=(",", ":"))
    target = folder / STATE_FILE
    tmp = folder / f"{STATE_FILE}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
