"""`python batch_propagate.py MANIFEST.jsonl`: propagate given masks over many videos.

Reads and checks the whole manifest (a bad line: one message naming it, exit 2, nothing
run), skips the items finished before with the same inputs and settings (and says how
many), runs the others on Ray actors or in this process, shows one bar over the items,
writes one line per item to batch_results.jsonl (beside the manifest, or --report) as they
finish, and ends with a summary naming each failed item and why. Exit status: 0 when no item
failed, 1 when some did, 2 for a run that could not start (bad manifest or flags, Ray
missing, weights that do not load), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from model.checkpoint import CheckpointError
from util.cli import run_command
from workflow import export
from workflow.batch import engines
from workflow.batch.manifest import Item, ManifestError, parse_shard, read_manifest, shard
from workflow.batch.records import fingerprint, is_finished
from workflow.batch.worker import RunSettings, item_args
from workflow.headless import _export_request
from workflow.headless import build_parser as headless_parser

log = logging.getLogger("workflow.batch")

REPORT_NAME = "batch_results.jsonl"


def _shard_arg(text: str) -> tuple[int, int]:
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _passthrough_flags() -> list[argparse.Action]:
    """Headless on/off flags the batch forwards when the headless command has them.

    `--fast` is added to `python -m inference_core` by separate work; forwarding it only when
    the command accepts it keeps the two command lines in step without a dead flag here.
    """
    wanted = {"--fast"}
    return [
        a for a in headless_parser()._actions
        if wanted & set(a.option_strings) and a.nargs == 0
    ]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    headless = headless_parser()
    p = argparse.ArgumentParser(
        prog="python batch_propagate.py",
        description="Propagate given masks through every video of a manifest "
        "(one JSON object per line: video or images, masks, output, optional start, end, "
        "num_objects, resolution; relative paths are relative to the manifest).",
    )
    p.add_argument("manifest", help="the manifest (.jsonl)")
    run = p.add_argument_group("engine")
    run.add_argument(
        "--engine", choices=("auto", "ray", "local"), default="auto",
        help="ray: Ray actors (a local cluster unless --address); local: this process, one "
        "item after another; auto (default): ray when it is installed, else local",
    )  # fmt: skip
    run.add_argument(
        "--address", default=None,
        help="a Ray cluster to join (ray start --head prints it; 'auto' = the one on this "
        "machine); implies --engine ray",
    )  # fmt: skip
    run.add_argument(
        "--workers", type=_positive, default=None,
        help="Ray workers (default: one per GPU; without GPUs, CPUs // --cpus_per_worker)",
    )  # fmt: skip
    run.add_argument(
        "--cpus_per_worker", type=_positive, default=None,
        help=f"CPU cores (= torch threads) per worker (Ray default: CPUs // --workers, else "
        f"{engines.DEFAULT_CPUS_PER_WORKER}; 1 beside a GPU; local default: torch's, as the "
        "headless command). CPU results depend on the thread count in the last bits",
    )  # fmt: skip
    run.add_argument(
        "--shard", type=_shard_arg, default=None, metavar="i/N",
        help="run only items i, i+N, i+2N... of the manifest (0 <= i < N): a static split "
        "for N processes (Slurm tasks, torchrun ranks) on clusters without Ray",
    )  # fmt: skip
    run.add_argument(
        "--report", default=None,
        help=f"results file (default: {REPORT_NAME} beside the manifest; with --shard i/N, "
        "batch_results.i-of-N.jsonl)",
    )  # fmt: skip
    run.add_argument(
        "--force", action="store_true",
        help="redo items already finished with the same inputs and settings",
    )  # fmt: skip
    item = p.add_argument_group("propagation (as python -m inference_core)")
    item.add_argument("--device", default="auto", help="auto | cuda | mps | cpu")
    item.add_argument(
        "--resolution", type=int, default=headless.get_default("resolution"),
        help="working shorter side; -1 = source (an item's \"resolution\" overrides it)",
    )  # fmt: skip
    item.add_argument(
        "--mem_freq", "--mem_every", dest="mem_freq", type=int,
        default=headless.get_default("mem_freq"),
    )  # fmt: skip
    item.add_argument("--top_k", type=int, default=headless.get_default("top_k"))
    item.add_argument("--no_amp", action="store_true", help="no fp16 autocast on CUDA")
    item.add_argument(
        "--full_masks", action="store_true",
        help="every mask file is a full annotation of its frame",
    )  # fmt: skip
    # The command's own defaults, so both find the weights in the same place.
    item.add_argument("--prop_model", default=headless.get_default("prop_model"))
    item.add_argument("--fusion_model", default=headless.get_default("fusion_model"))
    item.add_argument(
        "--export", action="append", type=_export_request, default=[], metavar="KIND[=PATH]",
        help="after each item, export binary | alpha | overlay | coco (repeatable), by the "
        "headless command's code; default place OUTPUT/exports/...; a PATH is relative to "
        "each item's output folder",
    )  # fmt: skip
    item.add_argument(
        "--fps", type=export.parse_fps, default=None,
        help="frame rate of overlay exports (default: the video's own; image folders: 25)",
    )  # fmt: skip
    for action in _passthrough_flags():
        item.add_argument(*action.option_strings, action="store_true", help=action.help)
    return p


def settings_from(args: argparse.Namespace) -> RunSettings:
    """The run-wide settings; ValueError for an export path that items would share."""
    for kind, path in args.export:
        if path is not None and (Path(path).is_absolute() or ".." in Path(path).parts):
            raise ValueError(
                f"--export {kind}={path}: give a path inside each item's output folder, "
                "relative to it (items must not write the same file)"
            )
    extra = tuple(
        a.option_strings[0]
        for a in _passthrough_flags()
        if getattr(args, a.dest, False)
    )  # fmt: skip
    return RunSettings(
        prop_model=str(args.prop_model),
        fusion_model=str(args.fusion_model),
        device=args.device,
        resolution=args.resolution,
        mem_freq=args.mem_freq,
        top_k=args.top_k,
        no_amp=args.no_amp,
        full_masks=args.full_masks,
        fps=args.fps,
        exports=tuple(args.export),
        extra=extra,
    )


def report_path(args: argparse.Namespace) -> Path:
    if args.report:
        return Path(args.report)
    name = REPORT_NAME
    if args.shard is not None:
        # One file per shard: shards may run at once on machines sharing the folder.
        name = f"batch_results.{args.shard[0]}-of-{args.shard[1]}.jsonl"
    return Path(args.manifest).absolute().parent / name


def split_finished(items: list[Item], settings: RunSettings) -> tuple[list[Item], list[Item]]:
    """(to do, finished before with the same fingerprint)."""
    todo, finished = [], []
    for item in items:
        digest, _ = fingerprint(item_args(item, settings))
        (finished if is_finished(item.output, digest) else todo).append(item)
    return todo, finished


def _line(result: dict[str, Any]) -> str:
    keys = (
        "item", "source", "output", "status", "frames", "seconds", "error", "worker", "net_loads",
    )  # fmt: skip
    return json.dumps({k: result.get(k) for k in keys}, ensure_ascii=False)


def _choose_engine(args: argparse.Namespace) -> str:
    if args.address and args.engine == "local":
        raise ValueError("--address is a Ray cluster's; it cannot go with --engine local")
    if args.engine != "auto":
        return args.engine
    if args.address:
        return "ray"
    try:
        engines.import_ray()
    except engines.EngineError:
        log.info("Ray is not installed: running the items in this process (--engine local)")
        return "local"
    return "ray"


def run(args: argparse.Namespace, runner: engines.Runner | None = None) -> int:
    """The whole batch (see the module docstring); returns the exit status.

    runner: what a worker runs per item (default: the headless command's work; tests wrap
    it). Raises ManifestError, ValueError, EngineError, CheckpointError before any item runs.
    """
    items = read_manifest(args.manifest)
    settings = settings_from(args)
    engine = _choose_engine(args)
    for path in (settings.prop_model, settings.fusion_model):
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"{path}: weights not found (download them with: python download_model.py)"
            )
    if args.shard is not None:
        items = shard(items, *args.shard)
    todo, finished = (items, []) if args.force else split_finished(items, settings)
    if finished:
        # Printed, not logged: the user reads it to know what this run does.
        print(
            f"skipping {len(finished)} of {len(items)} item(s): finished before with the same "
            "inputs and settings (--force redoes them)",
            file=sys.stderr,
        )
    report = report_path(args)
    report.parent.mkdir(parents=True, exist_ok=True)
    failed: list[dict[str, Any]] = []
    done = [0, 0]  # items, frames
    with open(report, "w", encoding="utf-8") as out:
        for item in finished:
            out.write(_line({
                "item": item.line, "source": item.source, "output": item.output,
                "status": "skipped",
            }) + "\n")  # fmt: skip
        out.flush()
        if todo:
            bar = tqdm(total=len(todo), unit="item", desc="items", file=sys.stderr)

            def on_result(result: dict[str, Any]) -> None:
                # Written and flushed per item: a killed run leaves what it finished.
                out.write(_line(result) + "\n")
                out.flush()
                if result["status"] == "done":
                    done[0] += 1
                    done[1] += result["frames"] or 0
                else:
                    failed.append(result)
                    bar.write(
                        f"failed: line {result['item']} ({result['source']}): {result['error']}",
                        file=sys.stderr,
                    )
                bar.set_postfix(frames=done[1], failed=len(failed), refresh=False)
                bar.update(1)

            with bar, logging_redirect_tqdm():
                if engine == "ray":
                    engines.run_ray(
                        todo, settings, on_result, args.address, args.workers,
                        args.cpus_per_worker, runner,
                    )  # fmt: skip
                else:
                    engines.run_local(todo, settings, on_result, runner, args.cpus_per_worker)
    _summary(len(items), done[0], len(finished), failed, report)
    return 1 if failed else 0


def _summary(
    total: int, done: int, skipped: int, failed: list[dict[str, Any]], report: Path
) -> None:
    print(
        f"{total} item(s): {done} done, {skipped} skipped (finished before), {len(failed)} failed",
        file=sys.stderr,
    )
    for result in failed:
        print(f"  failed: line {result['item']} ({result['source']}): {result['error']}",
              file=sys.stderr)  # fmt: skip
    print(f"results: {report}", file=sys.stderr)


def main(argv: list[str] | None = None, runner: engines.Runner | None = None) -> int:
    args = build_parser().parse_args(argv)

    def go() -> int:
        # The workflow's per-item info lines (imports, masks written) would bury the bar;
        # warnings still show, and this module's own lines. Restored after: main() may be
        # called from a program that logs at its own level.
        root = logging.getLogger()
        levels = root.level, log.level
        root.setLevel(logging.WARNING)
        log.setLevel(logging.INFO)
        try:
            return run(args, runner)
        finally:
            root.setLevel(levels[0])
            log.setLevel(levels[1])

    return run_command(
        go, (ManifestError, engines.EngineError, CheckpointError, ValueError, OSError)
    )
