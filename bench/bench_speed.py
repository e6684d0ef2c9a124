"""Speed ratios measured side by side in one run: fp32 vs --fast, 1 vs 3 objects, S2M, and
(optionally) this tree vs another checkout (e.g. the baseline before issue 17) or the whole
headless command fp32 vs --fast.

    python bench/bench_speed.py                         # in-process ratios, 480x854
    python bench/bench_speed.py --baseline ../baseline  # + this tree vs that checkout, A B A B
    python bench/bench_speed.py --whole 50              # + whole `python -m inference_core`
                                                        #   runs on a 50-frame clip, fp32 vs --fast

Every comparison alternates its two sides (A B A B ...) --repeats times and prints each pair's
ratio and their median; the machine's load changes between runs, so only such ratios are
meaningful. Prints figures, asserts nothing. Synthetic weights (speed does not depend on values).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import REPO, Timer, first_mask, frames, networks, scratch_folder, weight_files

from inference_core.api import index_mask_to_prob
from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames
from inference_core.session import Session
from interact.scribble import ScribbleInteraction
from util.device import inference_context

CHILD = Path(__file__).with_name("speed_child.py")


def per_frame(nets, clip: np.ndarray, num_objects: int, fast: bool) -> float:
    """Mean seconds per propagated frame (the first one, which warms up, left out): the mean,
    not the median, so the frames that also write memory (every mem_freq-th) count."""
    session = Session(nets, ArrayFrames(clip), num_objects, InferenceConfig(fast=fast))
    h, w = clip.shape[1:3]
    prob = index_mask_to_prob(first_mask(h, w, num_objects), num_objects, session.pad)
    session.commit(0, prob)
    times, start = [], time.perf_counter()
    for _ in session.propagate(0):
        now = time.perf_counter()
        times.append(now - start)
        start = now
    return statistics.mean(times[1:] or times)


def s2m_seconds(nets, clip: np.ndarray, num_objects: int) -> float:
    """Seconds for one scribble -> mask call with `num_objects` objects (one stroke each)."""
    cfg = InferenceConfig(fast=nets.precision.fast)
    session = Session(nets, ArrayFrames(clip[:1]), num_objects, cfg)
    inter = ScribbleInteraction(session.frames.size, num_objects, session.results.padded_mask(0))
    for k in range(1, num_objects + 1):
        inter.add_stroke(k, [(100 + 150 * k, 200), (200 + 150 * k, 240)])
    with inference_context(session.device, nets.precision.autocast):
        inter.predict(nets.s2m, session.image(0))  # warm-up
        with Timer() as timer:
            inter.predict(nets.s2m, session.image(0))
    return timer.seconds


def side_by_side(label: str, a_name: str, b_name: str, run_a, run_b, repeats: int, unit: str):
    """Alternate run_a / run_b; print each pair and the median ratio b / a."""
    ratios = []
    for i in range(repeats):
        a, b = run_a(), run_b()
        ratios.append(b / a)
        print(f"  {label} pair {i + 1}: {a_name} {a:.3f} {unit}, {b_name} {b:.3f} {unit}, "
              f"{b_name}/{a_name} {b / a:.2f}", flush=True)  # fmt: skip
    med = statistics.median(ratios)
    print(f"{label}: {b_name} / {a_name} = {med:.2f} (median of {repeats} pairs)", flush=True)
    return med


def in_process(args: argparse.Namespace) -> None:
    paths = weight_files()
    nets = {fast: networks(args.device, fast, paths) for fast in (False, True)}
    clip = frames(args.frames, args.height, args.width)
    print(f"{args.device}, {torch.get_num_threads()} threads, {args.height}x{args.width}; "
          f"fast = {nets[True].precision.describe()}", flush=True)  # fmt: skip
    for k in (1, 3):
        side_by_side(f"propagation s/frame, {k} object(s)", "fp32", "fast",
                     lambda k=k: per_frame(nets[False], clip, k, False),
                     lambda k=k: per_frame(nets[True], clip, k, True),
                     args.repeats, "s")  # fmt: skip
    for fast in (False, True):
        mode = "fast" if fast else "fp32"
        side_by_side(f"propagation s/frame, {mode}", "1 object", "3 objects",
                     lambda f=fast: per_frame(nets[f], clip, 1, f),
                     lambda f=fast: per_frame(nets[f], clip, 3, f), args.repeats, "s")  # fmt: skip
    side_by_side("S2M s/call, 1 object", "fp32", "fast",
                 lambda: s2m_seconds(nets[False], clip, 1),
                 lambda: s2m_seconds(nets[True], clip, 1), args.repeats, "s")  # fmt: skip
    side_by_side("S2M s/call, fp32", "1 object", "3 objects",
                 lambda: s2m_seconds(nets[False], clip, 1),
                 lambda: s2m_seconds(nets[False], clip, 3), args.repeats, "s")  # fmt: skip


def child(repo: Path, args: argparse.Namespace, num_objects: int, paths: list[Path]) -> dict:
    """One whole process of bench/speed_child.py on `repo`'s code: its JSON figures."""
    cmd = [sys.executable, str(CHILD), "--repo", str(repo), "--objects", str(num_objects),
           "--frames", str(args.frames), "--height", str(args.height), "--width", str(args.width),
           "--threads", str(args.threads), "--weights", *map(str, paths)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def versus_baseline(args: argparse.Namespace) -> None:
    paths = weight_files()
    base = Path(args.baseline).resolve()
    print(f"this tree ({REPO}) vs {base}, whole processes alternated", flush=True)
    for k in (1, 3):
        runs = {"base": [], "ours": []}

        def run(name: str, repo: Path, k=k, runs=runs) -> dict:
            runs[name].append(child(repo, args, k, paths))
            return runs[name][-1]

        side_by_side(f"propagation s/frame, {k} object(s), fp32", "ours", "baseline",
                     lambda: run("ours", REPO)["propagation"],
                     lambda: run("base", base)["propagation"], args.repeats, "s")  # fmt: skip
        s2m = [b["s2m"] / o["s2m"] for o, b in zip(runs["ours"], runs["base"], strict=True)]
        print(f"S2M s/call, {k} object(s), fp32: baseline / ours = {statistics.median(s2m):.2f} "
              f"(pairs: {', '.join(f'{r:.2f}' for r in s2m)})", flush=True)  # fmt: skip


def whole_process(args: argparse.Namespace) -> None:
    """`python -m inference_core` on a generated clip, fp32 vs --fast, alternated; the share
    of mask pixels equal between the two outputs."""
    from common import write_video  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    paths = weight_files()
    work = scratch_folder("mivos-whole-")
    video = write_video(work / "clip.mp4", args.whole, args.height, args.width)
    masks = work / "masks"
    masks.mkdir()
    Image.fromarray(first_mask(args.height, args.width, 1)).save(masks / "00000.png")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}

    def run(fast: bool, i: int, repo: Path = REPO) -> float:
        side = "fast" if fast else ("fp32" if repo == REPO else "baseline")
        out = work / f"out_{side}_{i}"
        cmd = [sys.executable, "-m", "inference_core", "--video", str(video), "--masks",
               str(masks), "--output", str(out), "--device", args.device, "--resolution", "-1",
               "--prop_model", str(paths[0]), "--fusion_model", str(paths[1])]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(cmd + (["--fast"] if fast else []), check=True, cwd=repo, env=env,
                       capture_output=True)  # fmt: skip
        return time.perf_counter() - start

    print(f"whole `python -m inference_core`, {args.whole} frames {args.height}x{args.width}, "
          "1 object", flush=True)  # fmt: skip
    count = iter(range(1000))
    side_by_side("whole process s", "fp32", "fast", lambda: run(False, next(count)),
                 lambda: run(True, next(count)), args.repeats, "s")  # fmt: skip
    if args.baseline:
        # the 0.4 was set against fp32 at the original's speed: --fast against the
        # baseline checkout's fp32 command, alternated the same way
        side_by_side("whole process s", "baseline fp32", "fast",
                     lambda: run(False, next(count), Path(args.baseline).resolve()),
                     lambda: run(True, next(count)), args.repeats, "s")  # fmt: skip
    a = sorted((work / "out_fp32_0").glob("*.png"))
    b = sorted(next(work.glob("out_fast_*")).glob("*.png"))
    equal = [
        np.mean(np.asarray(Image.open(x)) == np.asarray(Image.open(y)))
        for x, y in zip(a, b, strict=True)
    ]
    print(f"mask pixels equal fp32 vs fast: {100 * np.mean(equal):.3f} % over {len(equal)} "
          f"frames (worst frame {100 * min(equal):.3f} %)", flush=True)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--frames", type=int, default=6, help="frames per propagation measurement")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="A B pairs per comparison")
    p.add_argument("--baseline", help="another checkout of this project to compare against")
    p.add_argument("--whole", type=int, default=0, metavar="N",
                   help="also time the whole headless command on an N-frame clip")  # fmt: skip
    p.add_argument("--skip_in_process", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_in_process:
        in_process(args)
    if args.baseline:
        versus_baseline(args)
    if args.whole:
        whole_process(args)


if __name__ == "__main__":
    main()
