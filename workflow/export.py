"""Exports a user asks for: per-object binary or alpha PNGs, an overlay video, COCO RLE JSON.

Every export takes frame names/counts and callables (frame index -> array), never GUI objects,
so the GUI and the headless command pass lambdas over the project (through Project.export) and
the tests pass lambdas over arrays. Each export reports progress(done, total) after every frame
and checks `cancel` between frames.

Objects are given in channel order: value k of a label mask (channel k of a probability map)
is objects[k-1], and files and annotations carry that object's own id (e.g. 1, 3, 7).

Libraries do the format work: PyAV (FFmpeg) encodes the video, pycocotools encodes the COCO
run-length masks, so what we write is what the reference decoders read.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace
from PIL import Image
from pycocotools import mask as mask_utils

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

DEFAULT_FPS = 25.0  # image folders have no frame rate of their own (--fps overrides)

# Canonical export kinds, and the names also accepted ("soft" and "video" are the first
# release's names of "alpha" and "overlay").
EXPORT_KINDS = ("binary", "alpha", "overlay", "coco")
_ALIASES = {"soft": "alpha", "video": "overlay"}

# File exports and the suffixes they keep; any other name gets the first one appended.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
JSON_SUFFIXES = (".json",)

# Encoders tried in order. H.264 in yuv420p is what video editors import everywhere; MPEG-4
# Part 2 is the fallback for a PyAV build without an H.264 encoder (mp4 still plays).
H264_ENCODERS = ("libx264", "libopenh264")
FALLBACK_ENCODERS = ("mpeg4",)


class NamedObject(Protocol):
    """What the exports need of an object (workflow.state.ObjectInfo is one)."""

    id: int
    name: str


def canonical_kind(kind: str) -> str:
    """'binary' | 'alpha' | 'overlay' | 'coco' for a kind or its alias ('soft', 'video').

    Raises ValueError naming the accepted kinds for anything else.
    """
    name = _ALIASES.get(kind, kind)
    if name not in EXPORT_KINDS:
        accepted = ", ".join([*EXPORT_KINDS, *_ALIASES])
        raise ValueError(f"unknown export {kind!r} (one of: {accepted})")
    return name


def export_path(kind: str, path: str | Path) -> Path:
    """The file an export of `kind` writes when the person typed `path`.

    A video keeps a .mp4/.m4v/.mov/.mkv suffix (any case) and otherwise gets ".mp4" appended,
    a COCO file keeps ".json" or gets it appended (so "clip" -> "clip.mp4", "a.v2" ->
    "a.v2.json"); folder exports (binary, alpha) are returned unchanged. Raises ValueError
    for an unknown kind.
    """
    path = Path(path)
    kind = canonical_kind(kind)
    suffixes = {"overlay": VIDEO_SUFFIXES, "coco": JSON_SUFFIXES}.get(kind)
    if suffixes is None or path.suffix.lower() in suffixes:
        return path
    return path.with_name(path.name + suffixes[0])


def source_fps(frames) -> float | None:
    """The frame rate (frames per second) of a frame source, or None when it has none.

    Reads `frames.fps`, following `.source` through wrappers such as FrameRange; a missing,
    non-finite or non-positive rate (image folders, broken containers) is None.
    """
    while frames is not None:
        fps = getattr(frames, "fps", None)
        if fps is not None:
            try:
                fps = float(fps)
            except (TypeError, ValueError):
                return None
            return fps if math.isfinite(fps) and fps > 0 else None
        frames = getattr(frames, "source", None)
    return None


def parse_fps(text: str) -> float:
    """A command line's --fps value: frames per second, a finite number > 0 (e.g. "29.97").

    Raises argparse.ArgumentTypeError (argparse prints its message) for anything else.
    """
    try:
        fps = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(fps) and fps > 0):
        raise argparse.ArgumentTypeError(f"the frame rate must be a number > 0, got {text}")
    return fps


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


def _check_objects(objects: Sequence[NamedObject]) -> None:
    if len(objects) < 1:
        raise ValueError("nothing to export: the project has no object")
    ids = [int(o.id) for o in objects]
    if len(set(ids)) != len(ids) or not all(1 <= i <= 255 for i in ids):
        raise ValueError(f"object ids must be distinct and in 1..255, got {ids}")


def _object_folders(folder: str | Path, objects: Sequence[NamedObject]) -> list[Path]:
    """folder/<id:03d> for every object, created; index k-1 holds objects[k-1]."""
    _check_objects(objects)
    folders = [Path(folder) / f"{int(o.id):03d}" for o in objects]
    for sub in folders:
        sub.mkdir(parents=True, exist_ok=True)
    return folders


def _export_per_object(
    folder: str | Path,
    names: Sequence[str],
    objects: Sequence[NamedObject],
    planes: Callable[[int], list[np.ndarray]],
    progress: Progress | None,
    cancel: threading.Event | None,
) -> int:
    """Write planes(t)[k-1] as folder/<id of object k>/<name>.png for every frame and object."""
    folders = _object_folders(folder, objects)
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
    objects: Sequence[NamedObject],
    labels: Callable[[int], np.ndarray],
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """One 0/255 8-bit PNG per frame and object at folder/<id:03d>/<name>.png.

    labels(t) -> (H, W) uint8 index mask of frame t, value k = objects[k-1], 0 = background.
    Returns the number of files written (fewer than len(names) * len(objects) when
    cancelled; files already written stay). Raises ValueError for no or bad object ids,
    OSError when a file cannot be written.
    """

    def planes(t: int) -> list[np.ndarray]:
        ids = np.asarray(labels(t))
        return [np.where(ids == k, 255, 0).astype(np.uint8) for k in range(1, len(objects) + 1)]

    return _export_per_object(folder, names, objects, planes, progress, cancel)


def export_alpha_masks(
    folder: str | Path,
    names: Sequence[str],
    objects: Sequence[NamedObject],
    probs: Callable[[int], np.ndarray],
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """One 8-bit alpha PNG, round(p * 255), per frame and object at folder/<id:03d>/<name>.png.

    probs(t) -> (K+1, H, W) float probabilities in [0, 1], background first, channel k =
    objects[k-1]. Returns the number of files written. Raises ValueError when probs(t) has
    fewer than K+1 channels, OSError when a file cannot be written.
    """
    count = len(objects)

    def planes(t: int) -> list[np.ndarray]:
        prob = np.asarray(probs(t), dtype=np.float32)
        if prob.ndim != 3 or prob.shape[0] < count + 1:
            raise ValueError(f"frame {t}: expected ({count + 1}, H, W), got {prob.shape}")
        return [
            np.clip(np.rint(prob[k] * 255.0), 0, 255).astype(np.uint8) for k in range(1, count + 1)
        ]

    return _export_per_object(folder, names, objects, planes, progress, cancel)


# ---------------------------------------------------------------------------------- video


@dataclass(frozen=True)
class VideoExport:
    """What export_overlay_video wrote.

    frames: frames encoded (< count when cancelled: then no file was written); encoder: the
    FFmpeg encoder used ("libx264", ... or the fallback "mpeg4"); codec: "h264" or "mpeg4";
    fps: frames per second as stored (a rational close to the requested rate); size:
    (width, height) in pixels of the video (the frames' size, padded to even);
    skipped: why better encoders were not used (empty when the first one worked).
    """

    frames: int
    encoder: str
    codec: str
    fps: float
    size: tuple[int, int]
    skipped: tuple[str, ...] = ()

    @property
    def is_h264(self) -> bool:
        return self.codec == "h264"

    def describe(self) -> str:
        """'H.264 (libx264)' or 'MPEG-4 Part 2 (mpeg4), no H.264 encoder: ...' for messages."""
        if self.is_h264:
            return f"H.264 ({self.encoder})"
        why = "; ".join(self.skipped) or "none usable"
        return f"{self.codec} ({self.encoder}) as no H.264 encoder could be used ({why})"


def _check_rgb(image: np.ndarray, t: int, size: tuple[int, int] | None) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"frame {t}: expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}"
        )
    if size is not None and image.shape[:2] != size:
        raise ValueError(f"frame {t}: size {image.shape[:2]} differs from the first frame's {size}")
    return image


def _stream_rate(fps: float) -> Fraction:
    # Containers store rates as rationals; 29.97... becomes 30000/1001, as cameras record it.
    return Fraction(fps).limit_denominator(1001)


def _encoder_in_build(name: str) -> bool:
    try:
        return av.codec.Codec(name, "w").is_encoder
    except av.codec.codec.UnknownCodecError:
        return False


def _configure(stream, name: str, width: int, height: int) -> None:
    cc = stream.codec_context
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    # Frames are converted with BT.709 limited range (see _yuv_frame); tagging the stream so
    # decoders convert back with the same matrix keeps colours (an untagged stream is
    # guessed BT.601 or BT.709 depending on the player).
    # FFmpeg's enum values (stable across versions): AVCOL_SPC/PRI/TRC_BT709 = 1,
    # AVCOL_RANGE_MPEG (limited) = 1.
    cc.colorspace = cc.color_primaries = cc.color_trc = 1
    cc.color_range = 1
    if name == "libx264":
        stream.options = {"crf": "18", "preset": "medium"}  # visually lossless overlays
    elif name == "mpeg4":
        cc.qscale = 3  # a fixed quality; the default 200 kbit/s would smear the mask contours
    else:
        cc.bit_rate = max(2_000_000, width * height * 8)  # ~8 bits/pixel/s, as for 1080p30


def _open_video(
    tmp: Path, shown: Path, rate: Fraction, width: int, height: int
) -> tuple[av.container.OutputContainer, object, str, list[str]]:
    """Open tmp for writing with the first encoder of H264_ENCODERS + FALLBACK_ENCODERS that
    this PyAV build has and that opens; (container, stream, encoder name, why others were
    skipped). Raises OSError naming `shown` when none opens."""
    skipped: list[str] = []
    container_options = {"movflags": "+faststart"} if shown.suffix.lower() != ".mkv" else {}
    for name in (*H264_ENCODERS, *FALLBACK_ENCODERS):
        if not _encoder_in_build(name):
            skipped.append(f"{name}: not in this PyAV build")
            continue
        try:
            container = av.open(str(tmp), mode="w", options=container_options)
        except (av.FFmpegError, ValueError) as exc:
            tmp.unlink(missing_ok=True)
            raise OSError(f"{shown}: cannot write a video with this name ({exc})") from exc
        try:
            stream = container.add_stream(name, rate=rate)
            _configure(stream, name, width, height)
            stream.codec_context.open()  # fails here, not mid-export, if the encoder cannot run
        except (av.FFmpegError, ValueError) as exc:
            container.close()
            tmp.unlink(missing_ok=True)
            skipped.append(f"{name}: {exc}")
            log.info("video encoder %s unusable: %s", name, exc)
            continue
        return container, stream, name, skipped
    raise OSError(f"{shown}: no usable video encoder ({'; '.join(skipped)})")


def _yuv_frame(rgb: np.ndarray, pts: int, time_base: Fraction) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    frame = frame.reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
    frame.pts, frame.time_base = pts, time_base
    return frame


def export_overlay_video(
    path: str | Path,
    frames: Callable[[int], np.ndarray],
    count: int,
    fps: float,
    overlay: Callable[[int], np.ndarray] | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> VideoExport:
    """Encode `count` frames into a video at `fps` frames per second (PyAV/FFmpeg).

    overlay(t) -> the composited (H, W, 3) uint8 RGB frame to write; without it frames(t) is
    written as is. Every frame must have the first frame's size. The stream is H.264
    (libx264, CRF 18) in yuv420p, BT.709 limited range and tagged as such, in the container
    the suffix names (.mp4 by export_path); when this PyAV build has no usable H.264
    encoder, MPEG-4 Part 2 (mpeg4) is used and the result says so (VideoExport.skipped).

    yuv420p stores chroma per 2x2 block, so H.264 needs an even width and height: an odd
    height or width is padded by repeating the last row/column (never cropped, so every
    source pixel is in the video, which is then one pixel taller/wider).

    The video goes to a temp name and replaces `path` only when complete: a cancelled or
    failed export leaves `path` untouched and no partial file behind. Raises ValueError for
    count < 1, fps <= 0 or a bad frame, OSError when the file cannot be written or no
    encoder opens.
    """
    if count < 1:
        raise ValueError(f"{path}: nothing to export (count={count})")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"{path}: fps must be a positive number, got {fps}")
    path = Path(path)
    render = overlay if overlay is not None else frames
    first = _check_rgb(render(0), 0, None)
    height, width = first.shape[:2]
    pad_rows, pad_cols = height % 2, width % 2
    rate = _stream_rate(fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    container, stream, encoder, skipped = _open_video(
        tmp, path, rate, width + pad_cols, height + pad_rows
    )
    time_base = Fraction(1) / rate  # one tick per frame: pts is the frame index
    written = 0
    try:
        for t in range(count):
            if _cancelled(cancel):
                break
            rgb = first if t == 0 else _check_rgb(render(t), t, (height, width))
            if pad_rows or pad_cols:
                rgb = np.pad(rgb, ((0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")
            for packet in stream.encode(_yuv_frame(np.ascontiguousarray(rgb), t, time_base)):
                container.mux(packet)
            written += 1
            if progress is not None:
                progress(written, count)
        if written == count:
            for packet in stream.encode():  # flush the encoder's delayed frames
                container.mux(packet)
    except av.FFmpegError as exc:
        raise OSError(f"{path}: the video could not be written ({exc})") from exc
    finally:
        try:
            container.close()
        finally:
            if written < count:
                tmp.unlink(missing_ok=True)
    codec = stream.codec_context.codec.canonical_name  # "h264" whichever encoder made it
    size = (width + pad_cols, height + pad_rows)
    result = VideoExport(written, encoder, codec, float(rate), size, tuple(skipped))
    if written < count:
        log.info("video export to %s cancelled after %d of %d frames", path, written, count)
        return result
    os.replace(tmp, path)
    if not result.is_h264:
        log.warning("%s: written as %s", path, result.describe())
    return result


# ---------------------------------------------------------------------------------- COCO


def rle_encode(mask: np.ndarray) -> dict:
    """(H, W) mask (nonzero = inside) -> COCO compressed RLE {"size": [H, W], "counts": str}.

    pycocotools' encoder (column-major runs, COCO's compressed string), with counts decoded
    to str so the dict is JSON-ready. Raises ValueError for a mask that is not 2-D.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _coco_document(objects: Sequence[NamedObject]) -> dict:
    return {
        "info": {
            "description": "MiVOS Studio object masks",
            "version": "1.0",
            "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "licenses": [],  # present (empty) because some importers index it unconditionally
        "images": [],
        "categories": [{"id": int(o.id), "name": str(o.name)} for o in objects],
        "annotations": [],
    }


def export_coco_rle(
    path: str | Path,
    names: Sequence[str],
    objects: Sequence[NamedObject],
    labels: Callable[[int], np.ndarray],
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Write a COCO JSON with one RLE annotation per (frame, object present in it).

    labels(t) -> (H, W) uint8 index mask, value k = objects[k-1]. Frame t is image id t
    (file_name: its name); object k is category objects[k-1].id named objects[k-1].name.
    Each annotation holds the compressed RLE (pycocotools), its area in pixels and bbox
    [x, y, width, height] in pixels, iscrowd 0. Returns frames encoded. The file is written
    atomically and only when every frame was encoded: a cancelled export writes nothing.
    Raises ValueError for no or bad object ids, OSError when the file cannot be written.
    """
    _check_objects(objects)
    doc = _coco_document(objects)
    done = 0
    for t, name in enumerate(names):
        if _cancelled(cancel):
            log.info("COCO export to %s cancelled after %d of %d frames", path, done, len(names))
            return done
        ids = np.asarray(labels(t))
        height, width = ids.shape
        doc["images"].append({"id": t, "file_name": name, "height": height, "width": width})
        values = np.arange(1, len(objects) + 1, dtype=ids.dtype)
        # All objects of the frame in one call: an (H, W, K) Fortran-order stack.
        stack = np.asfortranarray(ids[:, :, None] == values[None, None, :], dtype=np.uint8)
        rles = mask_utils.encode(stack)
        areas = mask_utils.area(rles)
        boxes = mask_utils.toBbox(rles)
        for obj, rle, area, box in zip(objects, rles, areas, boxes, strict=True):
            if area == 0:
                continue
            doc["annotations"].append(
                {
                    "id": len(doc["annotations"]) + 1,
                    "image_id": t,
                    "category_id": int(obj.id),
                    "segmentation": {
                        "size": [int(v) for v in rle["size"]],
                        "counts": rle["counts"].decode("ascii"),
                    },
                    "area": int(area),
                    "bbox": [float(v) for v in box],
                    "iscrowd": 0,
                }
            )
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
