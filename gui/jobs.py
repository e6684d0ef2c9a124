"""Requests the GUI sends to the worker thread: plain, immutable data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StrokeJob:
    frame: int
    mode: str  # "scribble" | "free"
    label: int  # 0 = background, k = object k
    points: tuple[tuple[float, float], ...]
    brush: int


@dataclass(frozen=True)
class UndoJob:
    frame: int
    redo: bool = False


@dataclass(frozen=True)
class ResetJob:
    frame: int


@dataclass(frozen=True)
class PropagateJob:
    frame: int


@dataclass(frozen=True)
class ExportJob:
    kind: str  # "binary" | "soft" | "video" | "coco"
    path: str


@dataclass(frozen=True)
class CommitJob:
    """Complete the live interaction (the Commit button)."""


@dataclass(frozen=True)
class ShutdownJob:
    """Sent last: the worker stops its thread once every earlier job is done."""


@dataclass(frozen=True)
class EnterLocalJob:
    frame: int
    box: tuple[int, int, int, int]  # y0, y1, x0, x1


@dataclass(frozen=True)
class FinishLocalJob:
    """Paste the local region's result back into its frame."""


@dataclass(frozen=True)
class ClickJob:
    frame: int
    x: float
    y: float
    positive: bool
    target: int  # object id


@dataclass(frozen=True)
class AddObjectJob:
    """Add an object (the session is rebuilt for one more; see Project.add_object)."""

    name: str | None = None
