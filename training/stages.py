"""Building each stage: its inference network, training wrapper, dataset and step function."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from model.build import FUSION, PROPAGATION, S2M, NetworkSpec, load_network
from model.checkpoint import apply_compatible_rewrites, load_strict, read_state_dict
from training.config import TrainConfig
from training.datasets import StaticClips, VideoClips
from training.distributed import DistInfo, barrier
from training.fusion_data import attention_maps, generate_fusion_data
from training.fusion_dataset import FusionSamples
from training.losses import BootstrappedCE
from training.models import FusionTrainModel, PropagationTrainModel, S2MTrainModel
from training.scribbles import ScribbleSamples

log = logging.getLogger(__name__)
# (wrapped model, batch on device, iteration) -> (loss, prediction)
StepFn = Callable[[nn.Module, dict, int], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class StageParts:
    """Everything the trainer needs for one stage."""

    spec: NetworkSpec
    model: nn.Module  # training wrapper; model.net is the inference network
    dataset: Dataset
    train_mode: bool  # S2M updates BN statistics; STCN and fusion train in eval mode
    step: StepFn


def fresh_network(spec: NetworkSpec, path: str | None) -> nn.Module:
    """The inference network, from `path` (--load_network) or initialised as the spec says."""
    net = spec.factory()
    if path is not None:
        load_strict(net, apply_compatible_rewrites(read_state_dict(path)), path, spec.description)
    elif spec is PROPAGATION:
        # networks.md A.7: key_proj orthogonal with zero bias.
        nn.init.orthogonal_(net.key_proj.key_proj.weight)
        nn.init.zeros_(net.key_proj.key_proj.bias)
    return net


def bootstrapped_ce(cfg: TrainConfig) -> BootstrappedCE:
    if cfg.stage == "fusion" and cfg.bce_start < 0:
        # Fusion: full CE for the first 20 % of the run, top-p annealed until 50 %.
        return BootstrappedCE(int(0.2 * cfg.iterations), int(0.5 * cfg.iterations))
    return BootstrappedCE(cfg.bce_start, cfg.bce_end, s2m_variant=cfg.stage == "s2m")


def _prop_step(model: nn.Module, b: dict, it: int):
    return model(b["rgb"], b["masks"], b["present"], it)


def _s2m_step(model: nn.Module, b: dict, it: int):
    return model(b["rgb"], b["prev"], b["pos"], b["neg"], b["gt"], it)


def _fusion_step(prop: nn.Module) -> StepFn:
    def step(model: nn.Module, b: dict, it: int):
        attn = attention_maps(prop, b["rgb"], b["ref_rgb"], b["ref_prev"], b["ref_gt"])
        return model(b["rgb"], b["seg1"], b["seg2"], attn, b["dist"], b["masks"], b["present"], it)

    return step


def _fusion_root(cfg: TrainConfig, info: DistInfo, prop: nn.Module) -> Path:
    """Existing --fusion_data, or generate it once (rank 0) under <output>/fusion_data/run0."""
    if cfg.fusion_data:
        return Path(cfg.fusion_data)
    root = Path(cfg.output) / "fusion_data"
    done = root / "run0" / ".complete"
    if info.is_main and not done.exists():
        log.info("generating fusion data from %s with %s", cfg.data[0], cfg.prop_model)
        count = generate_fusion_data(prop, cfg.data[0], root / "run0")
        done.write_text(f"{count}\n")
    barrier()
    return root


def build_stage(cfg: TrainConfig, info: DistInfo, device: torch.device) -> StageParts:
    """Construct the stage named by cfg.stage."""
    loss = bootstrapped_ce(cfg)
    if cfg.stage in ("static", "main"):
        net = fresh_network(PROPAGATION, cfg.load_network)
        data = (
            StaticClips(cfg.data, cfg.crop)
            if cfg.stage == "static"
            else VideoClips(cfg.data, cfg.crop)
        )
        return StageParts(PROPAGATION, PropagationTrainModel(net, loss), data, False, _prop_step)
    if cfg.stage == "s2m":
        net = fresh_network(S2M, cfg.load_network)
        data = ScribbleSamples(cfg.data, cfg.crop)
        return StageParts(S2M, S2MTrainModel(net, loss), data, True, _s2m_step)
    if cfg.stage == "fusion":
        # The propagation network generates the data and gives the attention keys: required.
        if cfg.prop_model is None:
            raise ValueError("--stage fusion needs --prop_model (a trained propagation network)")
        prop = load_network(PROPAGATION, cfg.prop_model, device)
        for p in prop.parameters():
            p.requires_grad_(False)
        root = _fusion_root(cfg, info, prop)
        net = fresh_network(FUSION, cfg.load_network)
        data = FusionSamples(root, cfg.data[0], cfg.crop)
        return StageParts(FUSION, FusionTrainModel(net, loss), data, False, _fusion_step(prop))
    raise ValueError(f"unknown stage {cfg.stage!r}; use static, main, s2m or fusion")
