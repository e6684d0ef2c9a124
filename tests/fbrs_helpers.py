"""f-BRS weights for tests: He-initialised, so clicks give click-dependent masks."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from model.fbrs.load import load_fbrs, read_fbrs
from model.fbrs.network import FBRSNetwork


def he_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """PyTorch's default init gives a flat 0.5 everywhere; these weights give masks that cover
    part of the frame and depend on the clicks. In the checkpoint's own layout (BN unfolded)."""
    net = read_fbrs(None, "cpu")
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
    return net.state_dict()


def write_he_checkpoint(path: Path, seed: int = 0) -> Path:
    """torch.save the He-initialised weights, for tests that go through the real loader."""
    torch.save(he_state_dict(seed), path)
    return path


def he_initialised_fbrs(seed: int = 0, fast: bool = False, tmp: Path | None = None) -> FBRSNetwork:
    """The He-initialised click network loaded as the application loads it (load_fbrs:
    batch norm folded; `fast` as --fast), through a checkpoint file in `tmp` (else a temp dir)."""
    if tmp is None:
        import atexit  # noqa: PLC0415
        import shutil  # noqa: PLC0415
        import tempfile  # noqa: PLC0415

        tmp = Path(tempfile.mkdtemp(prefix="fbrs-he-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return load_fbrs(write_he_checkpoint(tmp / f"fbrs_he{seed}.pth", seed), "cpu", fast=fast)
