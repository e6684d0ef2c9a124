"""How the networks compute: the default fp32 (parity with the original) or the fast mode.

fp32 (default): float32 weights and activations, batch norm folded into the convolutions; on
CPU the 3x3 convolutions run as NNPACK's Winograd (model/winograd.py), NCHW; on CUDA (and CPUs
without NNPACK) the weights are channels-last. Results stay within the parity tolerances of
../shared/parity.

fast (`--fast`, InferenceConfig.fast): whatever this machine computes fastest at >= 99 % of mask
pixels equal to fp32 (tests/test_speed_modes.py):
  * CUDA: fp16 autocast with channels-last weights (what the original calls AMP);
  * CPU with bf16 units (AVX-512 BF16 or AMX): bfloat16 weights and activations, channels-last
    (about 2x fp32 on such a CPU; PERFORMANCE.md, bench/bench_speed.py);
  * other CPUs and MPS: bf16 would be emulated and slower, so fast = fp32 (the log says so).
Memory reads (affinity, top-k softmax), aggregation and everything stored as a result stay in
float32 in every mode; only the convolutional networks change precision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from model.fold_bn import fold_batchnorm
from model.winograd import nnpack_ready, use_winograd_convs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Precision:
    """dtype: the networks' weight and activation dtype (float32 or bfloat16).
    channels_last: weights stored NHWC. autocast: the CUDA autocast dtype, or None.
    fast: whether this is the fast mode (even when it fell back to fp32)."""

    name: str
    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    autocast: torch.dtype | None = None
    fast: bool = False
    winograd: bool = False  # fp32 3x3 convolutions through NNPACK (model/winograd.py)

    def describe(self) -> str:
        """One line for logs and status bars, e.g. 'fast: bf16 + channels-last (CPU)'."""
        return self.name


def cpu_has_bf16() -> bool:
    """True when this CPU has bf16 dot-product units (x86 AVX-512 BF16 or AMX)."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(cpu, probe, None)
        if check is not None and check():
            return True
    return False


def choose_precision(device: torch.device | str, fast: bool = False) -> Precision:
    """The precision for `device`: fp32 unless `fast`, then the fastest mode it supports."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    if not fast:
        if device.type == "cpu" and nnpack_ready():
            # NNPACK wants NCHW; its Winograd 3x3 convolutions gain far more than NHWC does
            return Precision("fp32 + Winograd 3x3 (NNPACK)", winograd=True)
        # NHWC: cuDNN's fastest kernels; oneDNN's conv + add/ReLU post-ops on CPU
        nhwc = device.type in ("cuda", "cpu")
        return Precision("fp32 + channels-last" if nhwc else "fp32", channels_last=nhwc)
    if cuda:
        return Precision("fast: fp16 autocast + channels-last (CUDA)", torch.float32, True,
                         torch.float16, fast=True)  # fmt: skip
    if device.type == "cpu" and cpu_has_bf16():
        return Precision("fast: bf16 + channels-last (CPU)", torch.bfloat16, True, fast=True)
    reason = "this CPU has no bf16 units" if device.type == "cpu" else f"{device.type} device"
    return Precision(f"fast: fp32 ({reason}: bf16 would be slower)", fast=True)


def prepare_for_inference(net: nn.Module, precision: Precision) -> nn.Module:
    """eval(), batch norm folded, weights cast and laid out for `precision`; returns `net`.

    fp32 on CUDA also turns TF32 off for the process (cudnn.allow_tf32, matmul.allow_tf32).

    The network's public methods cast their inputs to the weights' dtype (see
    compute_dtype), so callers keep passing float32 tensors. Folding changes the state_dict
    names: prepare only networks that are used for inference, after strict loading.
    """
    net.eval()
    first = next(net.parameters(), None)
    if first is not None and first.device.type == "cuda" and precision.autocast is None:
        # cuDNN and cuBLAS default to TF32 (10-bit mantissa) on Ampere and later GPUs, which
        # is not fp32 and breaks parity; fp32 mode means fp32 (a process-wide setting)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    fold_batchnorm(net)
    net.requires_grad_(False)
    net.to(precision.dtype)
    if precision.winograd:
        use_winograd_convs(net)
    if precision.channels_last:
        net.to(memory_format=torch.channels_last)
    return net


def compute_dtype(net: nn.Module) -> torch.dtype:
    """The dtype a network computes in: that of its first floating-point parameter."""
    for p in net.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32
