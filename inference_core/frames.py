"""Frame sources: lazy, resized to the working resolution once, bounded in memory.

A source gives (H, W, 3) uint8 RGB frames at the working size. Nothing decodes the whole video
at open: image folders decode on demand behind an LRU; videos decode sequentially (random seeks
in compressed video are unreliable) into a JPEG cache folder, reused on reopen.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from util.natural_sort import natural_key

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class FrameReadError(ValueError):
    """An input that cannot be read; the message starts with its path."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {problem}")


class FrameSource(Protocol):
    def __len__(self) -> int: ...

    @property
    def size(self) -> tuple[int, int]:
        """Working (H, W)."""

    @property
    def source_size(self) -> tuple[int, int]:
        """(H, W) of the input."""

    @property
    def names(self) -> list[str]:
        """Per-frame output stem."""

    def get(self, t: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB at the working size."""


def working_size(height: int, width: int, resolution: int | None) -> tuple[int, int]:
    """Scale so the shorter side is `resolution` (integer arithmetic, as the original).

    None or a negative resolution keeps the input size.
    """
    if resolution is None or resolution < 0:
        return height, width
    short = min(height, width)
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
        return tuple(self._frames.shape[1:3])

    @property
    def source_size(self) -> tuple[int, int]:
        return self.size

    @property
    def names(self) -> list[str]:
        return [f"{t:05d}" for t in range(len(self))]

    def get(self, t: int) -> np.ndarray:
        _check_index(t, len(self))
        return np.ascontiguousarray(self._frames[t])


def _to_rgb8(image: Image.Image) -> np.ndarray:
    """Any PIL image -> (H, W, 3) uint8: 16/32-bit scaled down, alpha dropped, palette expanded."""
    if image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64)
        # 16-bit images span 0..65535; 32-bit integer images are scaled by their own maximum.
        top = 65535.0 if image.mode.startswith("I;16") else max(values.max(initial=0), 255.0)
        gray = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


class ImageFolderFrames:
    """A folder of images in natural order, decoded on demand (LRU of `cache_size` frames)."""

    def __init__(self, folder: str | Path, resolution: int | None = 480, cache_size: int = 64):
        folder = Path(folder)
        if not folder.exists():
            raise FrameReadError(folder, "folder not found")
        if not folder.is_dir():
            raise FrameReadError(folder, "is not a folder")
        files = [
            p for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        ]  # fmt: skip
        if not files:
            raise FrameReadError(folder, "contains no images (.jpg/.png/.bmp/.tif)")
        self.files = sorted(files, key=lambda p: natural_key(p.name))
        try:
            with Image.open(self.files[0]) as first:  # reads the header only
                width, height = first.size
        except (UnidentifiedImageError, OSError) as exc:
            raise FrameReadError(self.files[0], "is not a readable image") from exc
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
        return [p.stem for p in self.files]

    def get(self, t: int) -> np.ndarray:
        _check_index(t, len(self))
        frame = self._cache.get(t)
        if frame is None:
            frame = self._decode(self.files[t])
            self._cache.put(t, frame)
        return frame

    def _decode(self, path: Path) -> np.ndarray:
        try:
            with Image.open(path) as image:
                image.load()
                expected = (self._source_size[1], self._source_size[0])
                if image.size != expected and not self._warned_size:
                    log.warning("%s: size %s differs from the first frame's %s; resizing",
                                path, image.size, expected)  # fmt: skip
                    self._warned_size = True
                rgb = _to_rgb8(image)
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise FrameReadError(path, "is not a readable image (corrupt or truncated?)") from exc
        h, w = self._size
        if rgb.shape[:2] != (h, w):
            rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BICUBIC))
        return np.ascontiguousarray(rgb)


class VideoFrames:
    """A video decoded once, in order, into a JPEG cache folder; frames served from there.

    Clips up to `eager_limit` frames (by the container's estimate) are decoded at open so the
    length is exact; longer ones decode lazily as frames are requested (the length is then the
    container's estimate until the decoder reaches the end).
    """

    def __init__(
        self,
        path: str | Path,
        resolution: int | None = 480,
        cache_dir: str | Path | None = None,
        eager_limit: int = 2000,
        cache_size: int = 64,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise FrameReadError(path, "video file not found")
        self.path = path
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise FrameReadError(path, "is not a video OpenCV can read")
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        estimate = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._owns_cache = cache_dir is None
        self.cache_dir = Path(cache_dir or tempfile.mkdtemp(prefix="mivos-frames-"))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._decoded = 0  # frames 0..decoded-1 are in the cache folder
        self._finished = False
        self._source_size = (height, width)
        self._size = working_size(height, width, resolution)
        self._length = max(estimate, 0)
        self._ram = _LRU(cache_size)
        if not self._reuse_cache():
            if estimate <= 0 or estimate <= eager_limit:
                self.prefetch_all()
        if self._length == 0 or (height <= 0 or width <= 0):
            self._ensure(0)
            if self._length == 0:
                raise FrameReadError(path, "has no frames")

    # The cache folder is reused when the same file at the same size was fully decoded before.
    def _meta(self) -> dict:
        stat = self.path.stat()
        return {
            "source": str(self.path.resolve()), "bytes": stat.st_size, "mtime": stat.st_mtime,
            "size": list(self._size),
        }  # fmt: skip

    def _reuse_cache(self) -> bool:
        meta_file = self.cache_dir / "meta.json"
        if self._owns_cache or not meta_file.is_file():
            return False
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        count = meta.pop("frames", None)
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
        _check_index(t, len(self))
        frame = self._ram.get(t)
        if frame is not None:
            return frame
        self._ensure(t)
        if t >= self._length:
            raise IndexError(f"frame {t} is past the end of {self.path} ({self._length} frames)")
        bgr = cv2.imread(str(self.cache_dir / f"{t:05d}.jpg"), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FrameReadError(self.cache_dir / f"{t:05d}.jpg", "cached frame is unreadable")
        frame = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        self._ram.put(t, frame)
        return frame

    def _ensure(self, t: int) -> None:
        """Decode forward until frame t is cached (or the video ends)."""
        with self._lock:
            while self._decoded <= t and not self._finished:
                self._decode_next()

    def _decode_next(self) -> None:
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            self._finished = True
            self._length = self._decoded
            self._capture.release()
            if not self._owns_cache:
                meta = {**self._meta(), "frames": self._decoded}
                (self.cache_dir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            return
        h, w = self._size
        if bgr.shape[:2] != (h, w):
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_CUBIC)
        t = self._decoded
        # Frames are always served from the JPEG, so a frame reads the same before and after
        # eviction or a reopen.
        cv2.imwrite(str(self.cache_dir / f"{t:05d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
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
        with self._lock:
            if self._capture.isOpened():
                self._capture.release()
            if self._owns_cache:
                shutil.rmtree(self.cache_dir, ignore_errors=True)

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown; nothing to report to
            pass


def open_frames(
    video: str | Path | None = None,
    images: str | Path | None = None,
    resolution: int | None = 480,
    cache_dir: str | Path | None = None,
) -> FrameSource:
    """Open exactly one of a video file or an image folder."""
    if (video is None) == (images is None):
        raise ValueError("give exactly one of a video file or an image folder")
    if images is not None:
        return ImageFolderFrames(images, resolution)
    return VideoFrames(video, resolution, cache_dir)
