"""The training loop shared by every stage: DDP, AMP, schedule, logging, checkpoints, resume.

Files in --output (run name = the stage unless --name):
* <name>_<it>.pth: the official format, a bare state dict of the inference network;
* <name>_checkpoint.pth: {iteration, network, optimizer, scheduler, scaler} for --resume;
* fingerprint_rank<r>.txt: sha256 of the final weights, per rank (to check DDP agreement).
"""

from __future__ import annotations

import hashlib
import logging
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from training import distributed
from training.config import LR_GAMMA, WEIGHT_DECAY, TrainConfig
from training.datasets import max_skip_at
from training.stages import StageParts, build_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a run did: iterations start (exclusive) and end, last loss, official weights file."""

    start_iteration: int
    end_iteration: int
    last_loss: float
    weights: Path | None


class MetricLogger:
    """TensorBoard when installed, plain log lines otherwise; rank 0 only."""

    def __init__(self, folder: Path, enabled: bool) -> None:
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("tensorboard not installed: logging to the console only")
            else:
                self.writer = SummaryWriter(str(folder / "logs"))
        self.enabled = enabled

    def scalars(self, it: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        log.info("it %d: %s", it, ", ".join(f"{k}={v:.5g}" for k, v in values.items()))
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, it)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def fingerprint(net: nn.Module) -> str:
    """sha256 over every tensor of the state dict, in key order."""
    digest = hashlib.sha256()
    for key, value in net.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_official(net: nn.Module, path: Path) -> Path:
    """Bare state dict with exactly the inference network's keys (no `module.` prefix)."""
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, path)
    return path


def _loader(cfg: TrainConfig, parts: StageParts, info: distributed.DistInfo, device) -> DataLoader:
    if info.enabled:
        sampler = DistributedSampler(parts.dataset, info.world_size, info.rank, seed=cfg.seed)
    else:
        sampler = RandomSampler(parts.dataset)
    loader = DataLoader(
        parts.dataset,
        cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.num_workers,
        worker_init_fn=distributed.worker_init(info.rank),
        drop_last=True,
        pin_memory=device.type == "cuda",
    )
    if len(loader) == 0:
        raise ValueError(
            f"{len(parts.dataset)} samples over {info.world_size} process(es) is less than one "
            f"batch of {cfg.batch_size}"
        )
    return loader


def _resume(path: str, net, opt, sched, scaler, device) -> int:
    state = torch.load(path, map_location=device, weights_only=True)
    net.load_state_dict(state["network"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    log.info("resumed from %s at iteration %d", path, state["iteration"])
    return int(state["iteration"])


def _save(cfg: TrainConfig, it: int, net, opt, sched, scaler) -> Path:
    out = Path(cfg.output)
    state = {
        "iteration": it,
        "network": net.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict(),
    }
    torch.save(state, out / f"{cfg.run_name}_checkpoint.pth")
    return save_official(net, out / f"{cfg.run_name}_{it}.pth")


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train(cfg: TrainConfig) -> TrainResult:
    """Run one stage to cfg.iterations (continuing a --resume checkpoint)."""
    info, device = distributed.setup(cfg.device)
    try:
        return _train(cfg, info, device)
    finally:
        distributed.teardown()


def _train(cfg: TrainConfig, info: distributed.DistInfo, device: torch.device) -> TrainResult:
    distributed.seed_everything(cfg.seed, info.rank)
    Path(cfg.output).mkdir(parents=True, exist_ok=True)
    parts = build_stage(cfg, info, device)
    model = parts.model
    if info.enabled and device.type == "cuda" and parts.train_mode:
        # S2M trains with SyncBN across GPUs; the state-dict keys are the same as BatchNorm's.
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device).train(parts.train_mode)
    net = parts.model.net
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    use_amp = cfg.amp and device.type == "cuda"
    opt = torch.optim.Adam(
        [p for p in net.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=WEIGHT_DECAY
    )
    # The scheduler steps every iteration, so milestones are iteration numbers.
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.lr_steps), LR_GAMMA)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start = _resume(cfg.resume, net, opt, sched, scaler, device) if cfg.resume else 0
    loader = _loader(cfg, parts, info, device)
    metrics = MetricLogger(Path(cfg.output), info.is_main)
    bar = tqdm(total=cfg.iterations, initial=start, disable=not info.is_main, desc=cfg.stage)
    it, epoch, loss_value, weights = start, start // len(loader), float("nan"), None
    while it < cfg.iterations:
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        if hasattr(parts.dataset, "max_skip"):
            # Workers are re-created each epoch, so they see the new curriculum value.
            parts.dataset.max_skip = max_skip_at(it / cfg.iterations, cfg.skip_scale)
        for batch in loader:
            it += 1
            amp = torch.autocast("cuda", dtype=torch.float16) if use_amp else nullcontext()
            with amp:
                loss, _ = parts.step(model, _to(batch, device), it)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            loss_value = float(loss.detach())
            bar.update(1)
            if it % cfg.log_every == 0 or it == cfg.iterations:
                metrics.scalars(it, {"loss": loss_value, "lr": sched.get_last_lr()[0]})
            if info.is_main and (it % cfg.save_every == 0 or it == cfg.iterations):
                weights = _save(cfg, it, net, opt, sched, scaler)
            if it >= cfg.iterations:
                break
        epoch += 1
    bar.close()
    metrics.close()
    out = Path(cfg.output) / f"fingerprint_rank{info.rank}.txt"
    out.write_text(fingerprint(net) + "\n")
    return TrainResult(start, it, loss_value, weights)
