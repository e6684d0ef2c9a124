"""f-BRS weights for tests: He-initialised, so clicks give click-dependent masks."""

from __future__ import annotations

import math

import torch
from torch import nn

from model.fbrs.load import load_fbrs
from model.fbrs.network import FBRSNetwork


def he_initialised_fbrs(seed: int = 0) -> FBRSNetwork:
    """PyTorch's default init gives a flat 0.5 everywhere; these weights give masks that cover
    part of the frame and depend on the clicks."""
    net = load_fbrs(None, "cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in net.named_modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0, math.sqrt(2 / m.weight[0].numel()), generator=gen)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                # Damp each residual branch so activations stay bounded through 16 blocks.
                m.weight.fill_(0.25 if name.endswith("bn3") else 1.0)
    return net
