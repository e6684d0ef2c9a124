"""torch.distributed set-up for torchrun launches; a plain single process otherwise."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.distributed as dist

from util.device import pick_device


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job (rank 0, world 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_preference: str) -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group if launched by torchrun (nccl on CUDA, gloo on CPU)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistInfo(), pick_device(device_preference)
    info = DistInfo(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    )
    device = pick_device(device_preference)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def teardown() -> None:
    """Leave the process group, if any."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op single-process)."""
    if dist.is_initialized():
        dist.barrier()


def seed_everything(seed: int, rank: int) -> None:
    """Same torch seed everywhere (DDP broadcasts rank 0's weights anyway); numpy per rank."""
    torch.manual_seed(seed)
    random.seed(seed)
    # Augmentation in the main process (num_workers=0) must differ between ranks.
    np.random.seed((seed + 100 * rank) % 2**31)


def _seed_worker(rank: int, worker_id: int) -> None:
    np.random.seed((torch.initial_seed() % 2**31 + worker_id + 100 * rank) % 2**31)


def worker_init(rank: int):
    """DataLoader worker_init_fn: numpy seed = (initial_seed mod 2^31) + worker_id + 100*rank."""
    return partial(_seed_worker, rank)
