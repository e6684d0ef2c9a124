"""3x3 convolutions with very few output channels (the STCN decoder's 256->1 prediction, the
fusion network's 32->1) as one matrix product and nine shifted sums, for CPU inference.

A 3x3 convolution to O outputs is sum over the nine taps (dy, dx) of W[:, :, dy, dx] @ x shifted
by (dy, dx). With O = 1 the direct convolution has nothing to vectorise over outputs: oneDNN ran
the decoder's 256->1 layer, ~60 MMAC of work, at 44 ms per object on a 480p NCHW 1/4 map inside
a propagated frame (torch.profiler; 140 ms for 3 objects). python bench/bench_narrow_conv.py
times the layers alone: this path takes 0.15-0.31x oneDNN's time for the decoder's layer and
0.5-0.9x for the fusion network's. Here the nine taps of all O outputs are one
(9*O, C) x (C, H*W) product (MKL, ~1 ms: it reads the input once) and the nine (O, H, W) planes
are added into the output at their offsets, which only touches the O-channel output. The same
numbers as the convolution up to float summation order (~1e-6 relative). float32 only: in
bf16 each of the nine planes would be rounded before the sum (~3x oneDNN's rounding error, and
oneDNN's bf16 channels-last kernel is already 5-10 ms here), so bf16 layers take the plain path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.fused_ops import per_weight

# Layers with at most this many outputs take the product-and-shifts path: the product then
# has at most 9 * 4 = 36 rows, so it costs about one read of the input.
MAX_OUT_CHANNELS = 4


def eligible(conv: nn.Module) -> bool:
    """A plain 3x3 Conv2d (stride 1, no dilation, padding 1, one group) to <= 4 outputs."""
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and tuple(conv.padding) == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and conv.out_channels <= MAX_OUT_CHANNELS
    )


def tap_matrix(weight: torch.Tensor) -> torch.Tensor:
    """(O, C, 3, 3) weight -> (9*O, C) contiguous, row (3*ky + kx)*O + o = weight[o, :, ky, kx]."""
    out_channels, in_channels = weight.shape[:2]
    return weight.permute(2, 3, 0, 1).reshape(9 * out_channels, in_channels).contiguous()


def narrow_conv3x3(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """conv2d(x, weight, bias, padding=1) for x (N, C, H, W) float32 in either memory format
    and taps = tap_matrix(weight) (9*O, C) float32 -> (N, O, H, W) float32, contiguous."""
    n, c, h, w = x.shape
    out_channels = taps.shape[0] // 9
    if x.is_contiguous():
        # (9*O, C) @ (N, C, H*W) -> (N, 9*O, H*W): planes are rows
        planes = torch.matmul(taps, x.reshape(n, c, h * w)).view(n, 9, out_channels, h, w)
    else:
        # channels-last: (N, H*W, C) @ (C, 9*O) -> (N, H*W, 9*O), then planes first (small)
        nhwc = x.permute(0, 2, 3, 1)
        flat = torch.matmul(nhwc.reshape(n, h * w, c), taps.t())
        planes = flat.view(n, h, w, 9, out_channels).permute(0, 3, 4, 1, 2)
    out = planes[:, 4].clone()  # the centre tap covers every output pixel
    for tap in range(9):
        if tap == 4:
            continue
        dy, dx = tap // 3 - 1, tap % 3 - 1
        # out[y, x] += plane[y + dy, x + dx] where that pixel exists (zero padding elsewhere)
        oy, ox = slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx))
        iy, ix = slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx))
        out[:, :, oy, ox] += planes[:, tap, :, iy, ix]
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


class NarrowConv2d(nn.Conv2d):
    """An nn.Conv2d (same parameters and state_dict names) whose float32 CPU inference calls
    run narrow_conv3x3: x (N, C, H, W) -> (N, O, H, W). Training, autograd, bf16 and other
    devices take the plain convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if (
            grad
            or x.device.type != "cpu"
            or x.dim() != 4
            or x.dtype != torch.float32
            or self.weight.dtype != torch.float32
        ):
            return F.conv2d(x, self.weight, self.bias, padding=1)
        taps = per_weight(self, "_narrow_taps", self.weight, tap_matrix)
        return narrow_conv3x3(x, taps, self.bias)


def use_narrow_convs(net: nn.Module) -> int:
    """Turn every eligible Conv2d of `net` into a NarrowConv2d in place (parameters kept);
    returns how many."""
    count = 0
    for module in net.modules():
        if eligible(module):
            module.__class__ = NarrowConv2d
            count += 1
    return count
