"""Sequential video decoders behind one small interface: OpenCV first, PyAV as a fallback.

OpenCV's FFmpeg build misses some codecs and containers that PyAV (FFmpeg's own bindings)
reads, so a file OpenCV rejects gets a second chance when PyAV is installed.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from inference_core.frame_base import FrameReadError

log = logging.getLogger(__name__)


class VideoReader(Protocol):
    estimate: int  # the container's frame count, or -1 when it does not say

    def read(self) -> np.ndarray | None:
        """The next frame as (H, W, 3) uint8 BGR, or None at the end."""

    def release(self) -> None: ...


class OpenCVReader:
    def __init__(self, path: Path) -> None:
        self._capture = cv2.VideoCapture(str(path))
        self.opened = self._capture.isOpened()
        value = self._capture.get(cv2.CAP_PROP_FRAME_COUNT) if self.opened else -1
        self.estimate = int(value) if math.isfinite(value) and 0 < value <= 1e9 else -1

    def read(self) -> np.ndarray | None:
        ok, bgr = self._capture.read()
        return bgr if ok and bgr is not None else None

    def release(self) -> None:
        self._capture.release()


class PyAVReader:
    def __init__(self, path: Path) -> None:
        import av  # optional dependency

        self._container = av.open(str(path))
        stream = self._container.streams.video[0]
        self.estimate = int(stream.frames) if stream.frames else -1
        self._frames = self._container.decode(stream)
        self._errors = (av.error.FFmpegError,) if hasattr(av, "error") else (Exception,)

    def read(self) -> np.ndarray | None:
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except self._errors as exc:  # a corrupt packet mid-stream ends the video here
            log.warning("decoding stopped early: %s", exc)
            return None
        return frame.to_ndarray(format="bgr24")

    def release(self) -> None:
        self._container.close()


def _pyav_reader(path: Path) -> tuple[PyAVReader | None, np.ndarray | None]:
    try:
        reader = PyAVReader(path)
    except ImportError:
        return None, None
    except Exception as exc:  # noqa: BLE001 - PyAV raises many types for unreadable input
        log.debug("PyAV cannot open %s: %s", path, exc)
        return None, None
    first = reader.read()
    if first is None:
        reader.release()
        return None, None
    return reader, first


def open_reader(path: Path) -> tuple[VideoReader, np.ndarray]:
    """A reader positioned after the first frame, and that frame (BGR).

    Raises FrameReadError naming the file when neither decoder reads a frame from it.
    """
    reader = OpenCVReader(path)
    first = reader.read() if reader.opened else None
    if first is not None:
        return reader, first
    opened = reader.opened
    reader.release()
    fallback, first = _pyav_reader(path)
    if fallback is not None:
        log.info("%s: read with PyAV (OpenCV could not)", path)
        return fallback, first
    if opened:
        raise FrameReadError(path, "has no frames (or is corrupt)")
    raise FrameReadError(path, "is not a video OpenCV or PyAV can read")
