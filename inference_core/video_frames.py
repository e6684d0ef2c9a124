"""Video files decoded once, in order, into a JPEG cache (PyAV; OpenCV where PyAV fails)."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inference_core.frame_base import FrameLRU, FrameReadError, check_index, working_size
from inference_core.video_readers import open_reader

log = logging.getLogger(__name__)

# Part of the cache's meta.json: caches written by another decoding rule (before PyAV decoded
# every file and display rotation was applied on every path) are decoded again, not reused.
CACHE_VERSION = 2


class VideoFrames:
    """A video decoded once, in order, into JPEG files (quality 95) named f"{t:05d}.jpg".

    Frames are upright (the display rotation applied, see video_readers) and (H, W, 3) uint8
    RGB at the working size. The length is the reader's count: exact with PyAV (the
    container's count, else its packets counted without decoding), so a variable-frame-rate
    clip whose duration suggests more frames has its real length from the start. Clips of at
    most `eager_limit` frames, or of unknown length, are decoded at open; longer ones decode
    lazily, forward up to the frame asked for. Should decoding end before the announced count
    (a truncated or corrupt file), the length shrinks to the frames decoded and a frame past
    that end raises FrameReadError naming the file (IndexError only beyond the announced
    count). Frames are always served from the JPEGs, so a frame reads the same before and
    after eviction or a reopen. A temporary cache folder is removed on close(); an explicit
    `cache_dir` is kept and reused on reopen when its meta.json matches the source file, the
    working size and this decoder version.

    Raises FrameReadError naming the file when it is missing or no decoder reads a frame.
    """

    def __init__(
        self,
        path: str | Path,
        resolution: int | None = 480,
        cache_dir: str | Path | None = None,
        eager_limit: int = 300,
        cache_size: int = 64,
    ) -> None:
        self.path = Path(path)
        self._owns_cache = cache_dir is None
        self.cache_dir: Path | None = None
        self._lock = threading.RLock()
        self._ram = FrameLRU(cache_size)
        self._decoded = 0  # frames 0..decoded-1 are in the cache folder
        self._finished = False
        self._closed = False
        if not self.path.is_file():
            raise FrameReadError(self.path, "video file not found")
        self._reader, first = open_reader(self.path)
        self._fps = self._reader.fps
        try:
            self._open(first, resolution, cache_dir, eager_limit)
        except BaseException:
            self.close()
            raise

    def _open(
        self, first: np.ndarray, resolution: int | None, cache_dir: str | Path | None, eager: int
    ) -> None:
        estimate = self._reader.estimate
        # The first decoded frame, not the container's width/height properties, gives the size:
        # those can be missing or disagree with rotation applied by the decoder.
        height, width = first.shape[:2]
        self._source_size = (height, width)
        self._size = working_size(height, width, resolution)
        self._length = max(estimate, 1)
        self._announced = self._length  # what callers may have been told; see get()
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="mivos-"))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if self._reuse_cache():
            self._reader.release()
            return
        # Decoding overwrites the folder; a stale meta.json must not vouch for half of it.
        (self.cache_dir / "meta.json").unlink(missing_ok=True)
        self._store(first)
        if estimate <= eager:
            self.prefetch_all()
            self._announced = self._length  # nobody was told another length

    def _meta(self) -> dict[str, Any]:
        stat = self.path.stat()
        return {
            "source": str(self.path.resolve()), "bytes": stat.st_size, "mtime": stat.st_mtime,
            "size": list(self._size), "version": CACHE_VERSION,
        }  # fmt: skip

    def _reuse_cache(self) -> bool:
        """Adopt an explicit cache folder holding this video fully decoded at this size."""
        meta_file = self.cache_dir / "meta.json"
        if self._owns_cache or not meta_file.is_file():
            return False
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        count = meta.pop("frames", None) if isinstance(meta, dict) else None
        if meta != self._meta() or not isinstance(count, int) or count <= 0:
            return False
        if not (self.cache_dir / f"{count - 1:05d}.jpg").is_file():
            return False
        self._decoded = self._length = self._announced = count
        self._finished = True
        return True

    def __len__(self) -> int:
        return self._length

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def source_size(self) -> tuple[int, int]:
        return self._source_size

    @property
    def names(self) -> list[str]:
        return [f"{t:05d}" for t in range(len(self))]

    @property
    def fps(self) -> float | None:
        """The video's average frame rate (frames per second), None when the file gives none."""
        return self._fps

    def get(self, t: int) -> np.ndarray:
        """Frame t as (H, W, 3) uint8 RGB at the working size, a copy the caller may modify.

        Decodes forward to t when needed. Raises IndexError outside 0..len-1, FrameReadError
        (naming the file) when the source is closed, the cache is unreadable or t was
        announced but does not decode.
        """
        if self._closed:
            raise FrameReadError(self.path, "the frame source is closed")
        if self._length <= t < self._announced:
            self._past_the_end(t)
        check_index(t, len(self))
        frame = self._ram.get(t)
        if frame is None:
            self._ensure(t)
            if t >= self._length:  # decoding ended before the count the file announced
                self._past_the_end(t)
            frame = self._load(t)
            self._ram.put(t, frame)
        return frame.copy()  # the cached array must not be drawn on by callers

    def _past_the_end(self, t: int) -> None:
        """A frame the file announced but that does not decode: a message, not an IndexError.

        Callers sized their loops with the announced length; an IndexError there was a
        traceback. FrameReadError is the input error every caller reports by its message.
        """
        raise FrameReadError(
            self.path,
            f"frame {t} cannot be decoded: the video ends after {self._length} frames although "
            f"the file announces {self._announced} (truncated or corrupt)",
        )

    def _jpeg(self, t: int) -> Path:
        return self.cache_dir / f"{t:05d}.jpg"

    def _load(self, t: int) -> np.ndarray:
        # np.fromfile + imdecode rather than imread: works with non-ASCII paths on every OS.
        path = self._jpeg(t)
        try:
            bgr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
        except OSError as exc:
            raise FrameReadError(path, f"cached frame cannot be read ({exc})") from exc
        if bgr is None:
            raise FrameReadError(path, "cached frame is corrupt")
        return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def _ensure(self, t: int) -> None:
        """Decode forward until frame t is cached (or the video ends)."""
        with self._lock:
            while self._decoded <= t and not self._finished:
                self._decode_next()

    def _decode_next(self) -> None:
        bgr = self._reader.read()
        if bgr is not None:
            self._store(bgr)
            return
        self._finished = True
        if self._decoded < self._announced:
            log.warning(
                "%s: only %d of the %d frames the file announces could be decoded",
                self.path, self._decoded, self._announced,
            )  # fmt: skip
        self._length = self._decoded
        self._reader.release()
        if not self._owns_cache and self._decoded > 0:
            meta = {**self._meta(), "frames": self._decoded}
            (self.cache_dir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    def _store(self, bgr: np.ndarray) -> None:
        """Resize one decoded BGR frame to the working size and write it as the next JPEG."""
        h, w = self._size
        if bgr.shape[:2] != (h, w):
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_CUBIC)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise FrameReadError(self.path, f"frame {self._decoded} could not be JPEG-encoded")
        self._jpeg(self._decoded).write_bytes(data.tobytes())
        self._decoded += 1
        self._length = max(self._length, self._decoded)
        self._announced = max(self._announced, self._length)

    def prefetch_all(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Decode every remaining frame now; progress(done, estimated_total) after each.

        The lock is taken per frame, so readers on other threads interleave with it.
        """
        while True:
            with self._lock:
                if self._finished or self._closed:
                    return
                self._decode_next()
                done, total = self._decoded, self._length
            if progress is not None:
                progress(done, total)

    def decode_in_background(self) -> threading.Thread:
        """Start decoding the rest of the video on a daemon thread (opening stays instant)."""
        thread = threading.Thread(target=self.prefetch_all, name="video-decode", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Release the decoder and remove a temporary cache folder; idempotent."""
        with self._lock:
            self._closed = True
            reader = getattr(self, "_reader", None)
            if reader is not None:
                reader.release()
            if self._owns_cache and self.cache_dir is not None:
                shutil.rmtree(self.cache_dir, ignore_errors=True)

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Garbage collection also runs at interpreter shutdown, when anything may be torn down.
        with contextlib.suppress(Exception):
            self.close()
