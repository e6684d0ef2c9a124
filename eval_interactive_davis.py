"""DAVIS-2017 interactive benchmark with the official davisinteractive robot (AUC-J&F, J&F@60s).

    python eval_interactive_davis.py --davis DIR --output DIR [--save_mask] [--subset val]
        [--max_interactions 8] [--time_per_object 30] [--device auto]
        [--prop_model stcn.pth] [--fusion_model fusion_stcn.pth]
        [--s2m_model s2m.pth]

--davis holds JPEGImages/480p, Annotations/480p, Scribbles and ImageSets (or holds trainval/
with them). Writes the library's report CSV and summary.json into --output. Needs the
evaluation extra (see requirements-eval.txt).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from evaluation.dataset import SUBSETS, DavisFolder, DavisLayoutError, describe_sequence
from inference_core.frames import FrameReadError
from model.build import load_networks
from model.checkpoint import CheckpointError
from model.weights import find_weight
from util.cli import run_command
from util.device import pick_device
from util.mask_io import MaskReadError

log = logging.getLogger("eval_interactive_davis")

INSTALL_HINT = (
    "pip install -r requirements-eval.txt && "
    "pip install --no-build-isolation --no-deps davisinteractive==1.0.4"
)
MAX_INTERACTIONS = 16  # the library's own ceiling


class LibraryMissing(RuntimeError):
    """davisinteractive (or one of its dependencies) cannot be imported."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python eval_interactive_davis.py",
        description="DAVIS interactive evaluation (official robot and metrics).",
    )
    p.add_argument("--davis", default="../DAVIS/2017", help="DAVIS folder (or its parent)")
    p.add_argument("--output", required=True, help="folder for the report CSV and summary.json")
    p.add_argument("--save_mask", action="store_true", help="save every submitted mask too")
    p.add_argument("--subset", default="val", choices=SUBSETS)
    p.add_argument("--max_interactions", type=int, default=8, help="per sample (1..16)")
    p.add_argument("--time_per_object", type=float, default=30.0,
                   help="seconds per interaction and object; a sample may take "
                        "max_interactions x this x its objects")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cuda | mps | cpu")
    p.add_argument("--prop_model", default=str(find_weight("stcn.pth")))
    p.add_argument("--fusion_model", default=str(find_weight("fusion_stcn.pth")))
    p.add_argument("--s2m_model", default=str(find_weight("s2m.pth")))
    return p


def _check_args(args: argparse.Namespace) -> None:
    if not 1 <= args.max_interactions <= MAX_INTERACTIONS:
        raise ValueError(f"--max_interactions must be in 1..{MAX_INTERACTIONS}")
    if args.time_per_object <= 0:
        raise ValueError("--time_per_object must be positive")


def _import_library() -> None:
    """Patch and import davisinteractive, quieting its per-interaction INFO lines."""
    from evaluation import davis_compat

    try:
        davis_compat.apply()
        from davisinteractive import logging as davis_logging
    except ImportError as exc:
        raise LibraryMissing(f"davisinteractive is not installed ({exc}); {INSTALL_HINT}") from exc
    davis_logging.set_verbosity(davis_logging.WARNING)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    _import_library()
    from evaluation.davis_session import EvalOptions, run_interactive_evaluation

    folder = DavisFolder.locate(args.davis)
    infos = [describe_sequence(folder, name) for name in folder.list_sequences(args.subset)]
    device = pick_device(args.device)
    nets = load_networks(args.prop_model, args.fusion_model, args.s2m_model, device)
    options = EvalOptions(
        output=Path(args.output),
        subset=args.subset,
        max_interactions=args.max_interactions,
        time_per_object=args.time_per_object,
        save_mask=args.save_mask,
    )
    log.info("%d sequences of %s on %s", len(infos), folder.root, device)
    result = run_interactive_evaluation(nets, folder, infos, options)
    print(f"AUC-J&F: {100 * result.auc:.1f}")
    print(f"J&F@60s: {100 * result.jf_at_60s:.1f}")
    print(f"report: {result.report_csv}\nsummary: {result.summary_json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(
        lambda: run(args),
        (
            DavisLayoutError,
            CheckpointError,
            MaskReadError,
            FrameReadError,
            LibraryMissing,
            ValueError,
            OSError,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
