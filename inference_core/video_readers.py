"""Sequential video decoding: PyAV (FFmpeg's own bindings) first, OpenCV only where PyAV fails.

Whichever decoder reads a file, a reader hands out frames the way players show them:

- upright: the container's display matrix (the rotation phones record, and mirroring) is
  applied to every frame, as players do;
- (H, W, 3) uint8 BGR (the JPEG cache downstream is written with OpenCV);
- counted exactly: PyAV's `estimate` is the container's own frame count when it has one (an MP4
  index lists every sample) and otherwise the number of packets, counted by demuxing without
  decoding. Duration x frame rate, which overstates the length of variable-frame-rate clips
  (a phone's pause, a screen recording), is never used;
- a corrupt packet mid-stream is skipped (one warning), not the end of the video.

OpenCV is kept for the rare file PyAV cannot open or decode a frame from. Its frame count is
duration x frame rate for containers without an index (Matroska, WebM), so it is reported as
unknown (-1) and the caller decodes to count; OpenCV applies the display rotation itself
(`CAP_PROP_ORIENTATION_AUTO`) but not mirroring.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from inference_core.frame_base import FrameReadError

log = logging.getLogger(__name__)


class VideoReader(Protocol):
    """Frames of one video in display order, read once, front to back."""

    estimate: int  # frame count (see each reader for how exact), or -1 when unknown
    fps: float | None  # average frame rate, None when the file does not say

    def read(self) -> np.ndarray | None:
        """The next frame as (H, W, 3) uint8 BGR, upright, C-contiguous; None at the end."""

    def release(self) -> None:
        """Close the file; idempotent."""


def apply_display_matrix(frame: np.ndarray, matrix: Sequence[int]) -> np.ndarray:
    """Transform a frame (H, W, ...) as a player does for an FFmpeg display matrix.

    `matrix` is the 3x3 row-major int32 matrix of FFmpeg's DISPLAYMATRIX side data (the MP4
    `tkhd` matrix). A source pixel (p, q) (column, row) is shown at (a*p + c*q, b*p + d*q)
    with a, b, c, d = matrix[0], matrix[1], matrix[3], matrix[4]; only their signs matter for
    the eight axis-aligned orientations (rotations by 90 degrees, with or without a mirror).
    This is what `ffmpeg` applies on playback (its autorotate filters), and for rotations what
    OpenCV applies. Other angles are not axis-aligned: the frame is returned unchanged (and
    logged), as no player agrees on them. Returns a C-contiguous array (a view is never
    returned when a transform applies).
    """
    a, b, c, d = (int(np.sign(matrix[i])) for i in (0, 1, 3, 4))
    if a and d and not b and not c:  # no transpose: identity, mirrors, or 180 degrees
        out = frame
        if a < 0:
            out = out[:, ::-1]
        if d < 0:
            out = out[::-1]
    elif b and c and not a and not d:  # a quarter turn: rows become columns
        out = np.swapaxes(frame, 0, 1)
        if b < 0:
            out = out[::-1]
        if c < 0:
            out = out[:, ::-1]
    else:
        log.warning("display matrix %s is not a multiple of 90 degrees: ignored", list(matrix))
        return frame
    return np.ascontiguousarray(out)


def rotation_matrix(degrees_ccw: float) -> tuple[int, ...]:
    """The display matrix of a counter-clockwise rotation (FFmpeg's av_display_rotation_set).

    Used when a decoder reports only an angle (older PyAV/FFmpeg: `frame.rotation` or the
    stream's "rotate" tag); the result is the 9 int32 values `apply_display_matrix` takes.
    """
    radians = math.radians(degrees_ccw)
    cos, sin = round(math.cos(radians)), round(math.sin(radians))  # quarter turns only
    one = 1 << 16
    return (cos * one, -sin * one, 0, sin * one, cos * one, 0, 0, 0, 1 << 30)


IDENTITY = rotation_matrix(0)


def _display_matrix(frame: Any, stream: Any) -> tuple[int, ...]:
    """The display matrix a PyAV frame carries (FFmpeg >= 6 copies it from the container).

    Falls back on `frame.rotation` (degrees counter-clockwise) and then on the stream's
    "rotate" metadata (degrees clockwise, how FFmpeg <= 4 reported it); identity without any.
    """
    try:
        for item in frame.side_data:  # iterating yields the side data items on PyAV 12..18
            if "DISPLAYMATRIX" in str(getattr(item, "type", "")):
                data = bytes(item)
                if len(data) >= 36:
                    return struct.unpack("<9i", data[:36])
    except Exception as exc:  # noqa: BLE001 - side-data APIs differ across PyAV versions
        log.debug("side data unreadable: %s", exc)
    rotation = getattr(frame, "rotation", 0) or 0
    if rotation:
        return rotation_matrix(rotation)
    tag = (getattr(stream, "metadata", None) or {}).get("rotate")
    try:
        return rotation_matrix(-float(tag)) if tag else IDENTITY
    except ValueError:
        return IDENTITY


def _rate(value: Any) -> float | None:
    """A positive finite frame rate as a float, else None (PyAV gives Fractions or None)."""
    try:
        rate = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return rate if math.isfinite(rate) and rate > 0 else None


class PyAVReader:
    """The first video stream of a file, decoded with PyAV.

    `estimate` is exact for any file whose packets all decode: the container's count, else the
    packet count. `fps` is the stream's average frame rate (FFmpeg's avg_frame_rate, else its
    guess). Raises what PyAV raises for a file it cannot open, and FrameReadError for a file
    without a video stream.
    """

    def __init__(self, path: Path) -> None:
        import av  # imported here: the module stays importable (and OpenCV usable) without it

        self.path = path
        self._errors: tuple[type[BaseException], ...] = (av.error.FFmpegError,)
        self._container = av.open(str(path))
        try:
            if not self._container.streams.video:
                raise FrameReadError(path, "has no video stream")
            self._stream = self._container.streams.video[0]
            # Frame threads decode several frames at once; output order is unchanged.
            self._stream.thread_type = "AUTO"
            self.fps = _rate(self._stream.average_rate) or _rate(self._stream.guessed_rate)
            self.estimate = int(self._stream.frames or 0) or self._count_packets(av)
        except BaseException:
            self._container.close()
            raise
        self._matrix: tuple[int, ...] | None = None
        self._skipped = 0
        self._frames = self._decode()

    def _count_packets(self, av: Any) -> int:
        """Frames in a container without a count, by demuxing (reads the file, decodes nothing).

        Every video packet holds one frame for the codecs cameras and editors write; empty
        packets (the demuxer's end-of-stream marker) and discarded ones do not count.
        """
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                return sum(
                    1 for packet in container.demux(stream)
                    if packet.size and not getattr(packet, "is_discard", False)
                ) or -1  # fmt: skip
        except self._errors as exc:
            log.debug("%s: packets cannot be counted (%s)", self.path, exc)
            return -1

    def _decode(self) -> Iterator[Any]:
        try:
            for packet in self._container.demux(self._stream):
                try:
                    yield from packet.decode()  # the final empty packet flushes the decoder
                except self._errors as exc:
                    # One bad packet costs its frame, not the rest of the video.
                    self._skipped += 1
                    if self._skipped == 1:
                        log.warning("%s: a corrupt packet was skipped (%s)", self.path, exc)
        except self._errors as exc:  # the demuxer gives up (e.g. a truncated file)
            log.warning("%s: decoding stopped early (%s)", self.path, exc)

    def read(self) -> np.ndarray | None:
        frame = next(self._frames, None)
        if frame is None:
            return None
        if self._matrix is None:  # one orientation for the whole stream: sizes never change
            self._matrix = _display_matrix(frame, self._stream)
        return apply_display_matrix(frame.to_ndarray(format="bgr24"), self._matrix)

    def release(self) -> None:
        self._container.close()


class OpenCVReader:
    """OpenCV's decoder, for files PyAV cannot read. `estimate` is always -1: decode to count."""

    def __init__(self, path: Path) -> None:
        self._capture = cv2.VideoCapture(str(path))
        self.opened = self._capture.isOpened()
        if self.opened:  # the default, but stated: every decoder shows frames upright
            self._capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        self.fps = _rate(self._capture.get(cv2.CAP_PROP_FPS)) if self.opened else None
        # CAP_PROP_FRAME_COUNT is duration x fps for Matroska/WebM: too long for variable rates.
        self.estimate = -1

    def read(self) -> np.ndarray | None:
        ok, bgr = self._capture.read()
        return np.ascontiguousarray(bgr) if ok and bgr is not None else None

    def release(self) -> None:
        self._capture.release()


def _pyav_reader(path: Path) -> tuple[PyAVReader | None, np.ndarray | None, str]:
    """(reader, first frame, "") or (None, None, why PyAV could not read the file)."""
    try:
        reader = PyAVReader(path)
    except ImportError:
        return None, None, "PyAV is not installed"
    except FrameReadError as exc:
        return None, None, str(exc).removeprefix(f"{path}: ")
    except Exception as exc:  # noqa: BLE001 - PyAV raises many types for unreadable input
        log.debug("PyAV cannot open %s: %s", path, exc)
        return None, None, ""
    first = reader.read()
    if first is None:
        reader.release()
        return None, None, "has no video frames (empty or corrupt)"
    return reader, first, ""


def open_reader(path: Path) -> tuple[VideoReader, np.ndarray]:
    """A reader positioned after the first frame, and that frame ((H, W, 3) uint8 BGR).

    PyAV reads the file when it can; OpenCV is tried only when PyAV cannot open it or decodes
    no frame. Raises FrameReadError naming the file when neither reads a frame.
    """
    reader, first, why = _pyav_reader(path)
    if reader is not None:
        return reader, first
    fallback = OpenCVReader(path)
    first = fallback.read() if fallback.opened else None
    if first is not None:
        log.info("%s: read with OpenCV (PyAV could not)", path)
        return fallback, first
    opened = fallback.opened
    fallback.release()
    if why:
        raise FrameReadError(path, why)
    if opened:
        raise FrameReadError(path, "has no video frames (empty or corrupt)")
    raise FrameReadError(path, "is not a video PyAV or OpenCV can read")
