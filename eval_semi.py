"""Semi-supervised evaluation: propagate each sequence's first-frame mask, then score J and F.

    python eval_semi.py --images DIR --masks DIR --output DIR [--sequences a,b]
        [--device auto] [--prop_model stcn.pth] [--fusion_model fusion_stcn.pth]

--images holds JPEGImages/480p/<seq>/ (or is that folder); --masks holds Annotations/480p/<seq>/
(likewise). Writes palette PNGs at the source resolution to OUTPUT/<seq>/. Where the mask
folder has ground truth beyond the first frame, prints J, F and J&F per sequence and overall,
and writes them to OUTPUT/results.csv and OUTPUT/results.json. As in the DAVIS 2017
semi-supervised protocol, the first (given) and last frames are not scored and void pixels
(255) are ignored.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evaluation.dataset import (
    VOID_ID,
    DavisLayoutError,
    object_ids,
    sequence_names,
    sequences_folder,
)
from evaluation.metrics import Score, ScoreTable, frame_scores
from inference_core.config import InferenceConfig
from inference_core.frames import FrameReadError, ImageFolderFrames
from inference_core.session import Session
from interact.frame_editor import FrameEditor
from model.build import Networks, load_fusion_net, load_prop_net
from model.checkpoint import CheckpointError
from model.precision import choose_precision
from model.weights import find_weight
from util.cli import run_command
from util.device import pick_device
from util.mask_io import MaskReadError, list_mask_files, read_index_mask
from workflow.mask_files import match_masks_to_frames
from workflow.project import Project

log = logging.getLogger("eval_semi")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python eval_semi.py",
        description="Propagate first-frame masks through DAVIS-format sequences and score them.",
    )
    p.add_argument("--images", required=True, help="DAVIS root (JPEGImages/480p/<seq>/)")
    p.add_argument("--masks", required=True, help="DAVIS root (Annotations/480p/<seq>/)")
    p.add_argument("--output", required=True, help="folder for <seq>/ masks and the results")
    p.add_argument("--sequences", help="comma-separated names (default: every sequence)")
    p.add_argument("--resolution", type=int, default=480, help="working shorter side; -1 = source")
    p.add_argument("--mem_freq", type=int, default=5)
    p.add_argument("--top_k", type=int, default=20)
    p.add_argument("--fast", "--amp", dest="fast", action="store_true",
                   help="fast precision (bf16 on CPUs with bf16 units, fp16 autocast on CUDA; "
                   "default: fp32, the published numbers)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cuda | mps | cpu")
    p.add_argument("--prop_model", default=str(find_weight("stcn.pth")))
    p.add_argument("--fusion_model", default=str(find_weight("fusion_stcn.pth")))
    return p


def _scored_frames(annotated: list[int], num_frames: int) -> list[int]:
    """Frames with ground truth to score: not the given first frame nor, if possible, the last."""
    inner = [t for t in annotated if 0 < t < num_frames - 1]
    return inner or [t for t in annotated if t > 0]


def segment_sequence(
    nets: Networks, cfg: InferenceConfig, frames: ImageFolderFrames, masks: Path, out_dir: Path
) -> tuple[np.ndarray, np.ndarray] | None:
    """Propagate one sequence from its first-frame mask and write every frame's mask.

    Returns (J, F), each (scored frames, objects), or None when there is no ground truth to score.
    """
    files = match_masks_to_frames(list_mask_files(masks), frames.names) if masks.is_dir() else {}
    if 0 not in files:
        raise DavisLayoutError(f"{masks}: no mask for the first frame ({frames.names[0]})")
    given = read_index_mask(files[0], size=frames.size).copy()
    given[given == VOID_ID] = 0  # unlabelled pixels are no object to follow
    ids = object_ids(given)
    if not ids:
        raise DavisLayoutError(f"{files[0]}: the first-frame mask holds no object")
    num_objects = max(ids)
    session = Session(nets, frames, num_objects, cfg)
    editor = FrameEditor(num_objects, frames.size, session.pad)
    out_dir.mkdir(parents=True, exist_ok=True)
    project = Project(session, editor, output=out_dir)
    # The given mask is saved as given, its void band as background (outputs hold objects only).
    source = read_index_mask(files[0], size=frames.source_size).copy()
    source[source == VOID_ID] = 0
    project.attach_writer()
    project.import_mask(0, given, source, file=str(files[0]))
    total = project.plan().total
    try:
        with tqdm(
            total=total, unit="frame", desc=out_dir.name, file=sys.stderr, leave=False
        ) as bar:
            project.propagate(on_frame=lambda *_: bar.update(1))
    finally:
        project.close()
        session.close()
    scored = _scored_frames(sorted(files), len(frames))
    j_rows, f_rows = [], []
    for t in scored:
        truth = read_index_mask(files[t], size=frames.source_size)
        j, f = frame_scores(
            truth, read_index_mask(out_dir / f"{frames.names[t]}.png"), num_objects, void_id=VOID_ID
        )
        j_rows.append(j)
        f_rows.append(f)
    return (np.array(j_rows), np.array(f_rows)) if j_rows else None


def write_results(output: Path, table: ScoreTable) -> list[Score]:
    """results.csv and results.json: one row per sequence, then the overall row."""
    rows = [*table.sequences(), table.overall()]
    records = [
        {"sequence": s.name, "objects": s.num_objects, "J": s.j, "F": s.f, "J&F": s.jf}
        for s in rows
    ]
    with open(output / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    (output / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    return rows


def _sequences(args: argparse.Namespace, images_root: Path) -> list[str]:
    if args.sequences:
        names = [n.strip() for n in args.sequences.split(",") if n.strip()]
        missing = [n for n in names if not (images_root / n).is_dir()]
        if missing:
            raise DavisLayoutError(f"{images_root}: no sequence folder {', '.join(missing)}")
        return names
    return sequence_names(images_root)


def run(args: argparse.Namespace) -> int:
    images_root = sequences_folder(args.images, "JPEGImages")
    masks_root = sequences_folder(args.masks, "Annotations")
    names = _sequences(args, images_root)
    device = pick_device(args.device)
    nets = Networks(
        prop=load_prop_net(args.prop_model, device, args.fast),
        fusion=load_fusion_net(args.fusion_model, device, args.fast),
        s2m=None,
        device=device,
        precision=choose_precision(device, args.fast),
    )
    cfg = InferenceConfig(
        mem_freq=args.mem_freq, top_k=args.top_k, fast=args.fast, prob_dtype="float32"
    )
    resolution = None if args.resolution < 0 else args.resolution
    output = Path(args.output)
    table = ScoreTable()
    for name in tqdm(names, unit="sequence", desc="sequences", file=sys.stderr):
        frames = ImageFolderFrames(images_root / name, resolution=resolution)
        scores = segment_sequence(nets, cfg, frames, masks_root / name, output / name)
        if scores is not None:
            table.add_sequence(name, *scores)
    log.info("wrote the masks of %d sequences to %s", len(names), output)
    if not table.sequences():
        log.info("no ground truth beyond the first frames: nothing to score")
        return 0
    print(f"{'sequence':<24} {'J':>6} {'F':>6} {'J&F':>6}")
    for score in write_results(output, table):
        print(f"{score.name:<24} {score.j:6.3f} {score.f:6.3f} {score.jf:6.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(
        lambda: run(args),
        (DavisLayoutError, FrameReadError, MaskReadError, CheckpointError, ValueError, OSError),
    )


if __name__ == "__main__":
    sys.exit(main())
