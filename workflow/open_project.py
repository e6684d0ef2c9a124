"""Opening a project from the command line: inputs, weights, masks, output folder."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from inference_core.config import InferenceConfig
from inference_core.frames import FrameSource, open_frames
from inference_core.session import Session
from interact.frame_editor import FrameEditor
from model.build import Networks, load_fusion_net, load_prop_net, load_s2m
from model.checkpoint import CheckpointError
from model.fbrs.controller import ClickController
from model.fbrs.load import load_fbrs
from model.fbrs.predictor import FBRSPredictor
from model.precision import choose_precision
from model.weights import weight_spec
from model.weights import weights_dir as default_weights_dir
from util.device import inference_context
from util.jsonl_log import JsonlLog
from workflow.project import Project
from workflow.restore import (
    mask_files,
    project_object_ids,
    resolve_object_ids,
    restore,
    scan_output,
)
from workflow.state import LOG_FILE, objects_for_ids

log = logging.getLogger(__name__)


REPO = Path(__file__).resolve().parents[1]
EXAMPLE_VIDEO = REPO / "examples" / "example.mp4"


@dataclass(frozen=True)
class StartupOptions:
    video: str | None
    images: str | None
    masks: str | None
    output: str | None
    num_objects: int | None
    resolution: int
    mem_freq: int
    fast: bool  # model/precision.py: bf16 on CPUs with bf16 units, fp16 autocast on CUDA
    prop_model: str
    fusion_model: str
    s2m_model: str | None
    fbrs_model: str | None = None
    full_masks: bool = False  # every --masks file is a full annotation (never "introduces")
    # Frames per second of the overlay video export; None = the video's own rate (image
    # folders: export.DEFAULT_FPS).
    fps: float | None = None
    # The weights folder the default weight paths were resolved in (--weights_dir, else
    # $MIVOS_WEIGHTS, else the per-user one: model.weights.weights_dir); named in messages.
    # None: the paths were all given explicitly.
    weights_dir: str | None = None
    # f-BRS's flip test-time augmentation for clicks; None: on in fp32, off with `fast`
    # (twice the speed of a session's first click; README, Speed).
    click_flip: bool | None = None


class MissingWeights(FileNotFoundError):
    """Weight files the application needs are missing; the message lists them and the remedy.

    `missing`: (path, what it is) of each required file absent; `optional`: paths of optional
    files also absent (s2m.pth, fbrs.pth), offered by the same first-run download.
    `weights_dir`: the folder the default paths were resolved in (None if all were explicit).
    The message names only the GUI's own flags (--download) and the download command.
    """

    def __init__(
        self,
        missing: list[tuple[str, str]],
        optional: list[str] = (),
        weights_dir: str | None = None,
    ) -> None:
        self.missing = missing  # (path, what it is)
        self.optional = list(optional)  # missing files the application can run without
        self.weights_dir = weights_dir
        lines = [f"  {path}  ({what})" for path, what in missing]
        lines += [f"  {path}  ({_what(path)}, optional)" for path in self.optional]
        super().__init__(
            "Missing model weights:\n" + "\n".join(lines) + "\n"
            "Start again and accept the download (or add --download), or download them with:  "
            + _download_command([p for p, _ in missing] + self.optional, weights_dir)
        )


def _what(path: str) -> str:
    """What an official weight file is for ("propagation"), or "weights" for another name."""
    try:
        return weight_spec(Path(path).name).purpose
    except KeyError:
        return "weights"


def _download_command(paths: list[str], weights_dir: str | None) -> str:
    """The download_model.py command that puts `paths` where this start-up looks for them."""
    folders = {Path(p).parent.resolve() for p in paths}
    if weights_dir is not None:
        folders.add(Path(weights_dir).resolve())
    if len(folders) == 1 and folders != {default_weights_dir().resolve()}:
        return f"python download_model.py --dir {next(iter(folders))}"
    return "python download_model.py"


def input_source(opts: StartupOptions) -> tuple[str | None, str | None]:
    """(video, images); the bundled example when neither is given (rendered if missing)."""
    if opts.video or opts.images:
        return (None, opts.images) if opts.images else (opts.video, None)
    if not EXAMPLE_VIDEO.is_file():
        from examples.make_example import render_example  # generated on first use

        render_example(EXAMPLE_VIDEO)
    return str(EXAMPLE_VIDEO), None


def default_output(video: str | None, images: str | None) -> Path:
    """A workspace folder beside the input: clip.mp4 -> clip_masks/, frames/ -> frames_masks/."""
    source = Path(video or images).resolve()
    stem = source.stem if video else source.name
    return source.parent / f"{stem}_masks"


def check_weights(opts: StartupOptions) -> bool:
    """Raise MissingWeights when a required file is absent; return whether S2M is available.

    The exception also lists the optional files that are absent (s2m.pth for scribbles,
    fbrs.pth for clicks), so that one first-run download fetches all of them. Only presence is
    checked here (instant); loading validates each file strictly later.
    """
    required = [
        (opts.prop_model, weight_spec("stcn").purpose),
        (opts.fusion_model, weight_spec("fusion_stcn").purpose),
    ]
    missing = [(p, what) for p, what in required if not Path(p).is_file()]
    optional = [p for p in (opts.s2m_model, opts.fbrs_model) if p and not Path(p).is_file()]
    if missing:
        raise MissingWeights(missing, optional, opts.weights_dir)
    if opts.s2m_model and Path(opts.s2m_model).is_file():
        return True
    log.warning("%s not found: scribbles are disabled (brush only)", opts.s2m_model)
    return False


def _click_controller(
    opts: StartupOptions, device: torch.device
) -> tuple[ClickController | None, str]:
    """f-BRS when its weights load; otherwise clicks are off, with the reason (also logged)."""
    if not opts.fbrs_model or not Path(opts.fbrs_model).is_file():
        reason = f"{opts.fbrs_model} not found: clicks are disabled"
    else:
        try:
            net = load_fbrs(opts.fbrs_model, device, opts.fast)
            flip = (not opts.fast) if opts.click_flip is None else opts.click_flip
            return ClickController(net, FBRSPredictor(net, flip=flip)), ""
        except CheckpointError as exc:
            reason = f"clicks are disabled: {exc}"
    log.warning("%s", reason)
    return None, reason


class OutputFolderError(OSError):
    """The output folder cannot hold masks; the message names it and says why."""


def prepare_output(output: Path) -> None:
    """Create the output folder and prove a file can be written there, before any slow work.

    Otherwise a file in its place or a read-only folder surfaced later as a bare OSError naming
    a hidden temporary file, after the networks had loaded.
    """
    if output.exists() and not output.is_dir():
        raise OutputFolderError(f"{output}: is a file, not a folder; give --output a folder")
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as exc:
        raise OutputFolderError(
            f"{output}: masks cannot be saved in this folder ({exc.strerror or exc}); "
            "give --output a writable folder"
        ) from exc


def check_frames_not_overwritten(output: Path, frames: FrameSource) -> None:
    """Refuse an output folder that is the folder of the input frames (ValueError naming it).

    Masks are saved there as <frame name>.png and the project file beside them: PNG frames
    would be overwritten, and frames of any format would be mixed with our masks, which a
    second run then lists as frames and reads back as masks. The GUI and the headless command
    both call this before any mask is written. Videos never clash (their frames are cached
    inside the output folder). `frames` is the opened source; only an image folder's `files`
    are looked at.
    """
    files = getattr(frames, "files", [])  # image folders only; a video's frames are cached
    if not files or output.resolve() != files[0].parent.resolve():
        return
    taken = {p.name for p in files}
    clash = next((f"{name}.png" for name in frames.names if f"{name}.png" in taken), None)
    if clash:
        why = f"saving masks there would overwrite the frames ({clash}...)"
    else:
        why = "masks saved there would be mixed with the frames and read as frames next time"
    raise ValueError(f"{output}: is the frames folder; {why}; give --output another folder")


def open_project(opts: StartupOptions, device: torch.device) -> tuple[Project, bool]:
    """Everything the GUI needs, with the output folder's project reopened; (project, has S2M).

    Errors name the file at fault; the output folder and the masks are checked before the
    networks load.
    """
    has_s2m = check_weights(opts)
    video, images = input_source(opts)
    output = Path(opts.output) if opts.output else default_output(video, images)
    prepare_output(output)
    frames = open_frames(video, images, opts.resolution, cache_dir=output / ".frames")
    check_frames_not_overwritten(output, frames)
    if hasattr(frames, "decode_in_background"):
        frames.decode_in_background()  # long videos: the rest decodes while the person works
    existing = scan_output(output, frames)
    # --masks imports mask files as annotations; the output folder's own masks resume.
    mask_dir = Path(opts.masks) if opts.masks else None
    same = mask_dir is not None and mask_dir.resolve() == output.resolve()
    imports = mask_files(mask_dir, frames) if mask_dir is not None and not same else {}
    hint = project_object_ids(mask_dir, frames) if imports else []
    object_ids = resolve_object_ids(opts.num_objects, existing, imports, hint)
    num_objects = len(object_ids)
    precision = choose_precision(device, opts.fast)
    log.info("precision: %s", precision.describe())
    nets = Networks(
        prop=load_prop_net(opts.prop_model, device, opts.fast),
        fusion=load_fusion_net(opts.fusion_model, device, opts.fast),
        s2m=load_s2m(opts.s2m_model, device, opts.fast) if has_s2m else None,
        device=device,
        precision=precision,
    )
    cfg = InferenceConfig(mem_freq=opts.mem_freq, fast=opts.fast)
    # Long videos' results spill to a memory map beside the masks, not to a small /tmp.
    session = Session(nets, frames, num_objects, cfg, storage_dir=output / ".results")
    clicker, _ = _click_controller(opts, device)  # a problem is logged: the console shows it
    editor = FrameEditor(num_objects, frames.size, session.pad, nets.s2m, clicker=clicker)
    project = Project(
        session, editor, objects_for_ids(object_ids), output=output,
        log_file=JsonlLog(output / LOG_FILE), full_masks=opts.full_masks,
    )  # fmt: skip
    project.source_path = str(Path(video or images).resolve())
    project.storage_dir = output / ".results"
    if opts.fps is not None:
        project.fps = opts.fps  # else the source's own rate (Project.__init__)
    project.attach_writer(on_error=project.write_failed)
    with inference_context(device, precision.autocast):
        restore(project, existing)
        imported = project.import_masks(imports)
    project.save_state()
    log.info(
        "output folder: %s (%d annotated frames, %d masks imported)",
        output, len(project.provenance.frames_of("annotated", "imported")), len(imported),
    )  # fmt: skip
    return project, has_s2m
