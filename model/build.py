"""Constructing each network and loading its official checkpoint onto a device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from model.checkpoint import apply_compatible_rewrites, load_strict, read_state_dict
from model.fusion_net import FusionNet
from model.s2m import S2MNetwork
from model.stcn import PropagationNetwork


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
    """cuDNN's fastest convolutions (tensor cores under AMP) want NHWC; on CPU it gave nothing."""
    return torch.device(device).type == "cuda"


def load_network(
    spec: NetworkSpec, path: str | Path | None, device: torch.device | str = "cpu"
) -> nn.Module:
    """Build `spec`'s network, load `path` strictly (None keeps random weights), move, eval().

    On CUDA the weights are stored channels-last; inputs may come in either layout.
    """
    net = spec.factory()
    if path is not None:
        sd = apply_compatible_rewrites(read_state_dict(path))
        load_strict(net, sd, path, spec.description)
    net = net.to(device).eval()
    if prefers_channels_last(device):
        net = net.to(memory_format=torch.channels_last)
    return net


def load_prop_net(
    path: str | Path | None, device: torch.device | str = "cpu"
) -> PropagationNetwork:
    """The STCN propagation network from stcn.pth."""
    return load_network(PROPAGATION, path, device)


def load_fusion_net(path: str | Path | None, device: torch.device | str = "cpu") -> FusionNet:
    """The difference-aware fusion network from fusion_stcn.pth."""
    return load_network(FUSION, path, device)


def load_s2m(path: str | Path | None, device: torch.device | str = "cpu") -> S2MNetwork:
    """The scribble-to-mask network from s2m.pth."""
    return load_network(S2M, path, device)


@dataclass(frozen=True)
class Networks:
    """The networks inference and interaction need, all on one device."""

    prop: PropagationNetwork
    fusion: FusionNet
    s2m: S2MNetwork | None  # None where only propagation is needed
    device: torch.device


def load_networks(
    prop_model: str | Path | None,
    fusion_model: str | Path | None,
    s2m_model: str | Path | None,
    device: torch.device | str = "cpu",
) -> Networks:
    """Load all three; a None path keeps random weights (tests, never users)."""
    device = torch.device(device)
    return Networks(
        prop=load_prop_net(prop_model, device),
        fusion=load_fusion_net(fusion_model, device),
        s2m=load_s2m(s2m_model, device),
        device=device,
    )
