"""Frame sources: lazy, resized to the working resolution once, bounded in memory.

A source gives (H, W, 3) uint8 RGB frames at the working size. Image folders decode on demand
behind an LRU. Videos decode sequentially (random seeks in compressed video are unreliable)
into a JPEG cache folder that an explicit `cache_dir` keeps for the next open.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from util.natural_sort import natural_key

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# What Pillow raises for unreadable, truncated or corrupt files and absurd dimensions.
_PIL_ERRORS = (
    UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
)  # fmt: skip


class FrameReadError(ValueError):
    """An input that cannot be read; the message starts with its path."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {problem}")


class FrameSource(Protocol):
    """T frames at one working size; `get` returns a fresh array the caller may modify."""

    def __len__(self) -> int: ...

    @property
    def size(self) -> tuple[int, int]:
        """Working (H, W)."""

    @property
    def source_size(self) -> tuple[int, int]:
        """(H, W) of the input."""

    @property
    def names(self) -> list[str]:
        """Per-frame output stem: the image file stem, or f"{t:05d}" for a video."""

    def get(self, t: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB at the working size, C-contiguous; IndexError if out of range."""


def working_size(height: int, width: int, resolution: int | None) -> tuple[int, int]:
    """Scale so the shorter side is `resolution` (integer arithmetic, as the original).

    None or a negative resolution keeps the input size, and so does a resolution above the
    input's shorter side: upscaling adds no detail, only computation.
    """
    short = min(height, width)
    if resolution is None or resolution < 0 or resolution >= short:
        return height, width
    return height * resolution // short, width * resolution // short


class _LRU:
    """Thread-safe LRU of decoded frames (the GUI thread and the worker both read)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, t: int) -> np.ndarray | None:
        with self._lock:
            frame = self._items.get(t)
            if frame is not None:
                self._items.move_to_end(t)
            return frame

    def put(self, t: int, frame: np.ndarray) -> None:
        with self._lock:
            self._items[t] = frame
            self._items.move_to_end(t)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def _check_index(t: int, length: int) -> None:
    if not 0 <= t < length:
        raise IndexError(f"frame {t} is outside 0..{length - 1}")


class ArrayFrames:
    """Frames already in memory (tests, replays); no resizing."""

    def __init__(self, frames: np.ndarray) -> None:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(
                f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}"
            )
        self._frames = frames

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def size(self) -> tuple[int, int]:
        return self._frames.shape[1], self._frames.shape[2]

    @property
    def source_size(self) -> tuple[int, int]:
        return self.size

    @property
    def names(self) -> list[str]:
        return [f"{t:05d}" for t in range(len(self))]

    def get(self, t: int) -> np.ndarray:
        _check_index(t, len(self))
        return np.array(self._frames[t], order="C")  # a copy: callers may draw on it


def _to_rgb8(image: Image.Image) -> np.ndarray:
    """Any PIL image -> (H, W, 3) uint8: 16-bit scaled down, alpha dropped, palette expanded."""
    if image.mode.startswith("I"):
        # 'I;16*' and 'I' (how older Pillow opens 16-bit PNGs) hold 0..65535. A fixed scale, not
        # each frame's own maximum, so brightness does not flicker from frame to frame.
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.round(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _list_images(folder: Path) -> list[Path]:
    if not folder.exists():
        raise FrameReadError(folder, "folder not found")
    if not folder.is_dir():
        raise FrameReadError(folder, "is not a folder")
    try:
        files = [
            p for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        ]  # fmt: skip
    except OSError as exc:
        raise FrameReadError(folder, f"cannot be listed ({exc.strerror or exc})") from exc
    if not files:
        raise FrameReadError(folder, "contains no images (.jpg/.png/.bmp/.tif)")
    return sorted(files, key=lambda p: natural_key(p.name))


def _unique_stems(files: list[Path]) -> list[str]:
    """File stems, except that "a.jpg" and "a.png" keep their suffix so no output overwrites."""
    counts = Counter(p.stem for p in files)
    return [p.name if counts[p.stem] > 1 else p.stem for p in files]


class ImageFolderFrames:
    """A folder of images in natural order, decoded on demand (LRU of `cache_size` frames).

    Opening reads the first image's header only. Images of another size than the first are
    resized to the working size too (with one warning).
    """

    def __init__(
        self, folder: str | Path, resolution: int | None = 480, cache_size: int = 64
    ) -> None:
        self.files = _list_images(Path(folder))
        self._names = _unique_stems(self.files)
        try:
            with Image.open(self.files[0]) as first:  # parses the header, decodes no pixels
                width, height = first.size
        except _PIL_ERRORS as exc:
            raise FrameReadError(self.files[0], f"is not a readable image ({exc})") from exc
        self._source_size = (height, width)
        self._size = working_size(height, width, resolution)
        self._cache = _LRU(cache_size)
        self._warned_size = False

    def __len__(self) -> int:
        return len(self.files)

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def source_size(self) -> tuple[int, int]:
        return self._source_size

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def get(self, t: int) -> np.ndarray:
        _check_index(t, len(self))
        frame = self._cache.get(t)
        if frame is None:
            # Decoded outside any lock: two threads may rarely decode the same frame twice,
            # which is cheaper than serialising every decode.
            frame = self._decode(self.files[t])
            self._cache.put(t, frame)
        return frame.copy()  # the cached array must not be drawn on by callers

    def _decode(self, path: Path) -> np.ndarray:
        try:
            with Image.open(path) as image:
                image.load()
                self._warn_if_resized(path, image.size)
                rgb = _to_rgb8(image)
        except _PIL_ERRORS as exc:
            raise FrameReadError(path, f"is not a readable image ({exc})") from exc
        h, w = self._size
        if rgb.shape[:2] != (h, w):
            rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BICUBIC))
        return np.ascontiguousarray(rgb)

    def _warn_if_resized(self, path: Path, size_wh: tuple[int, int]) -> None:
        expected = (self._source_size[1], self._source_size[0])
        if size_wh != expected and not self._warned_size:
            self._warned_size = True
            log.warning(
                "%s: size %sx%s differs from the first frame's %sx%s; resizing it",
                path, *size_wh, *expected,
            )  # fmt: skip


def _frame_count(capture: Any) -> int:
    """The container's frame count estimate, or -1 when it has none (NaN, <= 0, absurd)."""
    value = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    if not math.isfinite(value) or value <= 0 or value > 1e9:
        return -1
    return int(value)


class VideoFrames:
    """A video decoded once, in order, into JPEG files (quality 95) named f"{t:05d}.jpg".

    Clips whose container says <= `eager_limit` frames (or says nothing) are decoded at open, so
    the length is exact. Longer ones decode lazily, forward up to the frame asked for; their
    length is the container's estimate until the decoder reaches the end, when it becomes the
    decoded count (frames past the real end then raise IndexError). Frames are always served
    from the JPEGs, so a frame reads the same before and after eviction or a reopen. A temporary
    cache folder is removed on close(); an explicit `cache_dir` is kept and reused on reopen
    when its meta.json matches the source file and the working size.
    """

    def __init__(
        self,
        path: str | Path,
        resolution: int | None = 480,
        cache_dir: str | Path | None = None,
        eager_limit: int = 2000,
        cache_size: int = 64,
    ) -> None:
        self.path = Path(path)
        self._owns_cache = cache_dir is None
        self.cache_dir: Path | None = None
        self._lock = threading.RLock()
        self._ram = _LRU(cache_size)
        self._decoded = 0  # frames 0..decoded-1 are in the cache folder
        self._finished = False
        self._closed = False
        if not self.path.is_file():
            raise FrameReadError(self.path, "video file not found")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise FrameReadError(self.path, "is not a video OpenCV can read")
        try:
            self._open(resolution, cache_dir, eager_limit)
        except BaseException:
            self.close()
            raise

    def _open(self, resolution: int | None, cache_dir: str | Path | None, eager: int) -> None:
        estimate = _frame_count(self._capture)
        # The first decoded frame, not the container's width/height properties, gives the size:
        # those can be missing or disagree with rotation applied by the decoder.
        ok, first = self._capture.read()
        if not ok or first is None:
            raise FrameReadError(self.path, "has no frames")
        height, width = first.shape[:2]
        self._source_size = (height, width)
        self._size = working_size(height, width, resolution)
        self._length = max(estimate, 1)
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="mivos-"))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if self._reuse_cache():
            self._capture.release()
            return
        # Decoding overwrites the folder; a stale meta.json must not vouch for half of it.
        (self.cache_dir / "meta.json").unlink(missing_ok=True)
        self._store(first)
        if estimate <= eager:
            self.prefetch_all()

    def _meta(self) -> dict[str, Any]:
        stat = self.path.stat()
        return {
            "source": str(self.path.resolve()), "bytes": stat.st_size, "mtime": stat.st_mtime,
            "size": list(self._size),
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
        self._decoded = self._length = count
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

    def get(self, t: int) -> np.ndarray:
        if self._closed:
            raise FrameReadError(self.path, "the frame source is closed")
        _check_index(t, len(self))
        frame = self._ram.get(t)
        if frame is None:
            self._ensure(t)
            if t >= self._length:  # the container over-estimated the length
                raise IndexError(f"frame {t} is past the end of {self.path} ({len(self)} frames)")
            frame = self._load(t)
            self._ram.put(t, frame)
        return frame.copy()  # the cached array must not be drawn on by callers

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
        ok, bgr = self._capture.read()
        if ok and bgr is not None:
            self._store(bgr)
            return
        self._finished = True
        self._length = self._decoded
        self._capture.release()
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

    def prefetch_all(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Decode every remaining frame now; progress(done, estimated_total) after each."""
        with self._lock:
            while not self._finished:
                self._decode_next()
                if progress is not None:
                    progress(self._decoded, self._length)

    def close(self) -> None:
        """Release the decoder and remove a temporary cache folder; idempotent."""
        with self._lock:
            self._closed = True
            capture = getattr(self, "_capture", None)
            if capture is not None:
                capture.release()
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


def open_frames(
    video: str | Path | None = None,
    images: str | Path | None = None,
    resolution: int | None = 480,
    cache_dir: str | Path | None = None,
) -> FrameSource:
    """Open exactly one of a video file or an image folder ("" counts as not given)."""
    video, images = video or None, images or None
    if (video is None) == (images is None):
        raise ValueError("give exactly one of a video file or an image folder")
    if images is not None:
        return ImageFolderFrames(images, resolution)
    return VideoFrames(video, resolution, cache_dir)
