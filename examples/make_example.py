"""Render a short synthetic clip for trying the app: moving textured objects on a panning scene.

Run from the repository root:

    python examples/make_example.py [--out examples/example.mp4] [--masks DIR] [--frames N]

Three objects (an ellipse, a rotating polygon, a wobbling blob) follow smooth paths, change
scale a little and overlap each other in a fixed depth order (id 1 furthest, id 3 nearest).
With --masks, the ground-truth index masks are written as DAVIS palette PNGs, one per frame.
Everything is drawn from a seeded generator, so the same seed gives the same clip.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # Run as a plain script, the repo root is not on sys.path and `util` would not import.
    sys.path.insert(0, str(REPO_ROOT))

from util.mask_io import write_index_mask  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "examples" / "example.mp4"
NUM_OBJECTS = 3
NOISE_SIGMA = 2.0  # sensor-like grain; more would bloat the mp4 for no benefit


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell_px: float) -> np.ndarray:
    """(h, w) float32 in [0, 1]: random values on a coarse grid, upsampled and blurred."""
    gh, gw = max(int(h / cell_px), 2) + 1, max(int(w / cell_px), 2) + 1
    coarse = rng.random((gh, gw), dtype=np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    sigma = max(cell_px / 4.0, 0.5)
    field = cv2.GaussianBlur(field, (0, 0), sigma)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def colour_texture(
    rng: np.random.Generator, h: int, w: int, base: tuple[float, float, float], cell_px: float
) -> np.ndarray:
    """(h, w, 3) float32 RGB in [0, 255]: `base` colour modulated by two scales of noise."""
    coarse = smooth_noise(rng, h, w, cell_px)
    fine = smooth_noise(rng, h, w, cell_px / 4.0)
    shade = 0.55 + 0.35 * coarse + 0.15 * fine
    tint = smooth_noise(rng, h, w, cell_px * 2.0)[..., None] * 40.0 - 20.0
    rgb = np.asarray(base, np.float32)[None, None, :] * shade[..., None] + tint
    return np.clip(rgb, 0, 255)


def background_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32 scene: a sky-to-ground gradient, soft blotches and blurred stripes."""
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    sky = np.array([150, 180, 210], np.float32)
    ground = np.array([110, 120, 80], np.float32)
    scene = sky * (1 - y) + ground * y + np.zeros((1, w, 1), np.float32)
    blotches = smooth_noise(rng, h, w, h / 6.0)[..., None]
    scene = scene * (0.75 + 0.45 * blotches)
    # Diagonal stripes give the panning background visible structure for the tracker to ignore.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(h / 9.0, 4.0)
    stripes = (np.sin((xx + 0.6 * yy) * (2 * math.pi / period)) > 0.3).astype(np.float32)
    stripes = cv2.GaussianBlur(stripes, (0, 0), max(period / 10.0, 0.5))
    scene = scene - 25.0 * stripes[..., None] * (1.0 - y)
    return np.clip(scene, 0, 255)


@dataclass(frozen=True)
class Actor:
    """One moving object: its look in local coordinates and its path (fractions of the frame)."""

    texture: np.ndarray  # (S, S, 3) float32 RGB in local (object) coordinates
    centre: tuple[float, float]  # path centre, fraction of (width, height)
    amplitude: tuple[float, float]  # path half-extent, fraction of (width, height)
    speed: tuple[float, float]  # path angular speed (rad per frame) in x and y
    phase: tuple[float, float]
    spin: float  # rotation, degrees per frame
    shape: str  # "ellipse", "polygon" or "blob"


def _shape_alpha(shape: str, side: int, t: int) -> np.ndarray:
    """(side, side) float32 coverage of the object's shape in local coordinates at frame t."""
    alpha = np.zeros((side, side), np.float32)
    c = side / 2.0
    r = side * 0.42
    if shape == "ellipse":
        cv2.ellipse(
            alpha, (int(c), int(c)), (int(r), int(r * 0.6)), 0, 0, 360, 1.0, -1, cv2.LINE_AA
        )
        return alpha
    if shape == "polygon":
        angles = np.linspace(0, 2 * math.pi, 6, endpoint=False)
        radii = r * np.array([1.0, 0.7, 1.0, 0.85, 0.95, 0.6])
    else:  # blob: a radius that wobbles with angle and time, so the outline deforms
        angles = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        radii = r * (
            0.8 + 0.12 * np.sin(3 * angles + 0.15 * t) + 0.08 * np.sin(5 * angles - 0.1 * t)
        )
    # Fixed-point vertices (shift=4) keep the outline sub-pixel smooth as it moves.
    pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], axis=1)
    cv2.fillPoly(alpha, [np.round(pts * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    return alpha


def _placement(actor: Actor, t: int, h: int, w: int, side: int) -> np.ndarray:
    """2x3 affine from local coordinates to the frame at time t (rotate, scale, move)."""
    cx = (actor.centre[0] + actor.amplitude[0] * math.sin(actor.speed[0] * t + actor.phase[0])) * w
    cy = (actor.centre[1] + actor.amplitude[1] * math.sin(actor.speed[1] * t + actor.phase[1])) * h
    scale = 1.0 + 0.12 * math.sin(0.09 * t + actor.phase[0])
    matrix = cv2.getRotationMatrix2D((side / 2.0, side / 2.0), actor.spin * t, scale)
    matrix[:, 2] += (cx - side / 2.0, cy - side / 2.0)
    return matrix


def _make_actors(rng: np.random.Generator, side: int) -> list[Actor]:
    def tex(base: tuple[float, float, float]) -> np.ndarray:
        return colour_texture(rng, side, side, base, side / 5.0)

    # Paths cross near the middle of the frame so the objects take turns occluding each other.
    red = Actor(
        tex((220, 80, 60)), (0.35, 0.5), (0.2, 0.15), (0.07, 0.11), (0.0, 1.0), 0.5, "ellipse"
    )
    blue = Actor(
        tex((60, 110, 220)), (0.6, 0.45), (0.22, 0.2), (0.09, 0.06), (2.0, 0.3), 3, "polygon"
    )
    gold = Actor(tex((240, 200, 70)), (0.5, 0.6), (0.3, 0.12), (0.05, 0.13), (4.0, 2.5), -1, "blob")
    return [red, blue, gold]


def render_frames(
    num_frames: int, size: tuple[int, int], seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames (H, W, 3) uint8 RGB and index masks (H, W) uint8 with ids 1..3 (3 nearest)."""
    h, w = size
    rng = np.random.default_rng(seed)
    pan_px = max(w // 4, 4)
    scene = background_texture(rng, h, w + pan_px)
    side = max(int(min(h, w) * 0.45), 8)
    actors = _make_actors(rng, side)
    frames: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for t in range(num_frames):
        # Sub-pixel pan via an affine shift so the slow camera motion does not judder.
        shift = pan_px * 0.5 * (1 - math.cos(math.pi * t / max(num_frames - 1, 1)))
        pan = np.float32([[1, 0, shift], [0, 1, 0]])
        frame = cv2.warpAffine(scene, pan, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        mask = np.zeros((h, w), np.uint8)
        for obj_id, actor in enumerate(actors, start=1):
            matrix = _placement(actor, t, h, w, side)
            alpha = cv2.warpAffine(_shape_alpha(actor.shape, side, t), matrix, (w, h))
            texture = cv2.warpAffine(actor.texture, matrix, (w, h))
            a = alpha[..., None]
            frame = frame * (1 - a) + texture * a
            mask[alpha > 0.5] = obj_id  # later (nearer) objects occlude earlier ones
        frame = frame + rng.normal(0.0, NOISE_SIGMA, frame.shape).astype(np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        masks.append(mask)
    return frames, masks


def render_example(
    path: str | Path = DEFAULT_OUT,
    num_frames: int = 60,
    size: tuple[int, int] = (270, 480),
    fps: int = 12,
    seed: int = 0,
    masks_dir: str | Path | None = None,
) -> Path:
    """Write the clip (mp4v) to `path`, and masks to `masks_dir` if given; returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    frames, masks = render_frames(num_frames, size, seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot open an mp4v writer")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    if masks_dir is not None:
        for t, mask in enumerate(masks):
            write_index_mask(Path(masks_dir) / f"{t:05d}.png", mask)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .mp4 path")
    parser.add_argument("--masks", type=Path, default=None, help="folder for ground-truth masks")
    parser.add_argument("--frames", type=int, default=60, help="number of frames")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    out = render_example(args.out, num_frames=args.frames, seed=args.seed, masks_dir=args.masks)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB, {args.frames} frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
