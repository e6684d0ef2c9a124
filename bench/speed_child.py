"""One measurement in its own process, on any checkout of this project (today's or an older
one): propagation seconds per frame (mean, first frame left out) and an S2M call (median of
--s2m_calls), printed as one JSON line.

Used by bench/bench_speed.py --baseline; it only uses interfaces every version has.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import cv2
import numpy as np


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repo", required=True)
    p.add_argument("--objects", type=int, default=1)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--weights", nargs=3, required=True, help="stcn fusion_stcn s2m")
    p.add_argument("--s2m_calls", type=int, default=3, help="timed S2M calls (median)")
    args = p.parse_args()
    sys.path.insert(0, args.repo)
    import torch  # noqa: PLC0415

    from inference_core.api import index_mask_to_prob  # noqa: PLC0415
    from inference_core.config import InferenceConfig  # noqa: PLC0415
    from inference_core.frames import ArrayFrames  # noqa: PLC0415
    from inference_core.session import Session  # noqa: PLC0415
    from interact.scribble import ScribbleInteraction  # noqa: PLC0415
    from model.build import load_networks  # noqa: PLC0415

    torch.set_num_threads(args.threads)
    h, w, k = args.height, args.width, args.objects
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (9, 9), 0)
    clip = np.stack([np.roll(base, 7 * t, axis=1) for t in range(args.frames)])
    mask = np.zeros((h, w), np.uint8)
    for i in range(1, k + 1):
        mask[100:250, 60 + 180 * (i - 1) : 200 + 180 * (i - 1)] = i
    nets = load_networks(*args.weights, "cpu")
    session = Session(nets, ArrayFrames(clip), k, InferenceConfig())
    session.commit(0, index_mask_to_prob(mask, k, session.pad))
    times, start = [], time.perf_counter()
    for _ in session.propagate(0):
        now = time.perf_counter()
        times.append(now - start)
        start = now
    inter = ScribbleInteraction(session.frames.size, k, session.results.padded_mask(0))
    for i in range(1, k + 1):
        inter.add_stroke(i, [(100 + 150 * i, 200), (200 + 150 * i, 240)])
    with torch.inference_mode():
        inter.predict(nets.s2m, session.image(0))  # warm-up
        calls = []
        for _ in range(args.s2m_calls):  # the median: one call alone moved by ~10 % run to run
            start = time.perf_counter()
            inter.predict(nets.s2m, session.image(0))
            calls.append(time.perf_counter() - start)
    s2m = statistics.median(calls)
    print(json.dumps({"propagation": statistics.mean(times[1:] or times), "s2m": s2m}))


if __name__ == "__main__":
    main()
