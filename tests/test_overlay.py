"""Exact-value checks of the numpy overlay renderer (spec 6.1-6.4)."""

from __future__ import annotations

import numpy as np
import pytest

from util.palette import DAVIS_PALETTE
from workflow.overlay import (
    OVERLAY_MODES,
    checkerboard,
    composite_layer,
    draw_cursor,
    draw_selection,
    minimap_crop,
    object_colours,
    overlay_davis,
    overlay_fade,
    overlay_layered,
    overlay_light,
    overlay_popup,
)


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)


@pytest.fixture
def mask() -> np.ndarray:
    m = np.zeros((6, 6), np.uint8)
    m[2:4, 2:4] = 1
    m[3, 3] = 2
    return m


def _ring() -> np.ndarray:
    """The outer contour of the 2x2 square at rows/cols 2..3 under the 3x3-cross rule."""
    ring = np.zeros((6, 6), bool)
    ring[1, 2:4] = ring[4, 2:4] = True
    ring[2:4, 1] = ring[2:4, 4] = True
    return ring


def test_object_colours_from_davis_palette_and_distinct():
    colours = object_colours(20)
    assert colours.shape == (20, 3) and colours.dtype == np.uint8
    assert tuple(colours[0]) == (0, 0, 0)
    assert tuple(colours[1]) == (128, 0, 0)
    np.testing.assert_array_equal(colours, DAVIS_PALETTE[:20])
    assert len({tuple(c) for c in colours}) == 20
    colours[1] = 7  # a copy: callers cannot corrupt the palette
    assert tuple(DAVIS_PALETTE[1]) == (128, 0, 0)
    with pytest.raises(ValueError):
        object_colours(257)


def test_davis_blend_and_contour(image, mask):
    out = overlay_davis(image, mask)
    fg = mask > 0
    colours = DAVIS_PALETTE.astype(np.float64)[mask]
    expected = (image * 0.5 + colours * 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out[fg], expected[fg])
    green = (0, 128, 0)  # DAVIS colour of id 2
    assert out[3, 3].tolist() == [
        int(v * 0.5 + c * 0.5) for v, c in zip(image[3, 3], green, strict=True)
    ]
    ring = _ring()
    assert (out[ring] == 0).all()
    # Diagonal corners are not contour under the 3x3 cross; nor is anything further out.
    untouched = ~fg & ~ring
    np.testing.assert_array_equal(out[untouched], image[untouched])
    for y, x in ((1, 1), (1, 4), (4, 1), (4, 4)):
        np.testing.assert_array_equal(out[y, x], image[y, x])


def test_light_uses_alpha_point_one(image, mask):
    out = overlay_light(image, mask)
    fg = mask > 0
    colours = DAVIS_PALETTE.astype(np.float64)[mask]
    expected = (image * 0.9 + colours * 0.1).astype(np.uint8)
    np.testing.assert_array_equal(out[fg], expected[fg])
    assert (out[_ring()] == 0).all()


def test_fade_dims_background_and_contour(image, mask):
    out = overlay_fade(image, mask)
    davis = overlay_davis(image, mask)
    fg = mask > 0
    np.testing.assert_array_equal(out[fg], davis[fg])
    ring = _ring()
    assert (out[ring] == 0).all()
    bg = ~fg & ~ring
    np.testing.assert_array_equal(out[bg], (image[bg] * 0.6).astype(np.uint8))


def test_popup_keeps_objects_and_greys_background(image, mask):
    out = overlay_popup(image, mask)
    fg = mask > 0
    np.testing.assert_array_equal(out[fg], image[fg])
    ring = _ring()
    assert (out[ring] == 0).all()
    bg = ~fg & ~ring
    grey = ((image[bg] @ np.array([0.299, 0.587, 0.114])) * 0.4).astype(np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(out[bg][:, c], grey)


def test_layered_shows_background_where_mask_is_zero(image, mask):
    background = np.full_like(image, 77)
    out = overlay_layered(image, mask, background)
    fg = mask > 0
    np.testing.assert_array_equal(out[fg], image[fg])
    assert (out[~fg] == 77).all()
    default = overlay_layered(image, mask)
    board = checkerboard(6, 6)
    np.testing.assert_array_equal(default[~fg], board[~fg])


def test_checkerboard_squares():
    board = checkerboard(40, 40)
    assert board.shape == (40, 40, 3) and board.dtype == np.uint8
    assert board[0, 0, 0] == board[15, 15, 0] != board[0, 16, 0] == board[16, 0, 0]
    assert board[16, 16, 0] == board[0, 0, 0]


@pytest.mark.parametrize("mode", sorted(OVERLAY_MODES))
def test_modes_preserve_shape_dtype_and_inputs(mode, image, mask):
    assert set(OVERLAY_MODES) == {"davis", "fade", "light", "popup", "layered"}
    image_before, mask_before = image.copy(), mask.copy()
    out = OVERLAY_MODES[mode](image, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out is not image
    np.testing.assert_array_equal(image, image_before)
    np.testing.assert_array_equal(mask, mask_before)


@pytest.mark.parametrize("mode", sorted(OVERLAY_MODES))
def test_modes_handle_empty_mask_and_high_ids(mode, image):
    empty = np.zeros((6, 6), np.uint8)
    out = OVERLAY_MODES[mode](image, empty)
    if mode in ("davis", "light"):
        np.testing.assert_array_equal(out, image)
    high = np.full((6, 6), 255, np.uint8)  # any uint8 id has a palette colour
    assert OVERLAY_MODES[mode](image, high).shape == image.shape


def test_mismatched_mask_rejected(image):
    with pytest.raises(ValueError):
        overlay_davis(image, np.zeros((5, 6), np.uint8))


def test_composite_layer_formula(image):
    layer = np.full_like(image, 200)
    alpha = np.zeros((6, 6), np.float32)
    alpha[0, 0], alpha[1, 1] = 0.75, 1.0
    before = image.copy()
    out = composite_layer(image, layer, alpha)
    np.testing.assert_array_equal(image, before)
    assert out[0, 0].tolist() == [int(v * 0.25 + 200 * 0.75) for v in image[0, 0]]
    assert out[1, 1].tolist() == [200, 200, 200]
    untouched = alpha == 0
    np.testing.assert_array_equal(out[untouched], image[untouched])


def test_draw_cursor_filled_circle_at_opacity():
    image = np.zeros((20, 20, 3), np.uint8)
    out = draw_cursor(image, 10, 10, 3, (200, 100, 0))
    assert out[10, 10].tolist() == [100, 50, 0]
    assert out[10, 13].tolist() == [100, 50, 0]  # on the radius
    assert out[10, 15].tolist() == [0, 0, 0]
    assert out[0, 0].tolist() == [0, 0, 0]
    assert (image == 0).all()
    # Partly or wholly outside the frame is clipped, not an error.
    assert draw_cursor(image, 0, 0, 3, (200, 100, 0))[0, 0].tolist() == [100, 50, 0]
    np.testing.assert_array_equal(draw_cursor(image, -50, -50, 3, (255, 0, 0)), image)


def test_draw_selection_rectangle_any_corner_order():
    image = np.full((10, 10, 3), 100, np.uint8)
    out = draw_selection(image, 7, 6, 2, 3)
    inside = np.zeros((10, 10), bool)
    inside[3:7, 2:8] = True
    assert (out[inside] == [114, 177, 114]).all()  # 0.5*100 + 0.5*(128, 255, 128), truncated
    assert (out[~inside] == 100).all()
    assert (image == 100).all()


def test_minimap_crop_centred_and_clamped():
    image = np.arange(40 * 60 * 3, dtype=np.uint32).reshape(40, 60, 3).astype(np.uint8)
    crop = minimap_crop(image, 30, 20, 11)  # side = 2 * (11 // 2) = 10
    assert crop.shape == (10, 10, 3)
    np.testing.assert_array_equal(crop, image[15:25, 25:35])
    np.testing.assert_array_equal(minimap_crop(image, 0, 0, 10), image[0:10, 0:10])
    np.testing.assert_array_equal(minimap_crop(image, 59, 39, 10), image[30:40, 50:60])
    np.testing.assert_array_equal(minimap_crop(image, 2, 38, 10), image[30:40, 0:10])
    assert crop.flags.c_contiguous
    crop[:] = 0
    assert image[20, 30].any()  # a copy, not a view


def test_minimap_crop_larger_than_frame_returns_what_fits():
    image = np.zeros((8, 30, 3), np.uint8)
    assert minimap_crop(image, 15, 4, 20).shape == (8, 20, 3)
    assert minimap_crop(image, 15, 4, 100).shape == (8, 30, 3)
