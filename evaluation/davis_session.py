"""The DAVIS interactive benchmark loop: davisinteractive's robot against our inference core.

Follows shared/spec/evaluation_and_training.md section 1. Per sample (a sequence with one of its
initial scribble files) a fresh Session is built; each scribble the library hands over goes
through S2M (the DAVIS variant, inference.md 10.2) on the frame it was drawn on. Interactions 2,
5 and 7 then propagate and fuse; the others only update that frame and ask the robot for the
next scribble on the same frame. Everything runs in fp32, without autocast.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from evaluation import davis_compat
from evaluation.dataset import DavisFolder, SequenceInfo, registered
from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames, FrameSource, ImageFolderFrames
from inference_core.session import Session
from interact.frame_editor import FrameEditor
from interact.s2m_controller import scribble_logits
from model.aggregate import aggregate_wbg
from model.build import Networks
from util.device import inference_context
from util.mask_io import write_index_mask
from workflow.project import Project

log = logging.getLogger(__name__)

# Interaction numbers (0-based, per sample) that propagate and fuse; the rest update one frame.
PROPAGATE_AT = (2, 5, 7)
SCRIBBLE_IGNORE = -1  # scribbles2mask's value where nothing was drawn
# The original's rules throughout (re-interactions appended), so scores compare with the paper.
EVAL_CONFIG = InferenceConfig(mem_freq=5, top_k=20, prob_dtype="float32", reinteraction="append")


def scribbled_frame(scribbles: dict) -> int | None:
    """The first frame holding a stroke, or None for an empty scribble."""
    return next((t for t, strokes in enumerate(scribbles["scribbles"]) if strokes), None)


class DavisProcessor:
    """One sample's adapter: library scribbles in, (T, h0, w0) uint8 masks and candidates out."""

    def __init__(
        self,
        nets: Networks,
        frames: FrameSource,
        num_objects: int,
        cfg: InferenceConfig = EVAL_CONFIG,
    ) -> None:
        if nets.s2m is None:
            raise ValueError("the DAVIS evaluation needs the S2M network")
        davis_compat.apply()  # scribbles are rasterised with the package's own function
        self.nets = nets
        session = Session(nets, frames, num_objects, cfg)
        # The workflow's project runs each round; S2M previews are its unpropagated edits.
        self.project = Project(session, FrameEditor(num_objects, frames.size, session.pad))
        self.session = session
        self.interactions = 0
        self._schedule = list(PROPAGATE_AT)
        self._last_frame: int | None = None
        self._pending: int | None = None  # frame updated since the last propagation

    def masks(self) -> np.ndarray:
        """(T, h0, w0) uint8 index masks of every frame, unpadded."""
        return np.stack([self.project.mask(t) for t in range(self.session.num_frames)])

    def interact(self, scribbles: dict) -> tuple[np.ndarray, list[int] | None]:
        """Apply the newest scribble; returns (masks, next frame candidates or None = any)."""
        count = self.interactions
        self.interactions += 1
        propagate = bool(self._schedule) and count == self._schedule[0]
        if propagate:
            self._schedule.pop(0)
        t = scribbled_frame(scribbles)
        if t is None:
            return self._empty_scribble(propagate)
        prob = self._scribble_prob(scribbles, t)
        self._last_frame = t
        if propagate:
            self._propagate(t, prob)
            return self.masks(), None
        self.project.set_annotation(t, prob.numpy(), "scribble")
        self._pending = t
        return self.masks(), [t]

    def _empty_scribble(self, propagate: bool) -> tuple[np.ndarray, list[int] | None]:
        # The robot draws nothing where the frame it chose is already right. Keep the schedule:
        # an update step changes nothing and stays on that frame; a propagation step still
        # propagates the frame refined since the last propagation, as it would have.
        t = self._last_frame
        if t is None:
            return self.masks(), None
        if not propagate:
            return self.masks(), [t]
        if self._pending is not None:
            self._propagate(self._pending, self._hard_prob(self._pending))
        return self.masks(), None

    def _propagate(self, t: int, prob: torch.Tensor) -> None:
        self.project.set_annotation(t, prob.numpy(), "scribble")
        self.project.round(t)
        self._pending = None

    def _hard_prob(self, t: int) -> torch.Tensor:
        """One-hot (K+1, 1, H, W) of frame t's current padded index mask."""
        ids = torch.from_numpy(self.project.padded_mask(t).astype(np.int64))
        onehot = torch.nn.functional.one_hot(ids, self.session.num_objects + 1)
        return onehot.permute(2, 0, 1).unsqueeze(1).float()

    def _scribble_prob(self, scribbles: dict, t: int) -> torch.Tensor:
        """S2M on frame t's strokes (DAVIS variant); (K+1, 1, H, W) hard-aggregated."""
        from davisinteractive.utils.scribbles import scribbles2mask

        height, width = self.session.padded_size
        # Rasterised at the padded size, as the original does (inference.md 10.2): x is scaled
        # by W_pad - 1, so strokes sit up to a few pixels off on frames that needed padding.
        only_t = {"sequence": scribbles["sequence"], "scribbles": [scribbles["scribbles"][t]]}
        labels = scribbles2mask(only_t, (height, width), default_value=SCRIBBLE_IGNORE)[0]
        prev = torch.from_numpy(self.project.padded_mask(t))
        with inference_context(self.session.device, self.session.nets.precision.autocast):
            logits = scribble_logits(
                self.nets.s2m,
                self.session.image(t),
                prev,
                labels,
                self.session.num_objects,
                dilate=True,
                ignore=SCRIBBLE_IGNORE,
            )
            return aggregate_wbg(torch.sigmoid(logits), keep_bg=True, hard=True).cpu()


@dataclass(frozen=True)
class EvalOptions:
    """Session settings; max_time per object is max_interactions x time_per_object seconds."""

    output: Path
    subset: str = "val"
    max_interactions: int = 8
    time_per_object: float = 30.0
    save_mask: bool = False


@dataclass(frozen=True)
class EvalResult:
    """Where the library's report went, and its global summary."""

    report_csv: Path
    summary_json: Path
    summary: dict

    @property
    def auc(self) -> float:
        return float(self.summary["auc"])

    @property
    def jf_at_60s(self) -> float:
        return float(self.summary["metric_at_threshold"]["J_AND_F"])


class _FrameCache:
    """The current sequence's frames, decoded whole before the library starts its clock."""

    def __init__(self, folder: DavisFolder) -> None:
        self._folder = folder
        self._name: str | None = None
        self._frames: ArrayFrames | None = None

    def get(self, name: str) -> ArrayFrames:
        if name != self._name:
            source = ImageFolderFrames(self._folder.images(name), resolution=None, cache_size=1)
            self._frames = ArrayFrames(np.stack([source.get(t) for t in range(len(source))]))
            self._name = name
        return self._frames


class _MaskSaver:
    """Writes submitted masks on a background thread, outside the library's timed window."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="davis-save")
        self._futures: list[Future] = []

    def submit(self, sequence: str, scribble_idx: int, interaction: int, masks: np.ndarray) -> None:
        folder = self._root / sequence / f"{scribble_idx:03d}" / f"{interaction:02d}"
        self._futures.append(self._pool.submit(self._write, folder, masks.copy()))

    @staticmethod
    def _write(folder: Path, masks: np.ndarray) -> None:
        for t, mask in enumerate(masks):
            write_index_mask(folder / f"{t:05d}.png", mask)

    def close(self) -> None:
        """Wait for every write; re-raises the first failure."""
        self._pool.shutdown(wait=True)
        for future in self._futures:
            future.result()


def _session_loop(
    sess: Any,  # a davisinteractive DavisInteractiveSession (imported lazily)
    nets: Networks,
    folder: DavisFolder,
    infos: Sequence[SequenceInfo],
    saver: _MaskSaver | None,
    bar: tqdm,
) -> None:
    """Drive the library's loop until it reports the end of the last sample."""
    objects = {info.name: info.num_objects for info in infos}
    frames = _FrameCache(folder)
    processor: DavisProcessor | None = None
    while sess.next():
        bar.update(sess.sample_idx - bar.n)
        sequence, scribble_idx = sess.samples[sess.sample_idx]
        source = frames.get(sequence)  # decoded before get_scribbles starts the clock
        sequence, scribbles, new_sample = sess.get_scribbles(only_last=True)
        if new_sample or processor is None:
            processor = DavisProcessor(nets, source, objects[sequence])
        masks, candidates = processor.interact(scribbles)
        sess.submit_masks(masks, candidates)
        if saver is not None:
            saver.submit(sequence, scribble_idx, processor.interactions, masks)
    bar.update(bar.total - bar.n)


def run_interactive_evaluation(
    nets: Networks,
    folder: DavisFolder,
    infos: Sequence[SequenceInfo],
    options: EvalOptions,
    progress: Callable[..., tqdm] = tqdm,
) -> EvalResult:
    """Run every sample of `infos` through the official session; write report and summary.

    Masks go to output/masks/<sequence>/<scribble>/<interaction>/<t>.png with save_mask.
    """
    davis_compat.apply()
    from davisinteractive.session import DavisInteractiveSession

    output = Path(options.output)
    output.mkdir(parents=True, exist_ok=True)
    saver = _MaskSaver(output / "masks") if options.save_mask else None
    with registered(infos, options.subset):
        with DavisInteractiveSession(
            davis_root=str(folder.root),
            subset=options.subset,
            shuffle=False,
            max_time=options.max_interactions * options.time_per_object,
            max_nb_interactions=options.max_interactions,
            metric_to_optimize="J_AND_F",
            report_save_dir=str(output),
        ) as sess:
            with progress(total=len(sess.samples), unit="sample", desc="samples") as bar:
                try:
                    _session_loop(sess, nets, folder, infos, saver, bar)
                finally:
                    if saver is not None:
                        saver.close()
            summary_json = output / "summary.json"
            summary = sess.get_global_summary(save_file=str(summary_json))
            report_csv = output / f"{sess.report_name}.csv"
    # Rewrite with plain floats and indentation: the library dumps numpy scalars on one line.
    summary = json.loads(json.dumps(summary, default=float))
    summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    return EvalResult(report_csv, summary_json, summary)
