"""Exports a user asks for: per-object binary or soft PNGs, an overlay video, COCO RLE JSON.

Every export takes frame names/counts and callables (frame index -> array), never GUI objects,
so the GUI passes lambdas over its stores and the tests pass lambdas over arrays. Each export
reports progress(done, total) after every frame and checks `cancel` between frames.

COCO run-length encoding is implemented here from the format's description: runs are counted
over the mask in column-major order starting with a (possibly empty) run of zeros, and the
compressed string stores each count (delta-coded against the count two places back, from the
fourth count on) in little-endian groups of 5 bits, one character per group: value + 48, with
0x20 set when another group follows and 0x10 of the last group acting as the sign bit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def _temp_path(path: Path) -> Path:
    # Same folder (so os.replace is a rename) and same suffix (so writers pick the format).
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def _write_gray_png(path: Path, image: np.ndarray) -> None:
    """Write an 8-bit grayscale PNG atomically (temp file + rename)."""
    tmp = _temp_path(path)
    try:
        # A 2-D uint8 array becomes an "L" (8-bit grayscale) image.
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(tmp, "PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _object_folders(folder: str | Path, num_objects: int) -> list[Path]:
    """folder/001 .. folder/<num_objects>, created; index k-1 holds object k."""
    if num_objects < 1:
        raise ValueError(f"num_objects must be >= 1, got {num_objects}")
    folders = [Path(folder) / f"{k:03d}" for k in range(1, num_objects + 1)]
    for sub in folders:
        sub.mkdir(parents=True, exist_ok=True)
    return folders


def _export_per_object(
    folder: str | Path,
    names: Sequence[str],
    num_objects: int,
    planes: Callable[[int], list[np.ndarray]],
    progress: Progress | None,
    cancel: threading.Event | None,
) -> int:
    """Write planes(t)[k-1] as folder/<kkk>/<name>.png for every frame and object."""
    folders = _object_folders(folder, num_objects)
    written = 0
    for t, name in enumerate(names):
        if _cancelled(cancel):
            break
        for sub, plane in zip(folders, planes(t), strict=True):
            _write_gray_png(sub / f"{name}.png", plane)
            written += 1
        if progress is not None:
            progress(t + 1, len(names))
    return written


def export_binary_masks(
    folder: str | Path,
    names: Sequence[str],
    num_objects: int,
    labels: Callable[[int], np.ndarray],
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """One 0/255 PNG per frame and object at folder/<kkk>/<name>.png; returns files written.

    labels(t) -> (H, W) uint8 index mask of frame t.
    """

    def planes(t: int) -> list[np.ndarray]:
        ids = np.asarray(labels(t))
        return [np.where(ids == k, 255, 0).astype(np.uint8) for k in range(1, num_objects + 1)]

    return _export_per_object(folder, names, num_objects, planes, progress, cancel)


def export_soft_masks(
    folder: str | Path,
    names: Sequence[str],
    num_objects: int,
    probs: Callable[[int], np.ndarray],
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """One alpha PNG round(p * 255) per frame and object at folder/<kkk>/<name>.png.

    probs(t) -> (K+1, H, W) float in [0, 1], background first. Returns files written.
    """

    def planes(t: int) -> list[np.ndarray]:
        prob = np.asarray(probs(t), dtype=np.float32)
        if prob.ndim != 3 or prob.shape[0] < num_objects + 1:
            raise ValueError(f"frame {t}: expected ({num_objects + 1}, H, W), got {prob.shape}")
        return [
            np.clip(np.rint(prob[k] * 255.0), 0, 255).astype(np.uint8)
            for k in range(1, num_objects + 1)
        ]

    return _export_per_object(folder, names, num_objects, planes, progress, cancel)


def _check_rgb(image: np.ndarray, t: int, size: tuple[int, int] | None) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"frame {t}: expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}"
        )
    if size is not None and image.shape[:2] != size:
        raise ValueError(f"frame {t}: size {image.shape[:2]} differs from the first frame's {size}")
    return image


def export_overlay_video(
    path: str | Path,
    frames: Callable[[int], np.ndarray],
    count: int,
    fps: float,
    overlay: Callable[[int], np.ndarray] | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Write `count` frames to an MP4 (fourcc mp4v); returns frames written.

    overlay(t) -> the composited (H, W, 3) uint8 RGB frame to write; without it frames(t) is
    written as is. An odd height or width is padded by one repeated edge row/column. The video
    goes to a temp name and replaces `path` only when complete: a cancelled or failed export
    leaves `path` untouched and no partial file behind.
    """
    if count < 1:
        raise ValueError(f"{path}: nothing to export (count={count})")
    if not fps > 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    path = Path(path)
    render = overlay if overlay is not None else frames
    first = _check_rgb(render(0), 0, None)
    height, width = first.shape[:2]
    # mp4v stores 4:2:0 chroma, so the encoder silently drops an odd last row/column; pad by
    # repeating the edge instead so every source pixel reaches the video.
    pad_rows, pad_cols = height % 2, width % 2
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
    writer = cv2.VideoWriter(str(tmp), fourcc, float(fps), (width + pad_cols, height + pad_rows))
    if not writer.isOpened():
        tmp.unlink(missing_ok=True)
        raise OSError(f"{path}: OpenCV cannot open an mp4v writer here (use a .mp4 name)")
    written = 0
    try:
        for t in range(count):
            if _cancelled(cancel):
                break
            rgb = first if t == 0 else _check_rgb(render(t), t, (height, width))
            if pad_rows or pad_cols:
                rgb = np.pad(rgb, ((0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            written += 1
            if progress is not None:
                progress(written, count)
    finally:
        writer.release()
        if written < count:
            tmp.unlink(missing_ok=True)
    if written < count:
        log.info("video export to %s cancelled after %d of %d frames", path, written, count)
        return written
    os.replace(tmp, path)
    return written


def counts_to_string(counts: Sequence[int]) -> str:
    """COCO's compressed form of uncompressed RLE counts (see the module docstring)."""
    chars: list[str] = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative deltas end in a run of 1 bits
            more = x != -1 if c & 0x10 else x != 0
            chars.append(chr(c + 48 + (0x20 if more else 0)))
    return "".join(chars)


def string_to_counts(text: str) -> list[int]:
    """Inverse of counts_to_string."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x = shift = 0
        more = True
        while more:
            if pos >= len(text):
                raise ValueError(f"truncated RLE string {text!r}")
            c = ord(text[pos]) - 48
            x |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                x -= 1 << shift  # sign-extend the last group
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _run_lengths(mask: np.ndarray) -> list[int]:
    """Column-major run lengths of mask != 0, starting with the (maybe empty) zero run."""
    flat = (np.asarray(mask).ravel(order="F") != 0).astype(np.int8)
    if flat.size == 0:
        return []
    edges = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    return [0, *counts] if flat[0] else counts


def rle_encode(mask: np.ndarray) -> dict:
    """(H, W) mask (nonzero = inside) -> {"size": [H, W], "counts": compressed string}."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    size = [int(mask.shape[0]), int(mask.shape[1])]
    return {"size": size, "counts": counts_to_string(_run_lengths(mask))}


def rle_decode(rle: dict) -> np.ndarray:
    """COCO RLE (counts as a compressed string or a list) -> (H, W) uint8 0/1 mask."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    counts = string_to_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]
    if sum(counts) != height * width:
        raise ValueError(f"RLE counts sum to {sum(counts)}, expected {height}x{width}")
    values = np.arange(len(counts), dtype=np.int64) % 2  # runs alternate 0, 1, 0, ...
    flat = np.repeat(values.astype(np.uint8), counts)
    return np.ascontiguousarray(flat.reshape((height, width), order="F"))


def _bbox(inside: np.ndarray) -> list[int]:
    """[x, y, width, height] of the nonzero pixels (the mask must hold some)."""
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def _coco_document(num_objects: int) -> dict:
    return {
        "info": {
            "description": "MiVOS Studio object masks",
            "version": "1.0",
            "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "images": [],
        "categories": [{"id": k, "name": f"object {k}"} for k in range(1, num_objects + 1)],
        "annotations": [],
    }


def export_coco_rle(
    path: str | Path,
    names: Sequence[str],
    num_objects: int,
    labels: Callable[[int], np.ndarray],
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Write a COCO-style JSON with one RLE annotation per (frame, object present in it).

    labels(t) -> (H, W) uint8 index mask. Returns frames encoded. The file is written
    atomically and only when every frame was encoded: a cancelled export writes nothing.
    """
    if num_objects < 1:
        raise ValueError(f"num_objects must be >= 1, got {num_objects}")
    doc = _coco_document(num_objects)
    done = 0
    for t, name in enumerate(names):
        if _cancelled(cancel):
            log.info("COCO export to %s cancelled after %d of %d frames", path, done, len(names))
            return done
        ids = np.asarray(labels(t))
        height, width = ids.shape
        doc["images"].append({"id": t, "file_name": name, "height": height, "width": width})
        for k in range(1, num_objects + 1):
            inside = ids == k
            area = int(inside.sum())
            if area == 0:
                continue
            annotation = {
                "id": len(doc["annotations"]) + 1,
                "image_id": t,
                "category_id": k,
                "segmentation": rle_encode(inside),
                "area": area,
                "bbox": _bbox(inside),
                "iscrowd": 0,
            }
            doc["annotations"].append(annotation)
        done += 1
        if progress is not None:
            progress(done, len(names))
    _write_json(Path(path), doc)
    return done


def _write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
