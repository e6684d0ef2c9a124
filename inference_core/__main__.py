"""Propagate given masks through a video without the GUI (semi-supervised segmentation).

    python -m inference_core --video V | --images DIR  --masks DIR --output DIR
        [--start N --end M] [--device auto] [--resolution 480] ...

Writes one indexed PNG per processed frame into --output, at the source resolution, named like
the input frames (or 00000.png... for a video).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from inference_core.api import planned_frame_count, propagate_from_masks
from inference_core.config import InferenceConfig
from inference_core.frame_range import FrameRange
from inference_core.frames import FrameReadError, open_frames
from inference_core.mask_matching import load_annotations, match_masks_to_frames
from inference_core.session import Session
from model.build import Networks, load_fusion_net, load_prop_net
from model.checkpoint import CheckpointError
from util.cli import run_command
from util.device import pick_device
from util.mask_io import MaskReadError, list_mask_files, read_index_mask, write_index_mask
from util.tensor_util import unpad

log = logging.getLogger("inference_core")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m inference_core",
        description="Propagate index masks given on some frames through a whole video.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="a video file OpenCV can read")
    src.add_argument("--images", help="a folder of frames (jpg/png/bmp/tif, natural sort)")
    p.add_argument("--masks", required=True, help="folder of index PNGs for annotated frames")
    p.add_argument("--output", required=True, help="folder for one index PNG per frame")
    p.add_argument("--start", type=int, default=0, help="first frame to process (default 0)")
    p.add_argument("--end", type=int, default=None, help="process frames before this one")
    p.add_argument("--num_objects", type=int, default=None, help="default: max id in --masks")
    p.add_argument("--resolution", type=int, default=480, help="working shorter side; -1 = source")
    p.add_argument("--mem_freq", "--mem_every", dest="mem_freq", type=int, default=5)
    p.add_argument("--top_k", type=int, default=20)
    p.add_argument("--device", default="auto", help="auto | cuda | mps | cpu")
    p.add_argument("--no_amp", action="store_true", help="no fp16 autocast on CUDA")
    p.add_argument("--prop_model", default="saves/stcn.pth")
    p.add_argument("--fusion_model", default="saves/fusion_stcn.pth")
    p.add_argument("--s2m_model", default="saves/s2m.pth", help="accepted; not needed here")
    return p


def _annotation_files(args, frames) -> dict[int, Path]:
    masks_dir = Path(args.masks)
    if not masks_dir.is_dir():
        raise ValueError(f"{masks_dir}: mask folder not found")
    files = list_mask_files(masks_dir)
    if not files:
        raise ValueError(f"{masks_dir}: contains no .png masks")
    matched = match_masks_to_frames(files, frames.names)
    if not matched:
        raise ValueError(f"{masks_dir}: no mask file matches a frame of the input")
    return matched


def _source_mask(session: Session, t: int, source_size: tuple[int, int]) -> np.ndarray:
    """Frame t's labels at the source resolution: bilinear on probabilities, then arg-max."""
    prob = torch.from_numpy(session.results.prob(t)).unsqueeze(0)
    prob = unpad(prob, session.pad)
    if tuple(prob.shape[-2:]) != tuple(source_size):
        prob = F.interpolate(prob, size=source_size, mode="bilinear", align_corners=False)
    return prob[0].argmax(0).to(torch.uint8).numpy()


def run(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    source = open_frames(video=args.video, images=args.images, resolution=args.resolution)
    frames = FrameRange(source, args.start, args.end)
    files = _annotation_files(args, source)
    annotations = load_annotations(files, source.size, source.source_size, args.num_objects)
    inside = {t - args.start: m for t, m in annotations.items() if frames.start <= t < frames.end}
    if not inside:
        raise ValueError(
            f"{args.masks}: no mask falls inside frames [{frames.start}, {frames.end})"
        )
    num_objects = args.num_objects or max(int(m.max()) for m in annotations.values())
    if num_objects < 1:
        raise ValueError(f"{args.masks}: the masks hold no object (all background)")
    nets = Networks(
        prop=load_prop_net(args.prop_model, device),
        fusion=load_fusion_net(args.fusion_model, device),
        s2m=None,
        device=device,
    )
    cfg = InferenceConfig(mem_freq=args.mem_freq, top_k=args.top_k, amp=not args.no_amp)
    session = Session(nets, frames, num_objects, cfg)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = frames.names

    def write(t: int) -> None:
        # An annotated frame keeps the person's own mask, at the source resolution.
        given = files.get(t + frames.start)
        if given is not None:
            mask = read_index_mask(given, size=source.source_size)
        else:
            mask = _source_mask(session, t, source.source_size)
        write_index_mask(out_dir / f"{names[t]}.png", mask)

    total = planned_frame_count(list(inside), len(frames))
    try:
        with tqdm(total=total, unit="frame", desc="propagating", file=sys.stderr) as bar:
            for _ in propagate_from_masks(session, inside, on_final=write):
                bar.update(1)
    finally:
        session.close()
    log.info("wrote %d masks to %s", len(frames), out_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(
        lambda: run(args), (FrameReadError, MaskReadError, CheckpointError, ValueError, OSError)
    )


if __name__ == "__main__":
    sys.exit(main())
