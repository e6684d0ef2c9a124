"""Reading and writing index masks (one object id per pixel) as PNG files."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from util.natural_sort import natural_key
from util.palette import DAVIS_PALETTE, palette_bytes


class MaskReadError(ValueError):
    """A mask file that cannot be used; the message starts with its path."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {problem}")


def _colour_ids(rgb: np.ndarray, path: Path) -> np.ndarray:
    """Map DAVIS-palette colours to their indices."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    pal = DAVIS_PALETTE.astype(np.int64)
    pal_codes = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    lookup = {int(c): i for i, c in reversed(list(enumerate(pal_codes)))}
    uniq, inverse = np.unique(codes, return_inverse=True)
    ids = np.empty(len(uniq), np.uint8)
    for n, code in enumerate(uniq.tolist()):
        if code not in lookup:
            colour = ((code >> 16) & 255, (code >> 8) & 255, code & 255)
            raise MaskReadError(path, f"colour {colour} is not in the DAVIS palette")
        ids[n] = lookup[code]
    return ids[inverse.reshape(codes.shape)]


def _to_ids(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode == "P":
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("RGB", "RGBA"):
        return _colour_ids(np.asarray(image.convert("RGB")), path)
    values = np.asarray(image)
    if values.ndim != 2:
        raise MaskReadError(path, f"unsupported mask image mode {image.mode}")
    if values.size and values.max() > 255:
        raise MaskReadError(path, f"holds value {int(values.max())}; object ids must be <= 255")
    values = values.astype(np.uint8)
    uniq = np.unique(values)
    if uniq.max(initial=0) == 255 and set(uniq.tolist()) <= {0, 255}:
        return (values > 128).astype(np.uint8)  # a binary 0/255 mask means one object
    return values


def read_index_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W) uint8 object ids; resized with nearest neighbour to `size` (H, W) if given."""
    path = Path(path)
    if not path.is_file():
        raise MaskReadError(path, "mask file not found")
    try:
        with Image.open(path) as image:
            image.load()
            ids = _to_ids(image, path)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise MaskReadError(path, f"is not a readable image ({exc.__class__.__name__})") from exc
    if size is not None and ids.shape != tuple(size):
        ids = cv2.resize(ids, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(ids)


def write_index_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write an 8-bit palette PNG atomically (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
    image.putpalette(palette_bytes())
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            image.save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def list_mask_files(folder: str | Path) -> list[Path]:
    """The .png files of a folder in natural order, hidden files ignored."""
    folder = Path(folder)
    files = [
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() == ".png" and not p.name.startswith(".")
    ]  # fmt: skip
    return sorted(files, key=lambda p: natural_key(p.name))
