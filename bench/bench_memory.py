"""Peak memory against video length, and the time to open a video.

For each length, a generated 480p video is opened (lazily), a session with its result store is
made, the first --propagate frames are propagated, and the process's peak RSS is printed. Run
one length per process so peaks do not mix:

    python bench/bench_memory.py --length 300
    python bench/bench_memory.py --length 1800
    python bench/bench_memory.py --length 18000 --propagate 30
"""

from __future__ import annotations

import argparse
import resource
from pathlib import Path

import torch
from common import Timer, first_mask, gib, networks, process_rss_bytes, scratch_folder, write_video

from inference_core.api import index_mask_to_prob
from inference_core.config import InferenceConfig
from inference_core.frames import open_frames
from inference_core.session import Session


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--length", type=int, default=300)
    p.add_argument("--propagate", type=int, default=30, help="frames to propagate")
    p.add_argument("--video", help="use this video instead of generating one")
    args = p.parse_args()
    torch.set_num_threads(2)
    work = scratch_folder("mivos-bench-mem-")
    video = Path(args.video) if args.video else work / "clip.mp4"
    if not args.video:
        with Timer() as t:
            write_video(video, args.length)
        print(
            f"generated {args.length} frames in {t.seconds:.1f} s ({video.stat().st_size >> 20} MB)"
        )
    nets = networks()
    base = process_rss_bytes()
    with Timer() as t:
        frames = open_frames(video=str(video), cache_dir=work / "frames")
    print(f"open: {t.seconds:.2f} s for {len(frames)} frames (estimate until decoded)")
    session = Session(nets, frames, 1, InferenceConfig(), storage_dir=work / "results")
    h, w = frames.size
    session.commit(0, index_mask_to_prob(first_mask(h, w, 1), 1, session.pad))
    with Timer() as t:
        for i, _ in enumerate(session.propagate(0)):
            if i + 1 >= args.propagate:
                break
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"propagated {args.propagate} frames in {t.seconds:.1f} s")
    print(f"results memory-mapped: {session.results.storage.memory_mapped}")
    print(f"RSS after loading networks {gib(base)}, now {gib(process_rss_bytes())}, "
          f"peak {gib(peak)}")  # fmt: skip


if __name__ == "__main__":
    main()
