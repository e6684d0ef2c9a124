"""Composing what the canvas shows: frame, mask overlay, the stroke being drawn, the cursor."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workflow.overlay import (
    OVERLAY_MODES,
    composite_layer,
    draw_cursor,
    draw_selection,
    object_colours,
)


@dataclass
class StrokePreview:
    label: int
    thickness: int
    points: list[tuple[float, float]]


def draw_strokes(image: np.ndarray, strokes: list[StrokePreview], num_objects: int) -> np.ndarray:
    """Strokes in their object's colour (background strokes black) at opacity 0.75."""
    if not strokes:
        return image
    colours = object_colours(num_objects + 1)
    layer = np.zeros_like(image)
    alpha = np.zeros(image.shape[:2], np.float32)
    for stroke in strokes:
        pts = np.round(np.array(stroke.points, np.float64)).astype(np.int32).reshape(-1, 1, 2)
        colour = tuple(int(c) for c in colours[stroke.label])
        cv2.polylines(layer, [pts], False, colour, thickness=stroke.thickness)
        cv2.polylines(alpha, [pts], False, 0.75, thickness=stroke.thickness)
    return composite_layer(image, layer, alpha)


def compose(
    frame: np.ndarray,
    mask: np.ndarray,
    overlay_mode: str,
    num_objects: int,
    strokes: list[StrokePreview],
    cursor: tuple[float, float] | None,
    cursor_radius: int,
    cursor_object: int,
    selection: tuple[float, float, float, float] | None = None,
    clicks=(),
) -> np.ndarray:
    image = OVERLAY_MODES[overlay_mode](frame, mask)
    image = draw_strokes(image, strokes, num_objects)
    for click in clicks:  # positive clicks green, negative red
        colour = (0, 220, 0) if click.positive else (230, 0, 0)
        image = draw_cursor(image, int(round(click.x)), int(round(click.y)), 3, colour, 1.0)
    if selection is not None:
        image = draw_selection(image, *(int(round(v)) for v in selection))
    elif cursor is not None:
        colour = tuple(int(c) for c in object_colours(num_objects + 1)[cursor_object])
        image = draw_cursor(
            image, int(round(cursor[0])), int(round(cursor[1])), cursor_radius, colour
        )
    return image
