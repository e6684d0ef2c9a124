"""Frame sources: lazy, resized to the working resolution once, bounded in memory.

A source gives (H, W, 3) uint8 RGB frames at the working size. Image folders decode on demand
behind an LRU. Videos decode sequentially (random seeks in compressed video are unreliable)
into a JPEG cache folder that an explicit `cache_dir` keeps for the next open.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from inference_core.frame_base import (  # noqa: F401 - re-exported: the public API lives here
    FrameLRU,
    FrameReadError,
    FrameSource,
    check_index,
    working_size,
)
from inference_core.video_frames import VideoFrames
from util.natural_sort import natural_key

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# What Pillow raises for unreadable, truncated or corrupt files and absurd dimensions.
_PIL_ERRORS = (
    UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
)  # fmt: skip


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
        check_index(t, len(self))
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
        self._cache = FrameLRU(cache_size)
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
        check_index(t, len(self))
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
