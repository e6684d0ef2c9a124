"""Propagate given masks through a video without the GUI (`python -m inference_core`).

    python -m inference_core --video V | --images DIR  --masks DIR --output DIR
        [--start N --end M] [--full_masks] [--device auto] [--resolution 480] ...

Opens (or creates) the project in --output, imports the --masks files as annotations (the
same rule as the GUI: a file with only new objects introduces them, see workflow/project.py),
then runs every annotation's round in frame order and writes one indexed PNG per frame at the
source resolution, named like the input frames (00000.png... for a video), plus the project
file. Annotations already in --output (made in the GUI) are kept and used as annotations;
every other frame is computed afresh, so a rerun gives the same masks.

Then each --export KIND[=PATH] (repeatable) is written through Project.export, the GUI's
File > Export functions: by default into OUTPUT/exports/ as binary/ and alpha/ (one folder
per object id of 0/255 or soft PNGs), overlay.mp4 (H.264 at the source frame rate; image
folders: --fps, default 25) and coco.json (COCO RLE). PATH, relative to the current
directory, replaces the default; a video or COCO name without its extension gets one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from inference_core.config import InferenceConfig
from inference_core.frame_range import FrameRange
from inference_core.frames import FrameReadError, open_frames
from inference_core.session import Session
from interact.frame_editor import FrameEditor
from model.build import Networks, load_fusion_net, load_prop_net
from model.checkpoint import CheckpointError
from util.cli import run_command
from util.device import pick_device
from util.mask_io import MaskReadError
from workflow import export
from workflow.open_project import check_frames_not_overwritten, prepare_output
from workflow.project import Project
from workflow.restore import mask_files, resolve_object_ids, restore, scan_output
from workflow.state import StateError, objects_for_ids

log = logging.getLogger("inference_core")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m inference_core",
        description="Propagate index masks given on some frames through a whole video.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="a video file (decoded with PyAV)")
    src.add_argument("--images", help="a folder of frames (jpg/png/bmp/tif, natural sort)")
    p.add_argument("--masks", required=True, help="folder of index PNGs for annotated frames")
    p.add_argument("--output", required=True, help="folder for one index PNG per frame")
    p.add_argument("--start", type=int, default=0, help="first frame to process (default 0)")
    p.add_argument("--end", type=int, default=None, help="process frames before this one")
    p.add_argument(
        "--num_objects", type=int, default=None,
        help="objects are ids 1..N (default: the ids present in --masks, e.g. 1, 3, 7)",
    )  # fmt: skip
    p.add_argument(
        "--full_masks",
        action="store_true",
        help="every mask file is a full annotation of its frame (default: a file holding only "
        "objects absent from earlier annotations introduces them)",
    )
    p.add_argument("--resolution", type=int, default=480, help="working shorter side; -1 = source")
    p.add_argument("--mem_freq", "--mem_every", dest="mem_freq", type=int, default=5)
    p.add_argument("--top_k", type=int, default=20)
    p.add_argument("--device", default="auto", help="auto | cuda | mps | cpu")
    p.add_argument("--no_amp", action="store_true", help="no fp16 autocast on CUDA")
    p.add_argument("--prop_model", default="saves/stcn.pth")
    p.add_argument("--fusion_model", default="saves/fusion_stcn.pth")
    p.add_argument("--s2m_model", default="saves/s2m.pth", help="accepted; not needed here")
    p.add_argument(
        "--export", action="append", type=_export_request, default=[], metavar="KIND[=PATH]",
        help="after propagating, export: binary | alpha (soft) | overlay (video) | coco; "
        "repeatable; default place OUTPUT/exports/{binary/,alpha/,overlay.mp4,coco.json}",
    )  # fmt: skip
    p.add_argument(
        "--fps", type=export.parse_fps, default=None,
        help="frame rate of the overlay video (default: the video's own; image folders: 25)",
    )  # fmt: skip
    return p


# Where each export goes under OUTPUT/exports/ when --export names no path.
EXPORT_DEFAULTS = {
    "binary": "binary",
    "alpha": "alpha",
    "overlay": "overlay.mp4",
    "coco": "coco.json",
}


def _export_request(text: str) -> tuple[str, str | None]:
    """'KIND' or 'KIND=PATH' -> (canonical kind, PATH or None); argparse reports errors."""
    kind, sep, path = text.partition("=")
    try:
        kind = export.canonical_kind(kind.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if sep and not path:
        raise argparse.ArgumentTypeError(f"{text!r}: empty path after '='")
    return kind, path or None


def _imports(args: argparse.Namespace, source, frames: FrameRange) -> dict[int, Path]:
    """--masks files matched to the whole video's frames, then shifted into [start, end)."""
    masks_dir = Path(args.masks)
    files = mask_files(masks_dir, source)
    if not files:
        raise ValueError(f"{masks_dir}: no .png mask matches a frame of the input")
    inside = {t - frames.start: p for t, p in files.items() if frames.start <= t < frames.end}
    if not inside:
        raise ValueError(
            f"{args.masks}: no mask falls inside frames [{frames.start}, {frames.end})"
        )
    return inside


def run(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    out_dir = Path(args.output)
    prepare_output(out_dir)
    source = open_frames(video=args.video, images=args.images, resolution=args.resolution)
    check_frames_not_overwritten(out_dir, source)
    frames = FrameRange(source, args.start, args.end)
    imports = _imports(args, source, frames)
    existing = scan_output(out_dir, frames)
    object_ids = resolve_object_ids(args.num_objects, existing, imports)
    num_objects = len(object_ids)
    nets = Networks(
        prop=load_prop_net(args.prop_model, device),
        fusion=load_fusion_net(args.fusion_model, device),
        s2m=None,
        device=device,
    )
    cfg = InferenceConfig(mem_freq=args.mem_freq, top_k=args.top_k, amp=not args.no_amp)
    session = Session(nets, frames, num_objects, cfg)
    editor = FrameEditor(num_objects, frames.size, session.pad)
    # No interaction log: nobody interacts (the log is for annotation-time studies).
    project = Project(
        session, editor, objects_for_ids(object_ids), output=out_dir, full_masks=args.full_masks
    )
    project.source_path = str(Path(args.video or args.images).resolve())
    failures: list[str] = []
    project.attach_writer(lambda t, exc: failures.append(f"{frames.names[t]}.png: {exc}"))
    try:
        restore(project, existing, recompute=True)
        project.import_masks(imports)
        total = project.plan().total
        with tqdm(total=total, unit="frame", desc="propagating", file=sys.stderr) as bar:
            project.propagate(on_frame=lambda *_: bar.update(1))
        _export(project, args, out_dir)
    finally:
        project.close()
        session.close()
    if failures:
        raise OSError(f"{out_dir}: {len(failures)} masks could not be written ({failures[0]})")
    log.info("wrote %d masks to %s", len(frames), out_dir)
    return 0


def _export(project: Project, args: argparse.Namespace, out_dir: Path) -> None:
    """The --export requests, in the order given (a repeated kind and path once)."""
    if args.fps is not None:
        project.fps = args.fps  # else the source's own rate (Project.__init__)
    done: set[tuple[str, Path]] = set()
    for kind, path in args.export:
        target = export.export_path(kind, path or out_dir / "exports" / EXPORT_DEFAULTS[kind])
        if (kind, target) in done:
            continue
        done.add((kind, target))
        with tqdm(total=len(project.names), unit="frame", desc=f"export {kind}",
                  file=sys.stderr) as bar:  # fmt: skip
            report = project.export(kind, target, progress=lambda d, n: bar.update(d - bar.n))
        log.info("%s", report)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(
        lambda: run(args),
        (FrameReadError, MaskReadError, CheckpointError, StateError, ValueError, OSError),
    )
