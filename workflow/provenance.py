"""Where each frame's mask came from: the person, a mask file, a propagation round, or nowhere.

Provenance is data, not inference (ARCHITECTURE.md section 8): it is recorded when a mask is
made and saved with the masks, so a reopened project knows which frames are annotations (kept
in the certain memory, never overwritten by propagation) and which are propagated results.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Literal

Kind = Literal["empty", "annotated", "imported", "propagated"]
ANNOTATION_KINDS = ("annotated", "imported")


@dataclass(frozen=True)
class Provenance:
    """One frame's origin.

    kind: "annotated" (drawn by the person; `interactions` lists the kinds used: scribble,
    free, click, reset, local), "imported" (from mask file `file`, content hash `sha1`;
    `introduces` names the object ids it introduced, empty = a full annotation of the frame),
    "propagated" (computed in round `round`) or "empty" (never computed).
    For annotations, `round` is the round that committed it into memory (None: not yet) and
    `done` whether that round ran to its end (False after a cancel, an error or a crash: the
    next Propagate runs it again).
    """

    kind: Kind = "empty"
    interactions: tuple[str, ...] = ()
    file: str | None = None
    sha1: str | None = None
    introduces: tuple[int, ...] = ()
    round: int | None = None
    done: bool = False

    @property
    def is_annotation(self) -> bool:
        return self.kind in ANNOTATION_KINDS

    @property
    def awaiting(self) -> bool:
        """An annotation whose round has not run to its end."""
        return self.is_annotation and not (self.round is not None and self.done)

    def to_json(self) -> dict:
        out: dict = {"kind": self.kind}
        if self.interactions:
            out["interactions"] = list(self.interactions)
        if self.file is not None:
            out["file"] = self.file
        if self.sha1 is not None:
            out["sha1"] = self.sha1
        if self.introduces:
            out["introduces"] = list(self.introduces)
        if self.round is not None:
            out["round"] = self.round
        if self.is_annotation:
            out["done"] = self.done
        return out

    @classmethod
    def from_json(cls, data: dict) -> Provenance:
        """Inverse of to_json; ValueError on an unknown kind."""
        kind = data.get("kind", "empty")
        if kind not in ("empty", *ANNOTATION_KINDS, "propagated"):
            raise ValueError(f"unknown provenance kind {kind!r}")
        rnd = data.get("round")
        return cls(
            kind=kind,
            interactions=tuple(str(x) for x in data.get("interactions", ())),
            file=data.get("file"),
            sha1=data.get("sha1"),
            introduces=tuple(int(x) for x in data.get("introduces", ())),
            round=int(rnd) if isinstance(rnd, int) else None,
            done=bool(data.get("done", kind == "propagated")),
        )


EMPTY = Provenance()


class ProvenanceTable:
    """Provenance of every frame of a project; thread-safe (the worker writes, the GUI reads)."""

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames
        self._frames: list[Provenance] = [EMPTY] * num_frames
        self._lock = threading.Lock()

    def __getitem__(self, t: int) -> Provenance:
        with self._lock:
            return self._frames[t]

    def __setitem__(self, t: int, value: Provenance) -> None:
        with self._lock:
            self._frames[t] = value

    def snapshot(self) -> list[Provenance]:
        with self._lock:
            return list(self._frames)

    def annotated(self, t: int, interaction: str | None) -> Provenance:
        """Frame t was edited by the person with `interaction` (None: an undo or a redo): an
        annotation awaiting its round.

        An imported frame the person edits becomes annotated; its file is kept for the record.
        """
        with self._lock:
            old = self._frames[t]
            kinds = old.interactions if old.kind == "annotated" else ()
            if interaction is not None and interaction not in kinds:
                kinds = (*kinds, interaction)
            new = Provenance("annotated", kinds, old.file, old.sha1, (), round=None, done=False)
            self._frames[t] = new
            return new

    def committed(self, t: int, round_number: int) -> None:
        """Frame t's annotation entered the memory in round `round_number` (not done yet)."""
        with self._lock:
            self._frames[t] = replace(self._frames[t], round=round_number, done=False)

    def finished(self, t: int) -> None:
        """Frame t's round ran to its end."""
        with self._lock:
            self._frames[t] = replace(self._frames[t], done=True)

    def propagated(self, t: int, round_number: int) -> None:
        """Frame t was propagated in round `round_number`; an annotation stays an annotation
        (a pass runs through annotations awaiting their round, which keep showing them)."""
        with self._lock:
            if not self._frames[t].is_annotation:
                self._frames[t] = Provenance("propagated", round=round_number, done=True)

    def frames_of(self, *kinds: Kind) -> list[int]:
        with self._lock:
            return [t for t, p in enumerate(self._frames) if p.kind in kinds]

    def awaiting(self) -> list[int]:
        """Annotations whose round has not run to its end, in frame order."""
        with self._lock:
            return [t for t, p in enumerate(self._frames) if p.awaiting]
