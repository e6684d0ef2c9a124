"""A batch worker: loads the networks once, then runs items one after another.

The same class runs in the driver's process (the local engine) and as a Ray actor (the Ray
engine, one process per GPU or per N CPU cores). Each item goes through
workflow.headless.propagate_item with a command line built as `python -m inference_core`
would parse it, so an item's outputs are the headless command's, byte for byte.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from model.build import Networks
from util.device import pick_device
from workflow.batch.manifest import Item
from workflow.batch.records import (
    clear_outputs,
    done_record,
    fingerprint,
    holds_persons_work,
    read_record,
    running_record,
    write_record,
)
from workflow.headless import (
    BarFactory,
    OpenedItem,
    build_parser,
    export_targets,
    load_item_networks,
    open_item,
    propagate_item,
)
from workflow.open_project import prepare_output

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """The run-wide options every item gets (an item's own start/end/num_objects/resolution
    override theirs). Picklable: sent to every worker."""

    prop_model: str
    fusion_model: str
    device: str = "auto"  # auto | cuda | mps | cpu (on Ray: the device inside each actor)
    resolution: int = 480
    mem_freq: int = 5
    top_k: int = 20
    no_amp: bool = False
    full_masks: bool = False
    fps: float | None = None
    # (kind, path relative to the item's output folder, or None for the default place)
    exports: tuple[tuple[str, str | None], ...] = ()
    # Further headless flags passed through as typed (e.g. ("--fast",)).
    extra: tuple[str, ...] = field(default_factory=tuple)


def item_argv(item: Item, settings: RunSettings) -> list[str]:
    """The `python -m inference_core` arguments of one item ("--flag=value", so a path that
    starts with '-' is not read as an option)."""
    argv = [
        f"--video={item.video}" if item.video else f"--images={item.images}",
        f"--masks={item.masks}",
        f"--output={item.output}",
        f"--start={item.start}",
        f"--resolution={item.resolution if item.resolution is not None else settings.resolution}",
        f"--mem_freq={settings.mem_freq}",
        f"--top_k={settings.top_k}",
        f"--device={settings.device}",
        f"--prop_model={settings.prop_model}",
        f"--fusion_model={settings.fusion_model}",
    ]
    if item.end is not None:
        argv.append(f"--end={item.end}")
    if item.num_objects is not None:
        argv.append(f"--num_objects={item.num_objects}")
    if settings.no_amp:
        argv.append("--no_amp")
    if settings.full_masks:
        argv.append("--full_masks")
    if settings.fps is not None:
        argv.append(f"--fps={settings.fps!r}")
    for kind, path in settings.exports:
        # A batch export path is inside each item's output folder (items never share a file).
        argv.append(f"--export={kind}={Path(item.output) / path}" if path else f"--export={kind}")
    argv.extend(settings.extra)
    return argv


def item_args(item: Item, settings: RunSettings) -> argparse.Namespace:
    """The item's command line parsed by the headless command's own parser (so its defaults,
    and any option added to it later, are the command's). ValueError if it refuses it."""
    argv = item_argv(item, settings)
    try:
        return build_parser().parse_args(argv)
    except SystemExit:  # argparse has printed why; the item fails, the worker lives on
        raise ValueError(f"the headless command refuses {' '.join(argv)}") from None


class _Count:
    """A silent stand-in for a tqdm bar (update(n), n): workers show no per-frame bars."""

    def __init__(self, desc: str, total: int) -> None:
        self.desc, self.total, self.n = desc, total, 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def __enter__(self) -> _Count:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


# runner(opened item, nets, args, bar) -> frames written: headless.propagate_item unless a
# caller substitutes its own (tests wrap it to crash a worker mid-item).
Runner = Callable[[OpenedItem, Networks, argparse.Namespace, BarFactory], int]

# The errors an item's inputs can cause and their messages explain; anything else is a bug or
# an environment problem, logged with its traceback in the worker's log too.
EXPECTED = (ValueError, OSError)


def describe(exc: BaseException) -> str:
    """'FrameReadError: clip.mp4: cannot decode ...' (one line)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ItemWorker:
    """Loads the propagation and fusion networks once (in __init__, so a Ray actor restarted
    after a crash loads them again) and runs items one after another.

    threads: torch's intra-op threads (the CPU cores this worker owns; None = torch's default).
    A loading error (a missing or bad checkpoint) is kept, not raised, so a Ray actor stays
    up to report it: ready() returns it, the local engine raises it (start()).
    """

    # Network loads in this process: 1 per worker process however many items it runs.
    net_loads = 0

    def __init__(self, settings: RunSettings, threads: int | None = None) -> None:
        self.settings = settings
        self.error: Exception | None = None
        self.nets: Networks | None = None
        if threads:
            torch.set_num_threads(threads)
        try:
            device = pick_device(settings.device)
            self.nets = load_item_networks(
                argparse.Namespace(
                    prop_model=settings.prop_model, fusion_model=settings.fusion_model
                ),
                device,
            )
        except Exception as exc:  # reported by ready(); every item would fail the same way
            self.error = exc
            return
        ItemWorker.net_loads += 1

    def ready(self) -> str | None:
        """None when the networks loaded, else why not (one line). Ray: also waits for it."""
        return describe(self.error) if self.error is not None else None

    def start(self) -> ItemWorker:
        """Raise the loading error, if any (the local engine: exit 2 before any item)."""
        if self.error is not None:
            raise self.error
        return self

    def run(self, item: Item, runner: Runner | None = None) -> dict[str, Any]:
        """Run one item; never raises for the item's own failures.

        Returns the item's result: {"item": manifest line, "source", "output", "status":
        "done" | "failed", "frames": masks written (None when failed), "seconds": wall time,
        "error": one line or None, "worker": "host:pid", "net_loads": network loads in
        this process so far}. The item's folder gets a "running" record first (what an
        earlier batch run left there is cleared, unless it holds a person's work: see
        records.py); on success every mask, export and then the completion record are
        written. A failed item keeps its "running" record, so the next run redoes it.
        """
        t0 = time.perf_counter()
        result: dict[str, Any] = {
            "item": item.line, "source": item.source, "output": item.output,
            "status": "failed", "frames": None, "seconds": None, "error": None,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "net_loads": ItemWorker.net_loads,
        }  # fmt: skip
        try:
            if self.nets is None:
                raise RuntimeError(f"the networks did not load: {self.ready()}")
            args = item_args(item, self.settings)
            out_dir = Path(args.output)
            exports = [str(t.relative_to(out_dir)) for _, t in export_targets(args, out_dir)]
            # Fingerprinted before the inputs are read: a file changed while the item runs
            # gives a record that no longer matches, so the next run redoes the item.
            digest, settings = fingerprint(args)
            prepare_output(out_dir)  # the headless command's own check and message
            earlier = read_record(out_dir)
            if earlier is not None and not holds_persons_work(out_dir):
                # Before open_item, which reads the folder: a stale project file or stale
                # masks would otherwise count as annotations or object ids.
                clear_outputs(out_dir, earlier, exports)
            write_record(out_dir, running_record(digest, item.line, [], exports))
            opened = open_item(args)
            try:
                masks = [f"{name}.png" for name in opened.frames.names]
                write_record(out_dir, running_record(digest, item.line, masks, exports))
                frames = (runner or propagate_item)(opened, self.nets, args, _Count)
            finally:
                opened.close()
            seconds = time.perf_counter() - t0
            record = done_record(
                digest, item.line, settings, frames, masks, exports, seconds,
                str(self.nets.device),
            )  # fmt: skip
            write_record(out_dir, record)
            result.update(status="done", frames=frames)
        except Exception as exc:
            result["error"] = describe(exc)
            if not isinstance(exc, EXPECTED):
                log.exception("%s failed", item.name)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # an out-of-memory item must not starve the next one
        result["seconds"] = round(time.perf_counter() - t0, 3)
        return result
