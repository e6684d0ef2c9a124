"""f-BRS click latency at 480p: the first click (one forward; also when its early result, the
unflipped copy's, is ready) and a BRS click: fp32, --fast (no flip augmentation, its default)
and --fast with the flip (--click_flip on).

python bench/bench_click.py [--device cpu] [--threads 2] [--rounds 3]

The setups are loaded side by side and alternate A B C A B C in one process, so the
machine's load affects all alike; medians and the ratios to fp32 are printed. A round is
one session on a fresh predictor: click 1 (the full 480x864 padded frame, limited to 444x800,
batch of 2 with the flip, else 1) and click 2 (a zoom crop: backbone features again, then BRS).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from common import REPO, Timer, frames, scratch_folder

from model.fbrs.controller import ClickController
from model.fbrs.load import load_fbrs
from model.fbrs.predictor import FBRSPredictor
from model.normalize import normalize_frames
from util.device import inference_context
from util.tensor_util import pad_divide_by

# (x, y, positive) in unpadded 480x854 pixels: on the generated frame's square, then beside it.
CLICKS = ((225.0, 220.0, True), (400.0, 200.0, False))


@dataclass(frozen=True)
class ClickTimes:
    """Seconds per round: the first click's early result (its unflipped copy, shown by the GUI)
    and its own, the BRS click, and that click's evaluations."""

    first: list[float]
    brs: list[float]
    evaluations: list[int]
    early: list[float] = field(default_factory=list)


def fbrs_weights() -> Path | None:
    """Synthetic fbrs.pth from ../shared's tool when present, else None (random weights)."""
    synth = REPO.parent / "shared" / "tools" / "synth_weights.py"
    if not synth.is_file():
        return None
    import sys  # noqa: PLC0415

    sys.path.insert(0, str(synth.parent))
    from synth_weights import synth_state_dict  # noqa: PLC0415

    path = scratch_folder("mivos-bench-") / "fbrs.pth"
    schema = REPO.parent / "shared" / "checkpoints" / "schema" / "fbrs.json"
    torch.save(synth_state_dict(str(schema)), path)
    return path


def frame_tensor(device: str = "cpu") -> torch.Tensor:
    """A generated 480x854 frame, normalised and padded as the app pads it: (1,3,480,864)."""
    padded, _ = pad_divide_by(normalize_frames(frames(1)[0], torch.device(device))[None])
    return padded


def click_round(controller: ClickController, image: torch.Tensor, times: ClickTimes) -> None:
    """One session of len(CLICKS) clicks; appends the first and the BRS click's seconds."""
    controller.unanchor()
    with inference_context(image.device):
        for i, (x, y, positive) in enumerate(CLICKS):
            start = time.perf_counter()

            def early(_mask, start=start) -> None:
                times.early.append(time.perf_counter() - start)

            with Timer() as timer:
                controller.interact(image, x, y, positive, preview=early)
            if i == 0:
                times.first.append(timer.seconds)
            else:
                times.brs.append(timer.seconds)
                times.evaluations.append(len(controller.predictor.last.brs.evaluations))


# name -> (fast, flip): fp32 and --fast as the GUI runs them (--click_flip auto), and --fast
# with the flip kept (--click_flip on), to separate the two effects.
SETUPS = {"fp32": (False, True), "fast": (True, False), "fast+flip": (True, True)}


def compare(device: str = "cpu", rounds: int = 3) -> dict[str, ClickTimes]:
    """Click latency per SETUPS entry, alternating per round; {name: ClickTimes}."""
    weights = fbrs_weights()
    image = frame_tensor(device)
    nets = {fast: load_fbrs(weights, device, fast=fast) for fast in (False, True)}
    controllers = {
        name: ClickController(nets[fast], FBRSPredictor(nets[fast], flip=flip))
        for name, (fast, flip) in SETUPS.items()
    }
    times = {name: ClickTimes([], [], []) for name in controllers}
    for ctrl in controllers.values():
        click_round(ctrl, image, ClickTimes([], [], []))  # warm-up: oneDNN primitives
    for _ in range(rounds):
        for name, ctrl in controllers.items():
            click_round(ctrl, image, times[name])
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"device {args.device}, {args.threads} threads, 480x854 frame (padded 480x864)")
    times = compare(args.device, args.rounds)
    med = {n: (statistics.median(t.first), statistics.median(t.brs)) for n, t in times.items()}
    for name, t in times.items():
        if t.early:  # only a flipped first click has an early result (its unflipped copy)
            early = [round(v, 2) for v in t.early]
            print(f"{name}: first click's early result (shown by the GUI) median "
                  f"{statistics.median(t.early):.2f} s {early}")  # fmt: skip
        print(f"{name}: first click median {med[name][0]:.2f} s {[round(v, 2) for v in t.first]}, "
              f"BRS click median {med[name][1]:.2f} s {[round(v, 2) for v in t.brs]} "
              f"({statistics.median(t.evaluations)} evaluations)")  # fmt: skip
    for name in ("fast", "fast+flip"):
        print(f"{name} / fp32: first click {med[name][0] / med['fp32'][0]:.2f}, "
              f"BRS click {med[name][1] / med['fp32'][1]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
