"""Frame sources: lazy, resized to the working resolution once, bounded in memory.

A source gives (H, W, 3) uint8 RGB frames at the working size, as viewers show them: images
have their EXIF orientation applied, videos their display rotation. Image folders decode on
demand behind an LRU. Videos decode sequentially (random seeks in compressed video are
unreliable) into a JPEG cache folder that an explicit `cache_dir` keeps for the next open.
"""

from __future__ import annotations

import functools
import io
import logging
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from PIL.Image import Transpose

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
# The project files workflow/state.py writes (now and in the first release): a folder holding
# one has had masks saved into it, so its PNGs beside same-stem frames are ours, not frames.
PROJECT_FILES = (".mivos_project.json", ".mivos_session.json")
EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that shows the image upright (ImageOps.exif_transpose's
# table). 5..8 swap width and height.
_UPRIGHT = {
    2: Transpose.FLIP_LEFT_RIGHT, 3: Transpose.ROTATE_180, 4: Transpose.FLIP_TOP_BOTTOM,
    5: Transpose.TRANSPOSE, 6: Transpose.ROTATE_270, 7: Transpose.TRANSVERSE,
    8: Transpose.ROTATE_90,
}  # fmt: skip
# What Pillow raises for unreadable, truncated or corrupt files and absurd dimensions.
_PIL_ERRORS = (
    UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
)  # fmt: skip


class ArrayFrames:
    """Frames already in memory (tests, replays); no resizing.

    `frames` is (T, H, W, 3) uint8 RGB; anything else raises ValueError.
    """

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

    @property
    def fps(self) -> None:
        """Arrays carry no frame rate."""
        return None

    def get(self, t: int) -> np.ndarray:
        """Frame t, (H, W, 3) uint8, a copy; IndexError outside 0..T-1."""
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


@functools.cache
def _pillow_orients_tiff() -> bool:
    """Whether this Pillow shows TIFFs upright by itself (newer versions do; older ones not)."""
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    Image.new("L", (2, 1)).save(buffer, format="TIFF", exif=exif.tobytes())
    buffer.seek(0)
    with Image.open(buffer) as probe:
        return probe.size == (1, 2)


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8) of an opened image, read from its header; 1 when absent.

    Decodes no pixels: Pillow would decode a whole PNG to look for an eXIf chunk after the
    pixel data, so a PNG's orientation is taken only from a chunk before it (where the PNG
    specification puts it), in the header and at decode alike, so both agree on the size.
    A TIFF that Pillow itself turns upright counts as 1.
    """
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    if image.format == "TIFF" and _pillow_orients_tiff():
        return 1  # Pillow reports the upright size and turns the pixels itself
    try:
        value = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not make the frame unreadable
        return 1
    return value if value in _UPRIGHT else 1


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """The image as viewers show it for an EXIF `orientation` (1..8); 1 returns it as is."""
    transpose = _UPRIGHT.get(orientation)
    return image if transpose is None else image.transpose(transpose)


def upright_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as viewers show the image, from its header (no pixels decoded)."""
    width, height = image.size
    return (height, width) if exif_orientation(image) >= 5 else (width, height)


def _skip_own_masks(folder: Path, files: list[Path]) -> list[Path]:
    """Drop the masks this application saved among the frames (see ImageFolderFrames)."""
    if not any((folder / name).is_file() for name in PROJECT_FILES):
        return files
    other_stems = {p.stem for p in files if p.suffix.lower() != ".png"}
    masks = [p for p in files if p.suffix.lower() == ".png" and p.stem in other_stems]
    if masks:
        log.warning(
            "%s: holds a project file; %d PNG files named like its frames (%s...) are masks "
            "saved there, not frames: skipped", folder, len(masks), masks[0].name,
        )  # fmt: skip
    skipped = set(masks)
    return [p for p in files if p not in skipped]


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
    files = _skip_own_masks(folder, files)
    if not files:
        raise FrameReadError(folder, "contains no images (.jpg/.png/.bmp/.tif)")
    return sorted(files, key=lambda p: natural_key(p.name))


def _unique_stems(files: list[Path]) -> list[str]:
    """File stems, except that "a.jpg" and "a.png" keep their suffix so no output overwrites."""
    counts = Counter(p.stem for p in files)
    return [p.name if counts[p.stem] > 1 else p.stem for p in files]


class ImageFolderFrames:
    """A folder of images in natural order, decoded on demand (LRU of `cache_size` frames).

    Files: .jpg/.jpeg/.png/.bmp/.tif/.tiff (any case), not hidden. Each frame is shown as
    viewers show it: its EXIF orientation applied (a phone's portrait JPEG stored landscape
    with Orientation=6 is a portrait frame), and `source_size`/`size` are that upright size,
    read from the first image's header only. Images of another (upright) size than the first
    are resized to the working size too (with one warning). A folder holding this
    application's project file (`.mivos_project.json`, or the first release's
    `.mivos_session.json`) has had masks saved into it: its `NNNN.png` files that sit beside a
    frame of the same stem in another format are those masks and are not listed as frames.

    Raises FrameReadError naming the folder (missing, not a folder, no images) or the first
    image (unreadable) at open, and naming the file when a later frame is unreadable.
    """

    def __init__(
        self, folder: str | Path, resolution: int | None = 480, cache_size: int = 64
    ) -> None:
        self.files = _list_images(Path(folder))
        self._names = _unique_stems(self.files)
        try:
            with Image.open(self.files[0]) as first:  # parses the header, decodes no pixels
                width, height = upright_size(first)
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

    @property
    def fps(self) -> None:
        """An image folder has no frame rate of its own."""
        return None

    def get(self, t: int) -> np.ndarray:
        """Frame t, (H, W, 3) uint8 RGB at the working size, a copy the caller may modify.

        IndexError outside 0..T-1; FrameReadError naming the file when it cannot be decoded.
        """
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
                orientation = exif_orientation(image)  # before load(): the header's rule
                image.load()
                if exif_orientation(image) != orientation:
                    # A loader that turned the pixels upright itself drops the tag: turning
                    # them again would undo it.
                    orientation = 1
                shown = upright(image, orientation)
                self._warn_if_resized(path, shown.size)
                rgb = _to_rgb8(shown)
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
    """Open exactly one of a video file or an image folder ("" counts as not given).

    Returns a FrameSource of (H, W, 3) uint8 RGB frames, upright, at the working size for
    `resolution` (the shorter side; None or -1 keeps the source size). A video is decoded by
    PyAV (OpenCV only where PyAV fails) into `cache_dir` (a temporary folder when None).
    Raises ValueError unless exactly one input is given, FrameReadError naming the file or
    folder that cannot be read.
    """
    video, images = video or None, images or None
    if (video is None) == (images is None):
        raise ValueError("give exactly one of a video file or an image folder")
    if images is not None:
        return ImageFolderFrames(images, resolution)
    return VideoFrames(video, resolution, cache_dir)
