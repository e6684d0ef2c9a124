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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from inference_core.config import InferenceConfig
from inference_core.frame_range import FrameRange
from inference_core.frames import FrameReadError, FrameSource, open_frames
from inference_core.session import Session
from interact.frame_editor import FrameEditor
from model.build import Networks, load_fusion_net, load_prop_net
from model.checkpoint import CheckpointError
from model.precision import choose_precision
from model.weights import find_weight
from util.cli import run_command
from util.device import pick_device
from util.mask_io import MaskReadError
from workflow import export
from workflow.open_project import check_frames_not_overwritten, prepare_output
from workflow.project import Project
from workflow.restore import Existing, mask_files, resolve_object_ids, restore, scan_output
from workflow.state import StateError, objects_for_ids

log = logging.getLogger("inference_core")

# bar(desc, total) -> a tqdm-like context manager with update(n) and n (frames done so far).
BarFactory = Callable[[str, int], Any]


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
    p.add_argument("--fast", action="store_true",
                   help="faster, >= 99%% of mask pixels equal to the default fp32: bf16 on CPUs "
                   "with bf16 units, fp16 autocast on CUDA (model/precision.py)")  # fmt: skip
    p.add_argument(
        "--no_amp",
        action="store_true",
        help="accepted for compatibility: fp32 is the default, --fast turns AMP on",
    )
    # Found as the GUI finds them (model.weights.find_weight): $MIVOS_WEIGHTS, else the per-user
    # weights folder, else ./saves; so the command works from any current folder.
    for flag, filename in (("--prop_model", "stcn.pth"), ("--fusion_model", "fusion_stcn.pth")):
        p.add_argument(flag, default=str(find_weight(filename)), help="default: %(default)s")
    p.add_argument("--s2m_model", default=None, help="accepted; not needed here")
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


@dataclass
class OpenedItem:
    """One propagation job with its inputs opened and checked; no network is loaded yet.

    Built by open_item() from the command's arguments; propagate_item() consumes it. Holds the
    frame source open (a video's decoded-frame cache lives until close()).
    """

    out_dir: Path  # the project folder masks are written to
    source: FrameSource  # the whole input (frames as players show them)
    frames: FrameRange  # [start, end) of `source`, indexed from 0
    imports: dict[int, Path]  # frame of `frames` -> --masks file to import
    existing: Existing  # what out_dir already holds (project file, saved masks)
    object_ids: list[int]  # the person's object ids, ascending

    def close(self) -> None:
        """Release the source (a video's decoder and temporary frame cache); idempotent."""
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


def open_item(args: argparse.Namespace) -> OpenedItem:
    """Check the output folder, open the frames, match the masks, resolve the object ids.

    Everything that can fail on bad input fails here, before any network is loaded, with the
    errors main() reports in one line (FrameReadError, MaskReadError, StateError, ValueError,
    OSError naming the file).
    """
    out_dir = Path(args.output)
    prepare_output(out_dir)
    source = open_frames(video=args.video, images=args.images, resolution=args.resolution)
    try:
        check_frames_not_overwritten(out_dir, source)
        frames = FrameRange(source, args.start, args.end)
        imports = _imports(args, source, frames)
        existing = scan_output(out_dir, frames)
        object_ids = resolve_object_ids(args.num_objects, existing, imports)
    except BaseException:
        close = getattr(source, "close", None)
        if close is not None:
            close()
        raise
    return OpenedItem(out_dir, source, frames, imports, existing, object_ids)


def load_item_networks(args: argparse.Namespace, device: torch.device) -> Networks:
    """The propagation and fusion networks of --prop_model / --fusion_model on `device`
    (CheckpointError naming a bad file), in --fast's precision. S2M is not needed to propagate
    given masks."""
    fast = getattr(args, "fast", False)
    return Networks(
        prop=load_prop_net(args.prop_model, device, fast),
        fusion=load_fusion_net(args.fusion_model, device, fast),
        s2m=None,
        device=device,
        precision=choose_precision(device, fast),
    )


def _bar(desc: str, total: int) -> tqdm:
    return tqdm(total=total, unit="frame", desc=desc, file=sys.stderr)


def propagate_item(
    item: OpenedItem, nets: Networks, args: argparse.Namespace, bar: BarFactory = _bar
) -> int:
    """Propagate one opened item with already-loaded networks; returns the masks written.

    The same steps, in the same order, as `python -m inference_core` (so the same masks and
    exports, byte for byte): restore the project in item.out_dir, import the masks, run every
    round, write the project file and every mask (atomically), then each --export. Loads
    nothing, so a batch worker keeps its networks across items. bar(desc, total) returns a
    tqdm-like context manager (update(n), n) for the propagation and each export. Raises
    OSError when masks could not be written, or what the workflow raises on bad masks.
    """
    frames, out_dir = item.frames, item.out_dir
    fast = getattr(args, "fast", False)
    cfg = InferenceConfig(mem_freq=args.mem_freq, top_k=args.top_k, fast=fast)
    session = Session(nets, frames, len(item.object_ids), cfg)
    editor = FrameEditor(len(item.object_ids), frames.size, session.pad)
    # No interaction log: nobody interacts (the log is for annotation-time studies).
    project = Project(
        session, editor, objects_for_ids(item.object_ids), output=out_dir,
        full_masks=args.full_masks,
    )  # fmt: skip
    project.source_path = str(Path(args.video or args.images).resolve())
    failures: list[str] = []
    project.attach_writer(lambda t, exc: failures.append(f"{frames.names[t]}.png: {exc}"))
    try:
        restore(project, item.existing, recompute=True)
        project.import_masks(item.imports)
        total = project.plan().total
        with bar("propagating", total) as progress:
            project.propagate(on_frame=lambda *_: progress.update(1))
        _export(project, args, out_dir, bar)
    finally:
        project.close()
        session.close()
    if failures:
        raise OSError(f"{out_dir}: {len(failures)} masks could not be written ({failures[0]})")
    return len(frames)


def run(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    item = open_item(args)
    try:
        nets = load_item_networks(args, device)
        written = propagate_item(item, nets, args)
    finally:
        item.close()
    log.info("wrote %d masks to %s", written, item.out_dir)
    return 0


def export_targets(args: argparse.Namespace, out_dir: Path) -> list[tuple[str, Path]]:
    """(kind, file or folder) of each --export request, in the order given, each pair once.

    A request without a path goes to OUTPUT/exports/ (EXPORT_DEFAULTS); a path is taken as
    typed (relative to the current directory) with its missing extension added.
    """
    targets: list[tuple[str, Path]] = []
    for kind, path in args.export:
        target = export.export_path(kind, path or out_dir / "exports" / EXPORT_DEFAULTS[kind])
        if (kind, target) not in targets:
            targets.append((kind, target))
    return targets


def _export(
    project: Project, args: argparse.Namespace, out_dir: Path, bar: BarFactory = _bar
) -> None:
    """The --export requests, in the order given (a repeated kind and path once)."""
    if args.fps is not None:
        project.fps = args.fps  # else the source's own rate (Project.__init__)
    for kind, target in export_targets(args, out_dir):
        with bar(f"export {kind}", len(project.names)) as progress:
            report = project.export(
                kind, target, progress=lambda d, n: progress.update(d - progress.n)
            )
        log.info("%s", report)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(
        lambda: run(args),
        (FrameReadError, MaskReadError, CheckpointError, StateError, ValueError, OSError),
    )
