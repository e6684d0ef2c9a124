"""Where the items run: in this process (local) or on Ray actors (a machine or a cluster).

Both engines take the items to do and call on_result(result) once per item, in the order
items finish, with ItemWorker.run's result dict. A failing item never stops the others.

Ray, not a home-made pool: it already schedules actors on GPUs and cores across machines,
restarts a crashed worker process and retries its call, and ships results back; the same
code runs on one machine (a local cluster started on demand) and on a cluster (`ray start
--head` / `--address`). Ray is optional (requirements-batch.txt): it is imported only here,
only by the Ray engine.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workflow.batch.manifest import Item
from workflow.batch.worker import ItemWorker, Runner, RunSettings

log = logging.getLogger(__name__)

OnResult = Callable[[dict[str, Any]], None]
REPO = Path(__file__).resolve().parents[2]
# CPU cores per worker when neither --workers nor --cpus_per_worker says: a compromise between
# throughput (several small workers beat one wide one: convolution threads scale sublinearly)
# and memory (each worker holds the networks, ~1.1 GiB, plus one video's features).
DEFAULT_CPUS_PER_WORKER = 4
INSTALL_RAY = (
    "the Ray engine needs Ray: python -m pip install -r requirements-batch.txt "
    "(or run without Ray: --engine local)"
)


class EngineError(RuntimeError):
    """The engine could not start (Ray missing, no worker could load the networks); no item
    ran. The message says why and what to do."""


def run_local(
    items: list[Item],
    settings: RunSettings,
    on_result: OnResult,
    runner: Runner | None = None,
    threads: int | None = None,
) -> None:
    """Every item in this process, one after another, with the networks loaded once.

    threads: torch's intra-op threads for the run (None: torch's default, as
    `python -m inference_core`); the caller's setting is back when it returns or raises.
    A checkpoint that cannot be loaded raises (CheckpointError) before any item; an item's
    failure is its result. A crash of this process (a segfault, the OOM killer) ends the
    run; the completion records make the next run pick up where it stopped.
    """
    callers_threads = torch.get_num_threads()
    try:
        worker = ItemWorker(settings, threads).start()
        for item in items:
            on_result(worker.run(item, runner))
    finally:
        torch.set_num_threads(callers_threads)


def import_ray():
    """The ray module, or EngineError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise EngineError(INSTALL_RAY) from None
    return ray


@dataclass(frozen=True)
class Placement:
    """How many actors and what each reserves."""

    workers: int
    cpus: int  # Ray CPUs per actor = torch threads in it
    gpus: int  # 0 or 1 GPU per actor


def plan_workers(
    cluster: dict[str, float],
    device: str,
    workers: int | None,
    cpus_per_worker: int | None,
    items: int,
) -> Placement:
    """Actors for a cluster's resources ({"CPU": n, "GPU": m} as ray.cluster_resources()).

    With GPUs (and --device auto or cuda): one actor per GPU (or --workers), each with 1 GPU
    and --cpus_per_worker cores (default 1: the GPU does the work). Without: --workers
    actors sharing the cores (cores // workers each), or as many actors of
    --cpus_per_worker cores (default min(4, cores)) as fit. Never more actors than items.
    EngineError for --device cuda on a cluster without GPUs.
    """
    cpus = max(1, int(cluster.get("CPU", 1)))
    gpus = int(cluster.get("GPU", 0)) if device == "auto" or device.startswith("cuda") else 0
    if device.startswith("cuda") and gpus == 0:
        raise EngineError(f"--device {device}, but the Ray cluster has no GPU")
    if gpus:
        n = workers or gpus
        per = cpus_per_worker or 1
        return Placement(max(1, min(n, items)), per, 1)
    if workers:
        per = cpus_per_worker or max(1, cpus // workers)
    else:
        per = cpus_per_worker or min(DEFAULT_CPUS_PER_WORKER, cpus)
        workers = max(1, cpus // per)
    return Placement(max(1, min(workers, items)), per, 0)


def _pythonpath() -> str:
    """This repository first on the workers' import path, whatever the driver's folder.

    Ray also adds the driver script's folder, which is the repository for batch_propagate.py;
    this covers drivers started elsewhere (tests, notebooks). On a cluster the repository
    must be at the same path on every node, as Ray assumes for the driver's folder.
    """
    rest = os.environ.get("PYTHONPATH")
    return f"{REPO}{os.pathsep}{rest}" if rest else str(REPO)


def run_ray(
    items: list[Item],
    settings: RunSettings,
    on_result: OnResult,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: int | None = None,
    runner: Runner | None = None,
) -> Placement:
    """Every item on Ray actors; returns the placement used.

    Connects to `address` (a cluster started with `ray start --head`; "auto" finds one on
    this machine), uses the Ray already initialised in this process if any, or starts a
    local cluster for the run (shut down at the end). Each actor (ItemWorker) loads the
    networks once and gets one item at a time, the next as soon as it finishes (long and
    short videos balance themselves); a video is never split. A worker process that dies
    mid-item is restarted by Ray (the networks loaded again) and the item retried once
    (max_task_retries=1); dying again fails that item only, and the restarted actor goes on
    with the next. EngineError when Ray is missing or the networks load nowhere.
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        ray.init(
            address=address, include_dashboard=False, logging_level=logging.WARNING,
            runtime_env={"env_vars": {"PYTHONPATH": _pythonpath()}},
        )  # fmt: skip
        started = True
    actors: list[Any] = []
    try:
        placement = plan_workers(
            ray.cluster_resources(), settings.device, workers, cpus_per_worker, len(items)
        )
        remote = ray.remote(ItemWorker).options(
            num_cpus=placement.cpus,
            num_gpus=placement.gpus,
            # Restart a dead worker process however often (each crashing item is retried once
            # and then failed, so this never loops), so one bad video cannot take a worker
            # out of the run.
            max_restarts=-1,
            max_task_retries=1,
            runtime_env={"env_vars": {"PYTHONPATH": _pythonpath()}},
        )
        actors = [remote.remote(settings, placement.cpus) for _ in range(placement.workers)]
        log.info(
            "Ray: %d worker(s), %d CPU(s)%s each", placement.workers, placement.cpus,
            " + 1 GPU" if placement.gpus else "",
        )  # fmt: skip
        _schedule(ray, actors, deque(items), on_result, runner)
        return placement
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()


def _schedule(ray, actors: list[Any], queue: deque[Item], on_result: OnResult, runner) -> None:
    """One item in flight per actor; an actor gets its first item once its networks loaded.

    Waiting on readiness per actor (not all at once) lets a cluster that cannot place every
    actor yet start with those it can.
    """
    starting = {actor.ready.remote(): actor for actor in actors}
    running: dict[Any, tuple[Any, Item, float]] = {}

    def give(actor) -> None:
        if queue:
            item = queue.popleft()
            running[actor.run.remote(item, runner)] = (actor, item, time.perf_counter())

    while queue or running:
        pending = [*running, *starting]
        if not pending:  # every actor failed to start (reported below); nothing can run
            break
        (ref,), _ = ray.wait(pending, num_returns=1)
        if ref in starting:
            actor = starting.pop(ref)
            try:
                error = ray.get(ref)
            except ray.exceptions.RayError as exc:
                error = f"the worker did not start: {exc}"
            if error is not None:
                raise EngineError(f"a worker could not load the networks: {error}")
            give(actor)
            continue
        actor, item, t0 = running.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as exc:
            # The worker process died twice on this item (Ray retried it once): a crash in
            # native code, the OOM killer, a lost node. Its outputs may be partial; there is
            # no completion record, so the next run redoes it.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            result = {
                "item": item.line, "source": item.source, "output": item.output,
                "status": "failed", "frames": None,
                "seconds": round(time.perf_counter() - t0, 3),
                "error": f"the worker process died twice on this item (Ray retried it "
                f"once): {type(exc).__name__}: {first}",
                "worker": None, "net_loads": None,
            }  # fmt: skip
        on_result(result)
        give(actor)
