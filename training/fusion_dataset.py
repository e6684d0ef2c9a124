"""Fusion training samples (spec §4.5) from generated propagation results + the video folder.

fusion_root/<run>/<video>/<ref>/<label>/<t>.png; each <run> is one generation run.
Sample: rgb, ref_rgb (3,S,S); seg1, seg2, ref_prev, ref_gt, masks (K,S,S); dist (2,);
present (K,) with K = 2 (the second object may be absent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from model.normalize import normalize_frames
from training import augment as aug
from training.datasets import read_labels, read_rgb, sample_rng

SAMPLES_PER_VIDEO = 100
MAX_TRIES = 20
# Frames indexed by reference, then object label, then the frames that reference covered.
Coverage = dict[int, dict[int, set[int]]]


def index_fusion_root(root: str | Path) -> dict[str, list[tuple[Path, Coverage]]]:
    """video name -> [(run folder of that video, its coverage)] over all runs."""
    out: dict[str, list[tuple[Path, Coverage]]] = {}
    for run in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for video in sorted(p for p in run.iterdir() if p.is_dir()):
            cover: Coverage = {}
            for ref in video.iterdir():
                for obj in ref.iterdir():
                    frames = {int(p.stem) for p in obj.glob("*.png")}
                    cover.setdefault(int(ref.name), {})[int(obj.name)] = frames
            if cover:
                out.setdefault(video.name, []).append((video, cover))
    return out


class FusionSamples(Dataset):
    """Pairs of propagations of one object from two reference frames, with the GT to fuse to."""

    def __init__(self, fusion_root: str | Path, video_root: str | Path, crop: int) -> None:
        self.index = index_fusion_root(fusion_root)
        self.videos = sorted(self.index)
        if not self.videos:
            raise FileNotFoundError(f"no fusion data under {fusion_root}")
        self.video_root = Path(video_root)
        self.crop = crop

    def __len__(self) -> int:
        return SAMPLES_PER_VIDEO * len(self.videos)

    def _frame_names(self, video: str) -> list[Path]:
        return sorted((self.video_root / "JPEGImages" / video).glob("*.jpg"))

    def _pick(self, rng: np.random.Generator, index: int, attempt: int):
        """(video, run folder, r1, r2, o, o2 or None, t) or None when this draw fails."""
        video = self.videos[index % len(self.videos)] if attempt < 5 else rng.choice(self.videos)
        folder, cover = self.index[video][int(rng.integers(len(self.index[video])))]
        r1 = int(rng.choice(sorted(cover)))
        o = int(rng.choice(sorted(cover[r1])))
        t = int(rng.choice(sorted(cover[r1][o])))
        r2s = [r for r in cover if r != r1 and r in cover[r1][o] and t in cover[r].get(o, ())]
        if not r2s:
            return None
        r2 = int(rng.choice(sorted(r2s)))
        o2s = [
            q for q in cover[r1] if q != o and {t, r2} <= cover[r1][q] and t in cover[r2].get(q, ())
        ]
        o2 = int(rng.choice(o2s)) if o2s else None
        return video, folder, r1, r2, o, o2, t

    def __getitem__(self, index: int) -> dict:
        rng = sample_rng()
        for attempt in range(MAX_TRIES):
            pick = self._pick(rng, index, attempt)
            if pick is None:
                continue
            sample = self._load(rng, *pick)
            differs = int(((sample["seg1"][0] - sample["seg2"][0]).abs() > 0.1).sum())
            # Prefer samples where the two propagations disagree: that is what fusion learns.
            if attempt >= 15 or differs >= 100:
                return sample
        raise RuntimeError(f"no fusion sample found for index {index} in {MAX_TRIES} tries")

    def _load(self, rng, video, folder, r1, r2, o, o2, t) -> dict:
        names = self._frame_names(video)
        anno = self.video_root / "Annotations" / video
        objs = [o, o2 if o2 is not None else o]

        def soft(ref: int, frame: int) -> np.ndarray:
            return np.stack(
                [
                    np.asarray(Image.open(folder / f"{ref:05d}" / f"{q:05d}" / f"{frame:05d}.png"))
                    for q in objs
                ]
            )

        gt_t, gt_r2 = (read_labels(anno / f"{names[f].stem}.png") for f in (t, r2))
        planes = np.concatenate(
            [
                soft(r1, t),
                soft(r2, t),
                soft(r1, r2),
                np.stack([(gt_r2 == q) * 255 for q in objs]).astype(np.uint8),
                np.stack([(gt_t == q) * 255 for q in objs]).astype(np.uint8),
            ]
        )
        images = [read_rgb(names[t]), read_rgb(names[r2])]
        if rng.random() < 0.5:
            images = [aug.hflip(im, planes[:1])[0] for im in images]
            planes = np.ascontiguousarray(planes[..., ::-1])
        y, x = aug.crop_box(rng, images[0].shape[:2], self.crop)
        images = [
            aug.color_jitter(rng, aug.apply_crop(im, y, x, self.crop), 0.1, 0.03, 0.03)
            for im in images
        ]
        planes = torch.from_numpy(aug.apply_crop(planes, y, x, self.crop).astype(np.float32) / 255)
        seg1, seg2, ref_prev, ref_gt, masks = planes.view(5, 2, self.crop, self.crop)
        span = abs(r1 - r2)
        return {
            "rgb": normalize_frames(images[0]),
            "ref_rgb": normalize_frames(images[1]),
            "seg1": seg1,
            "seg2": seg2,
            "ref_prev": ref_prev,
            "ref_gt": ref_gt,
            "masks": masks,
            "dist": torch.tensor([abs(r1 - t) / span, abs(r2 - t) / span], dtype=torch.float32),
            "present": torch.tensor([True, o2 is not None]),
        }
