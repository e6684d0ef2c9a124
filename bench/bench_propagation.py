"""Propagation speed at 480p (frames per second), for 1 and 3 objects, and S2M latency.

python bench/bench_propagation.py [--frames 12] [--device cpu] [--threads 2] [--fast]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from common import Timer, first_mask, frames, networks

from inference_core.api import index_mask_to_prob
from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames
from inference_core.session import Session
from interact.scribble import ScribbleInteraction
from util.device import inference_context


def propagation(nets, clip, num_objects: int, fast: bool) -> list[float]:
    session = Session(nets, ArrayFrames(clip), num_objects, InferenceConfig(fast=fast))
    h, w = clip.shape[1:3]
    session.commit(0, index_mask_to_prob(first_mask(h, w, num_objects), num_objects, session.pad))
    times, timer = [], Timer().__enter__()
    for _ in session.propagate(0):
        timer.__exit__()
        times.append(timer.seconds)
        timer = Timer().__enter__()
    return times


def s2m_latency(nets, clip, repeats: int = 3) -> list[float]:
    session = Session(nets, ArrayFrames(clip[:1]), 1, InferenceConfig(fast=nets.precision.fast))
    times = []
    for _ in range(repeats):
        inter = ScribbleInteraction(session.frames.size, 1, session.results.padded_mask(0))
        inter.add_stroke(1, [(300, 200), (400, 220)])
        with inference_context(session.device, nets.precision.autocast), Timer() as timer:
            inter.predict(nets.s2m, session.image(0))
        times.append(timer.seconds)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fast", action="store_true", help="fast precision (model/precision.py)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    nets = networks(args.device, args.fast)
    clip = frames(args.frames)
    print(f"device {args.device}, {args.threads} threads, 480x854 frames (padded 480x864), "
          f"{nets.precision.describe()}")  # fmt: skip
    lat = s2m_latency(nets, clip)
    print(f"S2M per call: median {statistics.median(lat):.3f} s")
    for k in (1, 3):
        times = propagation(nets, clip, k, args.fast)
        med = statistics.median(times)
        print(f"{k} object(s): median {med:.3f} s/frame = {1 / med:.2f} frames/s "
              f"(min {min(times):.3f}, max {max(times):.3f}, {len(times)} frames)")  # fmt: skip


if __name__ == "__main__":
    main()
