"""Loading the official f-BRS checkpoint (resnet50_dh128_lvis.pth, saved as fbrs.pth).

The file is a plain name -> tensor dict that the original loads non-strictly and auto-configures
from its keys (clicks_fbrs.md §1). We load it strictly instead: every float key with its exact
shape, tolerating only what the MXNet-converted release plausibly differs by (no BatchNorm
`num_batches_tracked`, an extra scalar `aspp_dropout`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch

from model.checkpoint import (
    CheckpointError,
    apply_compatible_rewrites,
    build_uninitialised,
    load_strict,
    read_state_dict,
)
from model.fbrs.network import DEFAULT_ASPP_DROPOUT, FBRSNetwork
from model.precision import Precision, choose_precision, prepare_for_inference

DESCRIPTION = "the f-BRS click network (fbrs.pth)"
ASPP_DROPOUT_KEY = "aspp_dropout"


def split_config(sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float]:
    """Remove a scalar `aspp_dropout` entry (configuration, not a weight) and return its value.

    A non-scalar entry of that name is left in place, so the strict load reports it.
    """
    out = dict(sd)
    value = out.get(ASPP_DROPOUT_KEY)
    if value is None or value.numel() != 1:
        return out, DEFAULT_ASPP_DROPOUT
    del out[ASPP_DROPOUT_KEY]
    return out, float(value)


def read_fbrs(path: str | Path | None, device: torch.device | str = "cpu") -> FBRSNetwork:
    """The checkpoint's own modules: build, load `path` strictly (None keeps random weights),
    freeze, move to `device`, eval(). Its state_dict is the file's (tests, diagnostics).
    Raises CheckpointError for an unusable file."""
    sd, dropout = None, DEFAULT_ASPP_DROPOUT
    if path is not None:
        sd, dropout = split_config(apply_compatible_rewrites(read_state_dict(path)))
    if sd is None:
        net = FBRSNetwork(aspp_dropout=dropout)
    else:  # dropout is inactive in eval mode anyway; strict loading fills every tensor
        net = build_uninitialised(lambda: FBRSNetwork(aspp_dropout=dropout))
        load_strict(net, sd, path, DESCRIPTION)
    for p in net.parameters():
        p.requires_grad_(False)  # BRS differentiates w.r.t. its own vector only
    return net.to(device).eval()


def prepare_fbrs(net: FBRSNetwork, precision: Precision) -> FBRSNetwork:
    """Prepare a loaded click network for inference at `precision`; returns `net`.

    Batch norm folded and weights cast (model/precision.py; bf16 without int8 in the fast mode),
    then two f-BRS specifics:
    * the decoder and output heads stay float32 in every mode: BRS runs them forward and
      backward up to 22 times per click and L-BFGS needs float32 gradients; in bf16 an
      evaluation was ~1.7x faster but its gradient 36 % off (relative L2, synthetic weights,
      185x480 crop), and the head is < 1 % of a click's multiply-adds;
    * the weights are channels-last (NHWC) in every CPU mode (model/precision.py), as
      network.py feeds NHWC activations (1.4x on the backbone).
    """
    # Fold and lay out in float32, then cast all but the heads: casting the heads to bf16 and
    # back would leave bf16-rounded float32 weights. No int8 (model/int8.py): on the
    # He-initialised test network it took the first click's agreement with fp32 from 99.16 %
    # (bf16) to 98.93 % (tests/test_click_speed.py), for ~0.3 s of a 1.85 s first click.
    prepare_for_inference(net, replace(precision, dtype=torch.float32, int8=False))
    fe = net.feature_extractor
    for module in (net.rgb_conv, fe.backbone, fe.skip_project, fe.aspp):
        module.to(precision.dtype)
    return net


def load_fbrs(
    path: str | Path | None, device: torch.device | str = "cpu", fast: bool = False
) -> FBRSNetwork:
    """The click network from `path` (None: random weights), on `device`, prepared for
    inference: fp32 (parity) or, with `fast`, model/precision.py's fast mode for `device`.
    Its state_dict no longer has the checkpoint's BN entries (read_fbrs keeps them).
    Raises CheckpointError for an unusable file."""
    return prepare_fbrs(read_fbrs(path, device), choose_precision(device, fast))


def validate_fbrs_file(path: str | Path) -> None:
    """Raise CheckpointError unless `path` loads into the click network (CPU, strict)."""
    read_fbrs(path, "cpu")


def state_dict_fingerprint(sd: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every entry's (key, dtype, shape, raw bytes), in order: tells which weights
    produced a result (the parity vectors store it for the synthetic weights)."""
    h = hashlib.sha256()
    for key, value in sd.items():
        a = value.detach().cpu().contiguous().numpy()
        h.update(key.encode("utf-8"))
        h.update(str(a.dtype).encode())
        h.update(str(tuple(a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


__all__ = [
    "CheckpointError",
    "DESCRIPTION",
    "load_fbrs",
    "prepare_fbrs",
    "read_fbrs",
    "split_config",
    "state_dict_fingerprint",
    "validate_fbrs_file",
]
