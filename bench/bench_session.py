"""Memory over a long session: many rounds of correction and propagation on one clip.

Each round corrects one of --corrected frames (a moved copy of the first mask), commits it and
propagates to the neighbouring corrected frames, as an annotator fixing a clip does. Prints the
process RSS and the session's own accounting every --every rounds. With the default rule a
frame corrected again replaces its memory entry; --append uses the original's rule (the certain
memory grows every round) for comparison:

    python bench/bench_session.py --frames 300 --rounds 100 --height 240 --width 427
    python bench/bench_session.py --frames 300 --rounds 100 --height 240 --width 427 --append
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import Timer, first_mask, frames, gib, networks, process_rss_bytes

from inference_core.api import index_mask_to_prob
from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames
from inference_core.session import Session


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--corrected", type=int, default=20, help="distinct frames corrected")
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=427)
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--every", type=int, default=10, help="print every N rounds")
    p.add_argument("--append", action="store_true", help="the original's re-interaction rule")
    args = p.parse_args()
    torch.set_num_threads(2)
    clip = frames(args.frames, args.height, args.width)
    nets = networks()
    rule = "append" if args.append else "replace"
    cfg = InferenceConfig(reinteraction=rule)
    session = Session(nets, ArrayFrames(clip), args.objects, cfg)
    rng = np.random.default_rng(0)
    corrected = np.linspace(0, args.frames - 1, args.corrected).astype(int)
    first_pass = rng.permutation(corrected)  # every corrected frame once, in a random order
    mask = first_mask(args.height, args.width, args.objects)
    print(f"{args.frames} frames {args.height}x{args.width}, {args.objects} objects, rule {rule}")
    print(f"RSS with networks and frames: {gib(process_rss_bytes())}")
    frames_done = 0
    with Timer() as total:
        for n in range(1, args.rounds + 1):
            t = int(first_pass[n - 1] if n <= len(first_pass) else rng.choice(corrected))
            moved = np.roll(mask, int(rng.integers(-20, 20)), axis=1)
            session.commit(t, index_mask_to_prob(moved, args.objects, session.pad))
            frames_done += sum(1 for _ in session.propagate(t))
            if n % args.every == 0 or n == args.rounds:
                report = session.memory_report()
                print(
                    f"round {n:4d}: RSS {gib(process_rss_bytes())}, certain memory "
                    f"{report['certain_entries']} entries {report['certain_memory'] / 2**20:.1f} "
                    f"MiB, results {report['results_ram'] / 2**20:.0f} MiB, "
                    f"{frames_done} frames propagated"
                )
    print(f"{args.rounds} rounds in {total.seconds:.0f} s ({frames_done} propagated frames)")


if __name__ == "__main__":
    main()
