"""Pure-numpy rendering of mask overlays, cursor layers and the minimap crop (spec 6.1-6.4).

Images are (H, W, 3) uint8 RGB, masks (H, W) uint8 object ids (0 = background). Every function
returns a new array and leaves its inputs untouched. Blends are computed in float64 and cast
back to uint8 by truncation, as the spec prescribes, so results match the reference bit for bit.
This module must stay free of Qt so it can be tested and reused headless.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import cv2
import numpy as np

from util.palette import DAVIS_PALETTE

# The full 256-entry palette, so any uint8 id has a distinct colour and `colours[mask]` never
# indexes out of range.
_PALETTE_F64 = DAVIS_PALETTE.astype(np.float64)
_PALETTE_F64.setflags(write=False)

# 3x3 cross: the spec's contour uses 4-connectivity, so diagonal neighbours are not contour.
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))

# ITU-R BT.601 luma weights for the popup mode's grey background.
_LUMA = np.array([0.299, 0.587, 0.114], np.float64)

FADE_FACTOR = 0.6
POPUP_DIM = 0.4
CHECKER_PX = 16
CHECKER_LEVELS = (192, 128)  # light / dark grey of the "transparent" checkerboard


def object_colours(n: int) -> np.ndarray:
    """(n, 3) uint8 RGB colours for ids 0..n-1 from the DAVIS palette (id 0 is black)."""
    if not 0 <= n <= len(DAVIS_PALETTE):
        raise ValueError(f"n must be in 0..{len(DAVIS_PALETTE)}, got {n}")
    return DAVIS_PALETTE[:n].copy()


def _check(image: np.ndarray, mask: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {image.shape[:2]}")


def _outer_contour(foreground: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels 4-adjacent to the foreground but not in it."""
    fg = foreground.astype(np.uint8)
    return cv2.dilate(fg, _CROSS).astype(bool) & ~foreground


def overlay_davis(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend object pixels towards their colour by `alpha`, then a black 1-px outer contour."""
    _check(image, mask)
    fg = mask > 0
    out = image.copy()
    if fg.any():
        # Only object pixels are blended: cheaper than blending the frame and selecting.
        blended = image[fg] * (1.0 - alpha) + _PALETTE_F64[mask[fg]] * alpha
        out[fg] = blended.astype(np.uint8)
    out[_outer_contour(fg)] = 0
    return out


def overlay_light(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Like davis with 0.9 image + 0.1 colour, for judging boundaries on the real pixels."""
    return overlay_davis(image, mask, alpha=0.1)


def overlay_fade(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Davis, then every non-object pixel (contour included) multiplied by 0.6."""
    out = overlay_davis(image, mask)
    bg = mask == 0
    out[bg] = (out[bg] * FADE_FACTOR).astype(np.uint8)
    return out


def overlay_popup(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Objects keep their pixels; the background turns grey and dimmed to 0.4; black contour."""
    _check(image, mask)
    fg = mask > 0
    out = image.copy()
    bg = ~fg
    grey = (image[bg] @ _LUMA) * POPUP_DIM
    out[bg] = grey.astype(np.uint8)[:, None]
    out[_outer_contour(fg)] = 0
    return out


def checkerboard(height: int, width: int, square_px: int = CHECKER_PX) -> np.ndarray:
    """(H, W, 3) uint8 grey checkerboard, the usual picture of "transparent"."""
    rows = (np.arange(height) // square_px)[:, None]
    cols = (np.arange(width) // square_px)[None, :]
    light, dark = CHECKER_LEVELS
    grey = np.where((rows + cols) % 2 == 0, light, dark).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def overlay_layered(
    image: np.ndarray, mask: np.ndarray, background: np.ndarray | None = None
) -> np.ndarray:
    """Object pixels of `image` over `background` (default: a checkerboard), for rotoscoping."""
    _check(image, mask)
    if background is None:
        out = checkerboard(*mask.shape)
    else:
        if background.shape != image.shape:
            raise ValueError(f"background {background.shape} does not match image {image.shape}")
        out = np.array(background, dtype=np.uint8, copy=True)
    fg = mask > 0
    out[fg] = image[fg]
    return out


OVERLAY_MODES: Mapping[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = MappingProxyType(
    {
        "davis": overlay_davis,
        "fade": overlay_fade,
        "light": overlay_light,
        "popup": overlay_popup,
        "layered": overlay_layered,
    }
)


def composite_layer(base: np.ndarray, layer_rgb: np.ndarray, layer_alpha: np.ndarray) -> np.ndarray:
    """base*(1-a) + layer*a per pixel; base/layer (H, W, 3) uint8, layer_alpha (H, W) float."""
    if layer_rgb.shape != base.shape or layer_alpha.shape != base.shape[:2]:
        raise ValueError(
            f"layer {layer_rgb.shape} / alpha {layer_alpha.shape} do not match base {base.shape}"
        )
    out = base.copy()
    # Where alpha is 0 the blend gives base exactly, so only the painted pixels need the maths.
    hit = layer_alpha > 0
    if hit.any():
        a = layer_alpha[hit].astype(np.float64)[:, None]
        out[hit] = (base[hit] * (1.0 - a) + layer_rgb[hit] * a).astype(np.uint8)
    return out


def _blend_patch(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    alpha: np.ndarray,
    colour: tuple[int, int, int],
) -> np.ndarray:
    """Composite a flat colour with a (h, w) alpha patch placed at box = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    out = image.copy()
    region = out[y0:y1, x0:x1]
    layer = np.empty_like(region)
    layer[:] = np.asarray(colour, np.uint8)
    out[y0:y1, x0:x1] = composite_layer(region, layer, alpha)
    return out


def draw_cursor(
    image: np.ndarray,
    x: int,
    y: int,
    radius: int,
    colour: tuple[int, int, int],
    opacity: float = 0.5,
) -> np.ndarray:
    """A filled circle of `radius` at (x, y) in `colour`, composited at `opacity`."""
    h, w = image.shape[:2]
    # Draw into the circle's bounding box only: the cursor is redrawn on every mouse move.
    x0, y0 = max(x - radius, 0), max(y - radius, 0)
    x1, y1 = min(x + radius + 1, w), min(y + radius + 1, h)
    if x0 >= x1 or y0 >= y1:
        return image.copy()
    alpha = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.circle(alpha, (x - x0, y - y0), max(int(radius), 0), float(opacity), thickness=-1)
    return _blend_patch(image, (x0, y0, x1, y1), alpha, colour)


def draw_selection(
    image: np.ndarray,
    x0: int,
    y0: int,
    x1: int,
    y1: int,
    colour: tuple[int, int, int] = (128, 255, 128),
    opacity: float = 0.5,
) -> np.ndarray:
    """A filled rectangle between two corners (inclusive, any order), composited at `opacity`."""
    h, w = image.shape[:2]
    left, right = sorted((x0, x1))
    top, bottom = sorted((y0, y1))
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right + 1, w), min(bottom + 1, h)
    if left >= right or top >= bottom:
        return image.copy()
    alpha = np.full((bottom - top, right - left), opacity, np.float32)
    return _blend_patch(image, (left, top, right, bottom), alpha, colour)


def _crop_start(centre: int, side: int, length: int) -> tuple[int, int]:
    """Start and extent of a `side`-long window centred on `centre`, kept inside [0, length)."""
    if side >= length:
        return 0, length
    start = min(max(centre - side // 2, 0), length - side)
    return start, side


def minimap_crop(image: np.ndarray, cx: int, cy: int, zoom_px: int) -> np.ndarray:
    """Square crop of side 2*(zoom_px//2) centred on (cx, cy), clamped inside the frame.

    A frame smaller than the crop yields what fits along that axis. The crop is a contiguous
    copy, ready to hand to a QImage.
    """
    side = max(2 * (int(zoom_px) // 2), 2)
    h, w = image.shape[:2]
    x0, cw = _crop_start(int(cx), side, w)
    y0, ch = _crop_start(int(cy), side, h)
    return image[y0 : y0 + ch, x0 : x0 + cw].copy()
