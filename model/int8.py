"""int8 convolutions for the fast mode on CPUs with VNNI (oneDNN, bundled with PyTorch).

bf16 already runs oneDNN's convolutions at this CPU's bf16 peak, so the fast mode can only get
faster with a narrower multiply: VNNI's int8 dot products run the wide 3x3 layers in about half
the bf16 time (bench/bench_int8.py: 256->256 at 1/4 of 480p, 38 vs 67 ms including the
quantisation of its input). Weights are quantised once per output channel (symmetric int8,
max |w| -> 127); activations per call and per tensor (asymmetric uint8 over the tensor's own
min..max: no calibration step, nothing clipped); oneDNN returns the output in the network's
dtype with the bias, ReLU and residual add applied. This is post-training quantisation as in
Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-
Only Inference" (CVPR 2018), with dynamic activation ranges instead of calibrated ones.

A layer's output differs from float by ~0.5-1 % relative; over a propagated clip >= 99 % of
mask pixels stay equal to fp32 (tests/test_speed_modes.py). Only the fast mode uses it, only
in layers where it measured faster (`pays_off`), not in networks that opt out (`int8_exempt`:
the value encoder and S2M; f-BRS prepares without it), and only where the kernels exist
(`int8_ready`); any other call (autograd, other devices, fp32 networks) is the ordinary
convolution.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
from torch import nn

from model.fused_ops import conv_then_ops, per_weight

# Where int8 measured faster than bf16 (bench/bench_int8.py, 480p layer shapes, 2 threads):
# 3x3 layers at 0.51-0.69x (dilated ones too), the per-call quantisation pass included; 1x1
# layers never (0.85-3.7x: oneDNN's int8 1x1 kernels with wide inputs or a residual add are
# slower than its bf16 ones); too narrow layers (the image stem's 3-5 input channels, the
# decoder's 256->1 prediction) or tiny maps gain less than the quantisation pass costs.
MIN_CHANNELS = 32
MIN_MACS = 1e8  # multiply-adds of one batch item


@functools.cache
def int8_ready() -> bool:
    """Whether this CPU has int8 dot-product units (VNNI/AMX) and PyTorch has oneDNN's int8
    convolution (torch.ops.onednn.qconv2d_pointwise)."""
    cpu = getattr(torch, "cpu", None)
    vnni = any(
        getattr(cpu, probe, lambda: False)()
        for probe in ("_is_vnni_supported", "_is_amx_tile_supported")
    )
    onednn = getattr(torch.ops, "onednn", None)
    try:
        ops = onednn is not None and onednn.qconv2d_pointwise and onednn.qconv_prepack
    except (AttributeError, RuntimeError):
        ops = False
    return bool(vnni and ops and torch.backends.mkldnn.is_available())


def pays_off(conv: nn.Conv2d, height: int, width: int) -> bool:
    """Whether an int8 call of `conv` on a (height, width) input measured faster than bf16."""
    if min(conv.in_channels, conv.out_channels) < MIN_CHANNELS or conv.kernel_size == (1, 1):
        return False
    kh, kw = conv.kernel_size
    out_pixels = (height // conv.stride[0]) * (width // conv.stride[1])
    return kh * kw * conv.in_channels * conv.out_channels * out_pixels >= MIN_MACS


def eligible(conv: nn.Module) -> bool:
    """A plain, zero-padded, single-group Conv2d (any kernel, stride, dilation)."""
    return (
        isinstance(conv, nn.Conv2d)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
    )


class Int8Conv2d(nn.Conv2d):
    """An nn.Conv2d (same parameters and state_dict names) that runs int8 where it can and
    pays off: x (N,C,H,W) bfloat16 or float32 on CPU, any memory format -> (N,O,H,W) in x's
    dtype, channels-last. Elsewhere it is the ordinary convolution."""

    def use_int8(self, x: torch.Tensor) -> bool:
        """Whether this call goes through int8 (CPU, no autograd, a network cast to bf16)."""
        return (
            x.device.type == "cpu"
            and x.dim() == 4
            and self.weight.dtype == torch.bfloat16
            and x.dtype in (torch.bfloat16, torch.float32)
            and not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad))
            and pays_off(self, *x.shape[-2:])
        )

    own_kernel = use_int8  # model/fused_ops.py: this call applies its ReLU/add itself

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convolve(x, self.weight, self.bias)

    def convolve(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        relu: bool = False,
        add: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """This layer's convolution of x with `weight`/`bias` (a split part of the decoder's
        weight, or its own), then + `add` (conv's output shape), then ReLU when `relu`."""
        quantized = quantize_activation(x) if self.use_int8(x) else None
        if quantized is None:
            return conv_then_ops(self, x, weight, bias, relu, add)
        return int8_conv(self, quantized, x.dtype, weight, bias, relu, add)


def quantize_activation(x: torch.Tensor) -> tuple[torch.Tensor, float, int] | None:
    """x (N,C,H,W) any float dtype -> (uint8 channels-last tensor, scale, zero point) with
    x ~= scale * (q - zero_point) over x's own range (always including 0, so ReLU outputs and
    zero padding are exact); None when x holds inf or NaN (no range to quantise)."""
    x = x.contiguous(memory_format=torch.channels_last)
    lo, hi = torch.aminmax(x.permute(0, 2, 3, 1).reshape(-1))  # a flat view: one fast pass
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    scale = (hi - lo) / 255 or 1.0
    zero_point = min(255, max(0, round(-lo / scale)))
    return _to_uint8(x, scale, zero_point), scale, zero_point


# Elements converted per step (16 MB of float32): glibc hands out blocks over 32 MB as fresh
# pages, faulted in page by page at every call; 3 objects' 1/4 maps in one float32 copy are
# ~80 MB (quantising them took 38.7 ms in one piece, 12-16 ms in steps; 1 object: 5.5 ms).
QUANTIZE_STEP = 4 * 2**20


def _to_uint8(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """round(x / scale) + zero_point, clamped to 0..255, as uint8 (N,C,H,W) channels-last; x
    channels-last (N,C,H,W) of any float dtype.

    PyTorch's vectorised quantize_per_tensor is ~1.6x faster than the same op by op (3.3 vs
    5.1 ms at 256x120x216) but deprecated along with quantized tensors: used while it exists
    (its deprecation warning filtered below), else the op-by-op form. Converted in steps of
    QUANTIZE_STEP elements (element-wise: the same numbers as in one piece)."""
    flat = x.permute(0, 2, 3, 1).reshape(-1)  # a view of channels-last data
    out = torch.empty((x.shape[0], *x.shape[2:], x.shape[1]), dtype=torch.uint8, device=x.device)
    out_flat = out.view(-1)
    for start in range(0, flat.numel(), QUANTIZE_STEP):
        part = flat[start : start + QUANTIZE_STEP]
        if _QUANTIZE is not None:
            q = uint8_of(_QUANTIZE(part.float(), scale, zero_point, torch.quint8))
        else:
            q = uint8_by_ops(part, scale, zero_point)
        out_flat[start : start + QUANTIZE_STEP] = q
    return out.permute(0, 3, 1, 2)


def uint8_of(q: torch.Tensor) -> torch.Tensor:
    """The stored uint8 values of a quint8 tensor q, as a plain uint8 tensor sharing its memory
    (same shape and strides). q.int_repr() copies them, and slowly: the bf16 -> float32 ->
    quint8 -> uint8 pass on a 256x120x216 map took 4.1 ms with it, 2.9 ms with the view
    (bench/bench_int8.py --quantise); falls back to it where a build refuses the view."""
    try:
        return torch.empty(0, dtype=torch.uint8, device=q.device).set_(
            q.untyped_storage(), q.storage_offset(), q.shape, q.stride()
        )
    except (RuntimeError, TypeError):
        return q.int_repr()


def uint8_by_ops(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """_to_uint8 with plain tensor ops (half-way cases round up instead of to even)."""
    y = x.float().mul_(1 / scale).add_(zero_point + 0.5).clamp_(0, 255)
    return y.to(torch.uint8)  # truncation of a non-negative value: the +0.5 made it rounding


_QUANTIZE = getattr(torch, "quantize_per_tensor", None)
# A filter, not catch_warnings around each call: that swaps the process-wide filters and is not
# safe while the GUI's worker thread and the main thread both run.
warnings.filterwarnings("ignore", r"torch\.quantize_per_tensor, .* are deprecated", UserWarning)


def _packed(
    conv: Int8Conv2d, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(oneDNN packed int8 weight, per-output-channel scales, zero points) for `weight`,
    cached on the module per weight tensor (its own and the decoder's split parts) until it
    changes."""

    def pack(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = weight.detach().float()
        scales = (w.abs().amax(dim=(1, 2, 3)) / 127).clamp_min(1e-12)
        q = torch.round(w / scales[:, None, None, None]).clamp(-127, 127).to(torch.int8)
        packed = torch.ops.onednn.qconv_prepack(q, scales, 1.0, 0, list(conv.stride),
                                                list(conv.padding), list(conv.dilation),
                                                conv.groups, None)  # fmt: skip
        zero_points = torch.zeros(scales.shape[0], dtype=torch.int64)  # symmetric weights
        return packed, scales, zero_points

    return per_weight(conv, "_int8_packs", weight, pack)


def int8_conv(
    conv: Int8Conv2d,
    quantized: tuple[torch.Tensor, float, int],
    out_dtype: torch.dtype,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    relu: bool,
    add: torch.Tensor | None,
) -> torch.Tensor:
    """relu?(conv(x; weight, bias) + add?) for x given as quantize_activation(x), with int8
    weights; output (N,O,H',W') channels-last in `out_dtype`."""
    packed, w_scales, zeros = _packed(conv, weight)
    qx, x_scale, x_zp = quantized
    fbias = None if bias is None else bias.float()
    args = (list(conv.stride), list(conv.padding), list(conv.dilation), conv.groups)
    unary = "relu" if relu else "none"
    onednn = torch.ops.onednn
    if add is None:
        return onednn.qconv2d_pointwise(qx, x_scale, x_zp, packed, w_scales, zeros, fbias, *args,
                                        1.0, 0, out_dtype, unary, [], "")  # fmt: skip
    # oneDNN's sum post-op accumulates into its `accum` argument: a copy, never the caller's
    accum = add.to(out_dtype).contiguous(memory_format=torch.channels_last).clone()
    return onednn.qconv2d_pointwise.binary(qx, x_scale, x_zp, packed, w_scales, zeros, accum,
                                           fbias, *args, 1.0, 0, out_dtype, 1.0, 0, "sum", 1.0,
                                           None if not relu else "relu", [], "")  # fmt: skip


def use_int8_convs(net: nn.Module) -> int:
    """Turn every eligible Conv2d of `net` into an Int8Conv2d in place (parameters kept),
    except inside modules whose class sets `int8_exempt = True`; returns how many. A no-op (0)
    where int8 kernels are not available."""
    if not int8_ready():
        return 0
    exempt = {
        id(sub)
        for module in net.modules()
        if getattr(module, "int8_exempt", False)
        for sub in module.modules()
    }
    count = 0
    for module in net.modules():
        if type(module) is nn.Conv2d and eligible(module) and id(module) not in exempt:
            module.__class__ = Int8Conv2d
            count += 1
    return count
