"""How the networks compute: the default fp32 (parity with the original) or the fast mode.

fp32 (default): float32 weights and activations, batch norm folded into the convolutions,
weights and activations channels-last (oneDNN's and cuDNN's fastest layout); on CPU the wide 3x3
convolutions on large maps run as NNPACK's Winograd (model/winograd.py decides per call where
that measured faster). Results stay within the parity tolerances of ../shared/parity.

fast (`--fast`, InferenceConfig.fast): whatever this machine computes fastest at >= 99 % of mask
pixels equal to fp32 (tests/test_speed_modes.py):
  * CUDA: fp16 autocast with channels-last weights (what the original calls AMP);
  * CPU with bf16 units (AVX-512 BF16 or AMX): bfloat16 weights and activations, channels-last
    (about 2x fp32 on such a CPU; PERFORMANCE.md, bench/bench_speed.py); where the CPU also has
    int8 units (VNNI/AMX), the propagation and fusion networks' wide 3x3 convolutions run in
    int8 (model/int8.py: ~0.55x their bf16 time);
  * other CPUs and MPS: bf16 would be emulated and slower, so fast = fp32 (the log says so).
Memory reads (affinity, top-k softmax), aggregation and everything stored as a result stay in
float32 in every mode; only the convolutional networks change precision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch
from torch import nn

from model.fold_bn import fold_batchnorm
from model.int8 import int8_ready, use_int8_convs
from model.narrow_conv import use_narrow_convs
from model.winograd import nnpack_ready, use_winograd_convs
from util.allocator import keep_freed_memory

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
    int8: bool = False  # the fast mode's wide convolutions in int8 (model/int8.py)

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
        return _fp32(device)
    if cuda:
        return Precision("fast: fp16 autocast + channels-last (CUDA)", torch.float32, True,
                         torch.float16, fast=True)  # fmt: skip
    if device.type == "cpu" and cpu_has_bf16():
        if int8_ready():
            return Precision("fast: bf16 + channels-last, int8 3x3 convolutions (CPU)",
                             torch.bfloat16, True, fast=True, int8=True)  # fmt: skip
        return Precision("fast: bf16 + channels-last (CPU)", torch.bfloat16, True, fast=True)
    reason = "this CPU has no bf16 units" if device.type == "cpu" else f"{device.type} device"
    fp32 = _fp32(device)
    return replace(fp32, name=f"fast: {fp32.name} ({reason}: bf16 would be slower)", fast=True)


def _fp32(device: torch.device) -> Precision:
    """The fp32 mode for `device`: channels-last (NHWC: cuDNN's fastest kernels, oneDNN's
    conv + add/ReLU post-ops on CPU) and, on CPU with NNPACK, Winograd for the wide 3x3 layers
    (bench/bench_winograd.py: ~0.5x oneDNN's time on those, 0.7x the whole STCN frame)."""
    if device.type == "cpu" and nnpack_ready():
        return Precision("fp32 + channels-last, Winograd 3x3 (NNPACK)", channels_last=True,
                         winograd=True)  # fmt: skip
    nhwc = device.type in ("cuda", "cpu")
    return Precision("fp32 + channels-last" if nhwc else "fp32", channels_last=nhwc)


def prepare_for_inference(net: nn.Module, precision: Precision) -> nn.Module:
    """eval(), batch norm folded, weights cast and laid out for `precision`; returns `net`.

    fp32 on CUDA also turns TF32 off for the process (cudnn.allow_tf32, matmul.allow_tf32); on
    the CPU, glibc keeps freed memory for reuse (util/allocator.py, also process-wide).

    With Winograd, a module whose class sets `nchw_with_winograd = True` (all 3x3 layers, where
    NNPACK's NCHW beats converting channels-last around every call) keeps NCHW weights and
    feeds its inputs through in_layout_of. The network's public methods cast their inputs to
    the weights' dtype (see compute_dtype), so callers keep passing float32 tensors.

    Folding changes the state_dict names: prepare only networks that are used for inference,
    after strict loading.
    """
    net.eval()
    first = next(net.parameters(), None)
    if first is not None and first.device.type == "cpu":
        keep_freed_memory()  # util/allocator.py: no page faults for each frame's maps
    if first is not None and first.device.type == "cuda" and precision.autocast is None:
        # cuDNN and cuBLAS default to TF32 (10-bit mantissa) on Ampere and later GPUs, which
        # is not fp32 and breaks parity; fp32 mode means fp32 (a process-wide setting)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    fold_batchnorm(net)
    net.requires_grad_(False)
    net.to(precision.dtype)
    if precision.channels_last:
        net.to(memory_format=torch.channels_last)
    if precision.int8:
        use_int8_convs(net)
    if precision.dtype == torch.float32:
        # 3x3 layers to <= 4 outputs: one product and shifted sums (before Winograd takes
        # every 3x3 layer it can)
        use_narrow_convs(net)
    if precision.winograd:
        use_winograd_convs(net)  # after the layout: their weights go back to NCHW for NNPACK
        for module in net.modules():
            if getattr(module, "nchw_with_winograd", False):
                module.to(memory_format=torch.contiguous_format)
    return net


def in_layout_of(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x (N,C,H,W) in the memory format of a 4-d conv `weight` (channels-last or NCHW), so a
    module's convolutions all see the layout its weights were prepared in (prepare_for_inference:
    a module with `nchw_with_winograd` is NCHW, the rest channels-last)."""
    nhwc = weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    return x.contiguous(memory_format=torch.channels_last if nhwc else torch.contiguous_format)


def compute_dtype(net: nn.Module) -> torch.dtype:
    """The dtype a network computes in: that of its first floating-point parameter."""
    for p in net.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32
