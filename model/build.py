"""Constructing each network and loading its official checkpoint onto a device."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from model.checkpoint import (
    apply_compatible_rewrites,
    build_uninitialised,
    load_strict,
    read_state_dict,
)
from model.fusion_net import FusionNet
from model.precision import Precision, choose_precision, prepare_for_inference
from model.s2m import S2MNetwork
from model.stcn import PropagationNetwork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkSpec:
    """What a network is called, its default checkpoint file, and how to construct it."""

    description: str
    filename: str
    factory: Callable[[], nn.Module]


PROPAGATION = NetworkSpec("the STCN propagation network (stcn.pth)", "stcn.pth", PropagationNetwork)
FUSION = NetworkSpec("the fusion network (fusion_stcn.pth)", "fusion_stcn.pth", FusionNet)
S2M = NetworkSpec("the S2M scribble network (s2m.pth)", "s2m.pth", S2MNetwork)


def prefers_channels_last(device: torch.device | str) -> bool:
    """cuDNN's fastest convolutions (tensor cores under AMP) want NHWC; on CPU only bf16 gains."""
    return torch.device(device).type == "cuda"


def load_network(
    spec: NetworkSpec,
    path: str | Path | None,
    device: torch.device | str = "cpu",
    precision: Precision | None = None,
) -> nn.Module:
    """Build `spec`'s network, load `path` strictly (None keeps random weights), move, eval().

    precision None: the checkpoint's own modules (for training and state_dict checks),
    channels-last on CUDA. A Precision: prepared for inference (model/precision.py: batch norm
    folded, cast, laid out); its state_dict no longer has the checkpoint's BN names.
    Raises CheckpointError (model/checkpoint.py) naming the file on any mismatch.
    """
    if path is None:
        net = spec.factory()
    else:
        sd = apply_compatible_rewrites(read_state_dict(path))
        net = build_uninitialised(spec.factory)
        load_strict(net, sd, path, spec.description)  # strict: every tensor is overwritten
    net = net.to(device).eval()
    if precision is not None:
        return prepare_for_inference(net, precision)
    if prefers_channels_last(device):
        net = net.to(memory_format=torch.channels_last)
    return net


def load_prop_net(
    path: str | Path | None, device: torch.device | str = "cpu", fast: bool = False
) -> PropagationNetwork:
    """The STCN propagation network from stcn.pth, prepared for inference."""
    return load_network(PROPAGATION, path, device, choose_precision(device, fast))


def load_fusion_net(
    path: str | Path | None, device: torch.device | str = "cpu", fast: bool = False
) -> FusionNet:
    """The difference-aware fusion network from fusion_stcn.pth, prepared for inference."""
    return load_network(FUSION, path, device, choose_precision(device, fast))


def load_s2m(
    path: str | Path | None, device: torch.device | str = "cpu", fast: bool = False
) -> S2MNetwork:
    """The scribble-to-mask network from s2m.pth, prepared for inference."""
    return load_network(S2M, path, device, choose_precision(device, fast))


@dataclass(frozen=True)
class Networks:
    """The networks inference and interaction need, all on one device and one precision."""

    prop: PropagationNetwork
    fusion: FusionNet
    s2m: S2MNetwork | None  # None where only propagation is needed
    device: torch.device
    precision: Precision = Precision("fp32")


def load_networks(
    prop_model: str | Path | None,
    fusion_model: str | Path | None,
    s2m_model: str | Path | None,
    device: torch.device | str = "cpu",
    fast: bool = False,
) -> Networks:
    """Load all three for inference; a None path keeps random weights (tests, never users).

    fast: see model/precision.py (bf16 on CPUs with bf16 units, fp16 autocast on CUDA).
    """
    device = torch.device(device)
    precision = choose_precision(device, fast)
    return Networks(
        prop=load_network(PROPAGATION, prop_model, device, precision),
        fusion=load_network(FUSION, fusion_model, device, precision),
        s2m=load_network(S2M, s2m_model, device, precision),
        device=device,
        precision=precision,
    )


def networks_for(nets: Networks, fast: bool) -> Networks:
    """`nets` in the precision `fast` asks for: the same object when it already is, else
    copies converted (logged; API users should load with load_networks(fast=...) instead).

    Converting bf16 networks back to fp32 cannot restore the rounded weights: a warning says so.
    """
    if nets.precision.fast == fast:
        return nets
    precision = choose_precision(nets.device, fast)
    if nets.precision.dtype != torch.float32 and precision.dtype == torch.float32:
        log.warning("networks loaded in %s converted to fp32: load them again for parity",
                    nets.precision.describe())  # fmt: skip
    log.info("converting the networks to %s", precision.describe())

    def convert(net: nn.Module | None) -> nn.Module | None:
        return None if net is None else prepare_for_inference(copy.deepcopy(net), precision)

    return Networks(convert(nets.prop), convert(nets.fusion), convert(nets.s2m), nets.device,
                    precision)  # fmt: skip
