"""Reading and writing index masks (one object id per pixel) as PNG files."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from util.natural_sort import natural_key
from util.palette import DAVIS_PALETTE, palette_bytes

# What Pillow raises for missing permissions, truncated or corrupt data and absurd dimensions.
_PIL_ERRORS = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    Image.DecompressionBombError,
)

# Colour code (r << 16 | g << 8 | b) of each palette entry -> its index; the colours are unique.
_CODE_TO_ID = {
    (int(r) << 16) | (int(g) << 8) | int(b): i for i, (r, g, b) in enumerate(DAVIS_PALETTE.tolist())
}


class MaskReadError(ValueError):
    """A mask file that cannot be used; the message starts with its path."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {problem}")


def _colour_ids(rgb: np.ndarray, path: Path) -> np.ndarray:
    """(H, W, 3) DAVIS-palette colours -> (H, W) palette indices."""
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    # Look up each distinct colour once, not each pixel.
    uniq, inverse = np.unique(codes, return_inverse=True)
    ids = np.empty(len(uniq), np.uint8)
    for n, code in enumerate(uniq.tolist()):
        if code not in _CODE_TO_ID:
            colour = ((code >> 16) & 255, (code >> 8) & 255, code & 255)
            raise MaskReadError(path, f"colour {colour} is not in the DAVIS palette")
        ids[n] = _CODE_TO_ID[code]
    return ids[inverse.reshape(codes.shape)]


def _gray_ids(values: np.ndarray, path: Path, mode: str) -> np.ndarray:
    """Single-channel values (8/16/32-bit) -> ids; a 0/255 image is a binary mask."""
    if values.dtype.kind not in "biu":
        raise MaskReadError(path, f"unsupported mask image mode {mode} (not integer ids)")
    if values.size and (values.max() > 255 or values.min() < 0):
        bad = int(values.max()) if values.max() > 255 else int(values.min())
        raise MaskReadError(path, f"holds value {bad}; object ids must be in 0..255")
    values = values.astype(np.uint8)
    present = np.unique(values)
    if present.size and present[-1] == 255 and set(present.tolist()) <= {0, 255}:
        return (values > 128).astype(np.uint8)  # a 0/255 image is one object, not object 255
    return values


def _palette_ids(image: Image.Image, path: Path) -> np.ndarray:
    """A palette image's indices as object ids, checked against its palette.

    Indices are ids when the colours the image uses are DAVIS's at those indices, or when its
    palette is the plain grey ramp (index i = grey i: ids saved without a palette). Otherwise
    an editor has re-indexed the image (an adaptive palette): each index is mapped by its
    colour to the DAVIS id of that colour. A palette with colours outside DAVIS's cannot say
    which object is which: MaskReadError naming the file, never indices taken as ids.
    """
    indices = np.asarray(image, dtype=np.uint8)
    palette = image.getpalette()
    if palette is None:
        return indices
    table = np.zeros((256, 3), np.int32)
    entries = np.asarray(palette[: 256 * 3], np.int32).reshape(-1, 3)
    table[: len(entries)] = entries
    used = np.unique(indices)
    colours = table[used]
    if (colours == DAVIS_PALETTE[used]).all() or (colours == used[:, None]).all():
        return indices
    codes = (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
    unknown = [
        (int(i), tuple(c))
        for i, c, code in zip(used, colours.tolist(), codes.tolist(), strict=True)
        if code not in _CODE_TO_ID
    ]
    if unknown:
        index, colour = unknown[0]
        raise MaskReadError(
            path,
            f"is a palette PNG whose colours are not the DAVIS palette (index {index} is "
            f"{colour}), so its indices cannot be taken as object ids; save it with the DAVIS "
            "palette, as DAVIS-coloured RGB, or as a grayscale image of ids",
        )
    lut = np.zeros(256, np.uint8)
    lut[used] = [_CODE_TO_ID[code] for code in codes.tolist()]
    return lut[indices]


def _to_ids(image: Image.Image, path: Path) -> np.ndarray:
    mode = image.mode
    if mode == "P":
        return _palette_ids(image, path)
    if mode == "PA":
        return np.ascontiguousarray(np.asarray(image)[..., 0])
    if mode in ("RGB", "RGBA"):
        rgba = np.asarray(image.convert("RGBA"))
        rgb = rgba[..., :3].copy()
        rgb[rgba[..., 3] == 0] = 0  # fully transparent pixels are background whatever their colour
        return _colour_ids(rgb, path)
    if mode in ("LA", "La"):
        image = image.convert("L")
    values = np.asarray(image)
    if values.ndim != 2:
        raise MaskReadError(path, f"unsupported mask image mode {mode}")
    return _gray_ids(values, path, mode)


def read_index_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W) uint8 object ids; resized with nearest neighbour to `size` (H, W) if given.

    Palette PNGs give their indices when the palette is DAVIS's (or a grey ramp), else their
    colours mapped to DAVIS ids (MaskReadError when a colour is not DAVIS's); 'L' and 16-bit
    images their values (a 0/255 image is read as 0/1); RGB(A) images must use DAVIS palette
    colours. 255 is returned as is (void in DAVIS/VOC ground truth; callers decide).
    """
    path = Path(path)
    if not path.exists():
        raise MaskReadError(path, "mask file not found")
    if not path.is_file():
        raise MaskReadError(path, "is not a file")
    try:
        with Image.open(path) as image:
            image.load()
            ids = _to_ids(image, path)
    except MaskReadError:
        raise
    except _PIL_ERRORS as exc:
        raise MaskReadError(path, f"is not a readable image ({exc})") from exc
    if size is not None and ids.shape != (size[0], size[1]):
        if size[0] <= 0 or size[1] <= 0:
            raise ValueError(f"mask size must be positive, got {size}")
        ids = cv2.resize(ids, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(ids)


def _as_id_image(mask: np.ndarray) -> Image.Image:
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"expected a non-empty (H, W) mask, got shape {mask.shape}")
    if mask.dtype.kind not in "biu":
        raise ValueError(f"expected integer object ids, got dtype {mask.dtype}")
    if mask.dtype != np.uint8 and (mask.min() < 0 or mask.max() > 255):
        # A silent uint8 cast would wrap id 256 to background.
        raise ValueError(f"object ids must be in 0..255, got {mask.min()}..{mask.max()}")
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
    image.putpalette(palette_bytes())
    return image


def _fsync_dir(folder: Path) -> None:
    """Persist a rename on POSIX; Windows cannot open folders, and there it is not needed."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_index_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write (H, W) ids as an 8-bit DAVIS-palette PNG, atomically (temp file, fsync, rename).

    A reader never sees a half-written file, and a crash leaves the previous file intact.
    """
    path = Path(path)
    image = _as_id_image(mask)
    path.parent.mkdir(parents=True, exist_ok=True)
    # pid + thread id: two writers of the same mask never share a temp file.
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:
            image.save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def list_mask_files(folder: str | Path) -> list[Path]:
    """The .png files of a folder in natural order, hidden files ignored."""
    folder = Path(folder)
    files = [
        p for p in folder.iterdir()
        if p.suffix.lower() == ".png" and not p.name.startswith(".") and p.is_file()
    ]  # fmt: skip
    return sorted(files, key=lambda p: natural_key(p.name))
