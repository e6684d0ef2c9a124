"""Joint image/mask augmentation with OpenCV; one random draw is applied to image and masks.

Randomness comes from a numpy Generator the caller owns, so workers seed it explicitly.
"""

from __future__ import annotations

import cv2
import numpy as np

FILL_RGB = (124, 116, 104)  # mean colour used to fill pixels an affine moves in


def random_affine(
    rng: np.random.Generator,
    size: tuple[int, int],
    degrees: float,
    scale: tuple[float, float],
    shear: float,
    translate: float = 0.0,
) -> np.ndarray:
    """A 2x3 affine matrix about the image centre; size is (H, W)."""
    h, w = size
    angle = np.deg2rad(rng.uniform(-degrees, degrees))
    s = rng.uniform(*scale)
    sh = np.deg2rad(rng.uniform(-shear, shear))
    tx, ty = rng.uniform(-translate, translate, 2) * (w, h)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lin = s * rot @ np.array([[1.0, np.tan(sh)], [0.0, 1.0]])
    centre = np.array([w / 2, h / 2])
    offset = centre - lin @ centre + (tx, ty)
    return np.hstack([lin, offset[:, None]])


def warp(image: np.ndarray, masks: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """image (H,W,3) uint8 bicubic, masks (K,H,W) uint8 nearest, same matrix."""
    h, w = image.shape[:2]
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_CUBIC, borderValue=FILL_RGB)
    warped = [cv2.warpAffine(m, matrix, (w, h), flags=cv2.INTER_NEAREST) for m in masks]
    return out, np.stack(warped) if warped else masks


def resize_short(image: np.ndarray, masks: np.ndarray, short: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale so the short side is `short` (bicubic image, nearest masks)."""
    h, w = image.shape[:2]
    f = short / min(h, w)
    size = (max(short, round(w * f)), max(short, round(h * f)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    masks = np.stack([cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in masks])
    return image, masks


def crop_box(rng: np.random.Generator, size: tuple[int, int], crop: int) -> tuple[int, int]:
    """Top-left corner of a random crop (padding is applied by `apply_crop` where needed)."""
    h, w = size
    return int(rng.integers(0, max(h - crop, 0) + 1)), int(rng.integers(0, max(w - crop, 0) + 1))


def apply_crop(array: np.ndarray, y: int, x: int, crop: int, fill: int = 0) -> np.ndarray:
    """Crop (..., H, W[, C]) at (y, x); pads with `fill` when the input is smaller."""
    spatial = (0, 1) if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3) else (1, 2)
    h, w = array.shape[spatial[0]], array.shape[spatial[1]]
    if h < crop or w < crop:
        pad = [(0, 0)] * array.ndim
        pad[spatial[0]] = (0, max(crop - h, 0))
        pad[spatial[1]] = (0, max(crop - w, 0))
        array = np.pad(array, pad, constant_values=fill)
    index = [slice(None)] * array.ndim
    index[spatial[0]] = slice(y, y + crop)
    index[spatial[1]] = slice(x, x + crop)
    return array[tuple(index)]


def color_jitter(
    rng: np.random.Generator,
    image: np.ndarray,
    brightness: float,
    contrast: float,
    saturation: float,
    grayscale_p: float = 0.0,
) -> np.ndarray:
    """Random brightness/contrast/saturation factors in [1-x, 1+x]; optional grayscale."""
    x = image.astype(np.float32)
    x *= rng.uniform(1 - brightness, 1 + brightness)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
    gray = x.mean(axis=2, keepdims=True)
    x = (x - gray) * rng.uniform(1 - saturation, 1 + saturation) + gray
    if grayscale_p > 0 and rng.random() < grayscale_p:
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    return np.clip(x, 0, 255).astype(np.uint8)


def hflip(image: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror image (H,W,3) and masks (K,H,W) left-right."""
    return np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(masks[..., ::-1])
