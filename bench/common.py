"""Shared pieces of the benchmarks: networks with synthetic weights, generated inputs, RSS."""

from __future__ import annotations

import atexit
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.build import Networks, load_networks  # noqa: E402
from util.memory import process_rss_bytes  # noqa: E402


def scratch_folder(prefix: str) -> Path:
    """A new temporary folder removed when the process exits: benchmarks write hundreds of MB
    (weights, clips) per run and must not leave them behind in /tmp."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def weight_files() -> list[Path] | None:
    """stcn/fusion_stcn/s2m .pth with synthetic weights in a temporary folder (the official
    layout and statistics, from ../shared's tool), or None where ../shared is absent."""
    synth = REPO.parent / "shared" / "tools" / "synth_weights.py"
    if not synth.is_file():
        return None
    sys.path.insert(0, str(synth.parent))
    from synth_weights import synth_state_dict  # noqa: PLC0415

    folder = scratch_folder("mivos-bench-")
    paths = []
    for name in ("stcn", "fusion_stcn", "s2m"):
        schema = REPO.parent / "shared" / "checkpoints" / "schema" / f"{name}.json"
        torch.save(synth_state_dict(str(schema)), folder / f"{name}.pth")
        paths.append(folder / f"{name}.pth")
    return paths


def networks(device: str = "cpu", fast: bool = False, paths: list[Path] | None = None) -> Networks:
    """The official layout with synthetic weights (../shared's tool when present, else random),
    prepared for inference in fp32 or the fast mode (model/precision.py)."""
    paths = paths or weight_files()
    if paths is None:
        torch.manual_seed(0)
        return load_networks(None, None, None, device, fast=fast)
    return load_networks(*paths, device, fast=fast)


def frames(count: int, height: int = 480, width: int = 854, seed: int = 0) -> np.ndarray:
    """Textured frames with a moving square, (T, H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (9, 9), 0)
    out = np.repeat(base[None], count, axis=0)
    for t in range(count):
        x = 50 + (7 * t) % (width - 200)
        out[t, 150:300, x : x + 150] = (220, 80, 60)
    return out


def write_video(path: Path, count: int, height: int = 480, width: int = 854) -> Path:
    """A generated mp4 of `count` frames, written frame by frame (constant memory)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    one = frames(1, height, width)[0]
    for t in range(count):
        frame = np.roll(one, 3 * t, axis=1)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def first_mask(height: int, width: int, num_objects: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    for k in range(1, num_objects + 1):
        mask[100:250, 60 + 180 * (k - 1) : 200 + 180 * (k - 1)] = k
    return mask


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


__all__ = [
    "networks", "weight_files", "frames", "write_video", "first_mask", "gib", "Timer",
    "process_rss_bytes",
]  # fmt: skip


def alternated_median_ms(runs: dict, repeats: int) -> dict:
    """Median milliseconds of each no-argument callable in `runs`, timed in turn (A B A B ...)
    after one warm-up call each, so a change in the machine's load hits all of them alike."""
    for run in runs.values():
        run()
    times = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            with Timer() as timer:
                run()
            times[key].append(timer.seconds)
    return {key: 1e3 * statistics.median(t) for key, t in times.items()}
