"""Three-frame training clips for the propagation network (spec §4.2 "Samples").

* StaticClips: one image + mask deformed into 3 frames (stage 0 pretraining).
* VideoClips: DAVIS/YouTube-VOS folders `JPEGImages/<seq>/*.jpg` + `Annotations/<seq>/*.png`
  (palette PNGs: pixel value = object id), frames picked with the max-skip curriculum.

Each sample: rgb (3,3,S,S) normalised, masks (3,2,S,S) in {0,1}, present (2,) bool.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from model.normalize import normalize_frames
from training import augment as aug

NUM_FRAMES = 3
# Max-skip curriculum: the skip switches to these values at these fractions of the run.
SKIP_VALUES = (10, 15, 20, 25, 5)
SKIP_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.9)
INITIAL_SKIP = 5


def max_skip_at(progress: float, scale: float = 1.0) -> int:
    """Max skip for a run `progress` in [0, 1] done; scale 0.2 for YouTube-VOS."""
    skip = INITIAL_SKIP
    for value, fraction in zip(SKIP_VALUES, SKIP_FRACTIONS, strict=True):
        if progress >= fraction:
            skip = value
    return max(1, round(skip * scale))


def sample_rng() -> np.random.Generator:
    """A generator drawn from numpy's per-worker seeded global state (see worker_init)."""
    return np.random.default_rng(np.random.randint(0, 2**31 - 1))


def read_rgb(path: Path) -> np.ndarray:
    """(H,W,3) uint8 RGB."""
    return np.asarray(Image.open(path).convert("RGB"))


def read_labels(path: Path) -> np.ndarray:
    """(H,W) uint8 object ids of a palette or grayscale PNG."""
    img = Image.open(path)
    return np.asarray(img if img.mode in ("P", "L") else img.convert("L"))


def to_sample(frames: list[np.ndarray], masks: list[np.ndarray], present: np.ndarray) -> dict:
    """Stack augmented frames (H,W,3) and masks (2,H,W) into the sample tensors."""
    return {
        "rgb": normalize_frames(np.stack(frames)),
        "masks": torch.from_numpy(np.stack(masks).astype(np.float32)),
        "present": torch.from_numpy(present.astype(bool)),
    }


def elastic(rng: np.random.Generator, image: np.ndarray, masks: np.ndarray, sigma: float):
    """Smooth random warp from a 4x4 grid of displacements (stands in for the original TPS)."""
    h, w = image.shape[:2]
    grid = rng.normal(0, sigma, (2, 4, 4)).astype(np.float32)
    dx = cv2.resize(grid[0], (w, h), interpolation=cv2.INTER_CUBIC) * w
    dy = cv2.resize(grid[1], (w, h), interpolation=cv2.INTER_CUBIC) * h
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = xs + dx, ys + dy
    image = cv2.remap(image, mx, my, cv2.INTER_CUBIC, borderValue=aug.FILL_RGB)
    masks = np.stack([cv2.remap(m, mx, my, cv2.INTER_NEAREST) for m in masks])
    return image, masks


def find_static_pairs(roots: tuple[str, ...]) -> list[tuple[Path, Path]]:
    """(image, mask) pairs: every <stem>.jpg with a <stem>.png next to it, under each root."""
    pairs = []
    for root in roots:
        for jpg in sorted(Path(root).rglob("*.jpg")):
            png = jpg.with_suffix(".png")
            if png.exists():
                pairs.append((jpg, png))
    if not pairs:
        raise FileNotFoundError(f"no <name>.jpg + <name>.png pairs under {', '.join(roots)}")
    return pairs


class StaticPairs(Dataset):
    """Base of the datasets built from <name>.jpg + <name>.png pairs (one object)."""

    def __init__(self, roots: tuple[str, ...], crop: int) -> None:
        self.pairs = find_static_pairs(roots)
        self.crop = crop

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB image and its binary mask (1, H, W) uint8 (mask pixels > 127 are the object)."""
        image = read_rgb(self.pairs[index][0])
        return image, (read_labels(self.pairs[index][1]) > 127).astype(np.uint8)[None]


_CROP_TRIES = 10


class StaticClips(StaticPairs):
    """Synthetic 3-frame clips from single images (single object: present = [1, 0])."""

    def __getitem__(self, index: int) -> dict:
        rng = sample_rng()
        image, mask = self.load(index)
        # Whole-sample: scale + flip + colour, shared by the three frames.
        image, mask = aug.warp(
            image, mask, aug.random_affine(rng, image.shape[:2], 0, (0.8, 1.5), 0)
        )
        if rng.random() < 0.5:
            image, mask = aug.hflip(image, mask)
        image = aug.color_jitter(rng, image, 0.1, 0.05, 0.05, grayscale_p=0.05)
        # A clip whose first frame shows none of the object teaches nothing: try other crops.
        for _ in range(_CROP_TRIES):
            frames, masks = self._clip(rng, image, mask)
            if masks[0][0].any():
                break
        return to_sample(frames, masks, np.array([True, False]))

    def _clip(self, rng, image: np.ndarray, mask: np.ndarray):
        frames, masks = [], []
        for _ in range(NUM_FRAMES):
            m = aug.random_affine(rng, image.shape[:2], 20, (0.9, 1.1), 10)
            im_t, mk_t = aug.warp(image, mask, m)
            im_t, mk_t = aug.resize_short(im_t, mk_t, self.crop)
            y, x = aug.crop_box(rng, im_t.shape[:2], self.crop)
            im_t = aug.apply_crop(im_t, y, x, self.crop)
            mk_t = aug.apply_crop(mk_t, y, x, self.crop)
            im_t = aug.color_jitter(rng, im_t, 0.1, 0.05, 0.05)
            if rng.random() < 0.33:
                im_t, mk_t = elastic(rng, im_t, mk_t, 0.02)
            frames.append(im_t)
            masks.append(np.concatenate([mk_t, np.zeros_like(mk_t)]))
        return frames, masks


def sample_triplet(rng: np.random.Generator, n: int, max_skip: int) -> list[int]:
    """Three frame indices of an n-frame video with gaps bounded by the current max skip."""
    j = min(n, max_skip)
    start = int(rng.integers(0, n - j + 1))
    f1 = min(start + int(rng.integers(0, j + 1)) + 1, n - j, n - 1)
    f2 = min(f1 + int(rng.integers(0, j + 1)) + 1, n - j // 2, n - 1)
    triplet = [start, max(f1, 0), max(f2, 0)]
    return triplet[::-1] if rng.random() < 0.5 else triplet


class VideoClips(Dataset):
    """DAVIS/YouTube-VOS-format clips; set `max_skip` before each epoch (curriculum)."""

    def __init__(self, roots: tuple[str, ...], crop: int, scale=(0.36, 1.0)) -> None:
        self.videos: list[tuple[list[Path], list[Path]]] = []
        for root in roots:
            for seq in sorted((Path(root) / "JPEGImages").iterdir()):
                frames = sorted(seq.glob("*.jpg"))
                annos = [Path(root) / "Annotations" / seq.name / f"{f.stem}.png" for f in frames]
                if len(frames) >= 1 and all(a.exists() for a in annos):
                    self.videos.append((frames, annos))
        if not self.videos:
            raise FileNotFoundError(f"no annotated videos under {', '.join(roots)}/JPEGImages")
        self.crop = crop
        self.scale = scale
        self.max_skip = INITIAL_SKIP

    def __len__(self) -> int:
        return len(self.videos)

    def _resized_crop(self, rng: np.random.Generator, size: tuple[int, int]):
        """RandomResizedCrop box (y, x, h, w) with the area fraction in `scale`, ratio 3/4-4/3."""
        h, w = size
        for _ in range(10):
            area = rng.uniform(*self.scale) * h * w
            ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            cw, ch = round(np.sqrt(area * ratio)), round(np.sqrt(area / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        return 0, 0, h, w

    def _frame(self, rng, image, labels, box, flip, colour_seed):
        y, x, ch, cw = box
        image = cv2.resize(
            image[y : y + ch, x : x + cw], (self.crop,) * 2, interpolation=cv2.INTER_CUBIC
        )
        labels = cv2.resize(
            labels[y : y + ch, x : x + cw], (self.crop,) * 2, interpolation=cv2.INTER_NEAREST
        )
        if flip:
            image, labels = aug.hflip(image, labels[None])
            labels = labels[0]
        # Same colour change for the whole sample, then a small per-frame one.
        image = aug.color_jitter(np.random.default_rng(colour_seed), image, 0.1, 0.03, 0.03, 0.05)
        image = aug.color_jitter(rng, image, 0.01, 0.01, 0.01)
        m = aug.random_affine(rng, (self.crop, self.crop), 15, (1.0, 1.0), 10)
        image, labels = aug.warp(image, labels[None], m)
        return image, labels[0]

    def __getitem__(self, index: int) -> dict:
        rng = sample_rng()
        frames, annos = self.videos[index]
        for _ in range(5):  # retry until the triplet shows an object in its first frame
            idx = sample_triplet(rng, len(frames), self.max_skip)
            first = read_rgb(frames[idx[0]])
            box = self._resized_crop(rng, first.shape[:2])
            flip, colour_seed = bool(rng.random() < 0.5), int(rng.integers(2**31))
            out = [
                self._frame(rng, read_rgb(frames[t]), read_labels(annos[t]), box, flip, colour_seed)
                for t in idx
            ]
            labels = [int(v) for v in np.unique(out[0][1]) if v not in (0, 255)]
            if labels:
                break
        present = np.array([bool(labels), len(labels) > 1])
        chosen = list(rng.permutation(labels)[:2]) if labels else []
        chosen += [-1] * (2 - len(chosen))  # -1 never matches: an all-zero mask
        masks = [np.stack([(lab == c).astype(np.uint8) for c in chosen]) for _, lab in out]
        return to_sample([im for im, _ in out], masks, present)
