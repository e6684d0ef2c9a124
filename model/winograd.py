"""3x3 convolutions through NNPACK's Winograd kernels (fp32, CPU), bundled with PyTorch.

oneDNN computes fp32 convolutions directly and this CPU already runs them at its peak
multiply-add rate (~200 GFLOP/s on 2 cores, PERFORMANCE.md), so fp32 can only get faster by
doing fewer multiplications. NNPACK's Winograd F(6x6, 3x3) does ~5x fewer for a 3x3 stride-1
convolution and measured 1.5-3x faster than oneDNN on the decoder's and encoders' 3x3 layers
(bench/bench_speed.py). It is part of PyTorch (torch._nnpack_spatial_convolution), used by
PyTorch itself for large batches; we call it for batch 1 too. Its rounding differs from
direct convolution by ~1e-5 relative per layer, well inside the parity tolerances
(../shared/parity, checked by tests/test_parity_modules.py and the P1 replay).

Only eligible layers use it (CPU, float32, 3x3, stride 1, one group, no autograd, NNPACK
present; a dilated layer is tiled into one undilated convolution, `dilated_by_tiling`) and only
calls where it measured faster (`pays_off`: wide layers on large maps). On small maps (the
1/16 maps of 480p) NNPACK's kernel transform at every call dominates: there the layer runs
model/winograd_small.py's F(4x4, 3x3) with the transform kept (`small_map_pays_off`). The choice
per call is WinogradConv2d.kernel_for; everything else is an ordinary nn.Conv2d call. The
networks are stored channels-last, where oneDNN is fastest for everything else (1x1
convolutions, fused ReLU/add); an NNPACK call converts its input to NCHW and its output back,
which the table below already counts.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from model.fused_ops import conv_then_ops, per_weight
from model.winograd_small import small_map_conv3x3, tiled_extent, transform_kernel


@functools.cache
def nnpack_ready() -> bool:
    """Whether NNPACK is built in and initialised (the first call initialises it; calling its
    convolution before that fails)."""
    check = getattr(torch, "_nnpack_available", None)
    return bool(check is not None and check())


# When NNPACK beats oneDNN's direct channels-last convolution (layout conversions included),
# measured per layer at 480x864 on 2 threads (bench/bench_winograd.py prints the table):
# * NNPACK transforms the kernel at every call (~20 ms for a 1024->512 layer): on small maps that
#   costs more than the convolution (NNPACK / oneDNN = 1.8 at 16x16, 1.3 at 24x24, 0.8 at 32x32
#   for 1024->512; 0.54 at 30x54, 480p's 1/16 map);
# * it transforms the activations too, which narrow layers do not repay: 1.5-2.1 for 64->64 at
#   120x216, 1.7 for 1024->64, 2.9 for 256->1 (the decoder's prediction);
# * 0.47-0.84 for every layer of >= 3.8 GMAC with >= 256 input and output channels, ~1.0 (no
#   gain) for 256->256 at 30x54 (0.96 GMAC).
MIN_PIXELS = 1200
MIN_CHANNELS = 256
MIN_MACS = 2e9  # multiply-adds of one batch item


def pays_off(in_channels: int, out_channels: int, height: int, width: int) -> bool:
    """Whether NNPACK's Winograd beats oneDNN for a 3x3 convolution of this size (table above)."""
    pixels = height * width
    return (
        pixels >= MIN_PIXELS
        and min(in_channels, out_channels) >= MIN_CHANNELS
        and 9 * in_channels * out_channels * pixels >= MIN_MACS
    )


class WinogradConv2d(nn.Conv2d):
    """An nn.Conv2d (same parameters and state_dict names) whose forward runs NNPACK's
    Winograd convolution when it can and pays off: x (N,C,H,W) float32 on CPU -> (N,O,H,W) in
    x's memory format (channels-last stays channels-last)."""

    def use_winograd(self, x: torch.Tensor) -> bool:
        """Whether this call goes through a Winograd kernel (module docstring: the rule)."""
        return self.kernel_for_input(x) is not None

    def kernel_for_input(self, x: torch.Tensor) -> str | None:
        """kernel_for x's shape, device, dtype and autograd state."""
        return self.kernel_for_like(x, x.shape[1]) if x.dim() == 4 else None

    def kernel_for_like(self, like: torch.Tensor, in_channels: int) -> str | None:
        """kernel_for an input with `in_channels` channels and the batch, map size, device,
        dtype and autograd state of `like` (N,C,H,W)."""
        grad = torch.is_grad_enabled() and (like.requires_grad or self.weight.requires_grad)
        return self.kernel_for(in_channels, *like.shape[-2:], like.device, like.dtype, grad,
                               like.shape[0])  # fmt: skip

    def kernel_for(
        self,
        in_channels: int,
        height: int,
        width: int,
        device: torch.device,
        dtype: torch.dtype,
        grad: bool = False,
        batch: int = 1,
    ) -> str | None:
        """The kernel for an input of this shape (batch, C, H, W), device and dtype, also
        before it exists: SMALL_MAP (model/winograd_small.py), NNPACK, or None (oneDNN's
        direct convolution, through nn.Conv2d)."""
        if not (
            torch.device(device).type == "cpu"
            and dtype == torch.float32
            and self.weight.dtype == torch.float32
            and not grad
        ):
            return None
        rate = self.dilation[0]
        if small_map_pays_off(batch, in_channels, self.out_channels, height, width, rate):
            return SMALL_MAP
        if not nnpack_ready():
            return None
        tiled_height, tiled_width = height, width
        if rate > 1:
            tiled_height, tiled_width = tiled_size(height, width, rate)
            # oneDNN skips the taps that fall in the padding; tiling adds separator rows and
            # columns: worth it only while the tiled map stays close to the original
            if tiled_height * tiled_width > MAX_TILED_GROWTH * height * width:
                return None
        if pays_off(in_channels, self.out_channels, tiled_height, tiled_width):
            return NNPACK
        return None

    own_kernel = use_winograd  # model/fused_ops.py: this call applies its ReLU/add itself

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
        """This layer's convolution (padding, stride) with another weight/bias (the decoder
        convolves split weights this way), then + `add` (the output's shape), then ReLU when
        `relu`: the same choice of kernel as forward."""
        kernel = self.kernel_for_input(x)
        if kernel is None:
            return conv_then_ops(self, x, weight, bias, relu, add)
        if kernel == SMALL_MAP:
            u = self._small_map_kernel(weight)
            return small_map_conv3x3(x, u, bias, self.dilation[0], relu, add)
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        rate = self.dilation[0]
        # dilated_by_tiling copies x into its tiles from any layout
        x = x if rate > 1 else x.contiguous()
        weight, padding = weight.contiguous(), list(self.padding)
        # NNPACK's batch-1 path is its inference kernel; with a batch it switches to a training
        # kernel that measured ~3x slower than batch-1 calls (and slower than oneDNN): K objects
        # go through one at a time.
        outs = []
        for i in range(x.shape[0]):
            if rate > 1:
                outs.append(dilated_by_tiling(x[i : i + 1], weight, bias, rate))
            else:
                outs.append(
                    torch._nnpack_spatial_convolution(x[i : i + 1], weight, bias, padding, [1, 1])
                )
        if channels_last or len(outs) == 1:
            # back to the caller's layout (the next, oneDNN, layer is fastest on it), then the
            # ops in place: adding across layouts measured slower than converting first
            out = outs[0] if len(outs) == 1 else torch.cat(outs)
            out = out.contiguous(memory_format=torch.channels_last) if channels_last else out
            if add is not None:
                out.add_(add)
            return out.relu_() if relu else out
        # NCHW (the STCN decoder's layout under Winograd): each object's result goes into the
        # batch's output together with its add or ReLU, one pass instead of a concatenation
        # and then one per op (3 objects at 1/4 of 480p: 173 vs 208 ms per layer with an add)
        out = outs[0].new_empty((len(outs), *outs[0].shape[1:]))
        for i, y in enumerate(outs):
            if add is not None:
                torch.add(y, add[i : i + 1], out=out[i : i + 1])
            elif relu:
                torch.clamp_min(y, 0, out=out[i : i + 1])
            else:
                out[i : i + 1] = y
        return out.relu_() if relu and add is not None else out

    def _small_map_kernel(self, weight: torch.Tensor) -> torch.Tensor:
        """transform_kernel(weight), kept per weight tensor until it changes (per_weight)."""
        return per_weight(self, "_small_map_kernels", weight, transform_kernel)


SMALL_MAP, NNPACK = "small map", "nnpack"

# When model/winograd_small.py's F(4x4, 3x3) with a cached kernel transform beats both NNPACK
# and oneDNN, measured at 2 threads (ms, oneDNN / NNPACK / small map; batch x map):
#   256->256, 1x30x54: 8.4 / 9.6 / 5.3;  3x30x54: 25.3 / 21.9 / 16.5;  1x60x108: 33.5 / 22.0 / 19.6
#   512->512, 1x30x54: 35.0 / 24.2 / 17.1; 3x30x54: 101.7 / 64.7 / 47.6; 1x60x108: 138 / 56 / 61
#   128->128, 1x30x54: 2.3 / 3.6 / 2.0;  3x30x54: 6.3 / 10.4 / 11.9
#   any channels at 1x120x216: 1.8-2.5x slower than NNPACK (the tile transforms' memory traffic)
#   tiny maps, small map / oneDNN (bench/bench_winograd.py --height 32 --width 48, and 64x96):
#   256->256 1x8x12 1.2-1.3, 1x16x24 0.78-0.80; 512->512 1x4x6 2.4, 1x8x12 1.0-1.2; in a
#   standalone loop 3x8x12 0.9, 1x12x20 1.0 (the gathers and transform products cost per call)
# i.e. wide layers on ~256 to ~5000 pixels (batch included): the 1/16 maps of 240p-480p, up to
# 3 objects, and the 1/4-1/8 maps of thumbnail-sized frames. Its kernel transform takes 4x the
# weight's memory (38 MB for 512->512), so layers wider than 512x512 (the decoder's 1024->512,
# gaining ~10 %) are left to NNPACK.
SMALL_MAP_PIXELS = 5000
SMALL_MAP_MIN_PIXELS = 256
SMALL_MAP_MIN_CHANNELS = 256
SMALL_MAP_MAX_WEIGHTS = 512 * 512  # input x output channels


def small_map_pays_off(
    batch: int, in_channels: int, out_channels: int, height: int, width: int, rate: int
) -> bool:
    """Whether model/winograd_small.py's kernel is the fastest for this 3x3 convolution."""
    covered = tiled_extent(height, rate) * tiled_extent(width, rate)
    return (
        SMALL_MAP_MIN_PIXELS <= batch * height * width <= SMALL_MAP_PIXELS
        and min(in_channels, out_channels) >= SMALL_MAP_MIN_CHANNELS
        and in_channels * out_channels <= SMALL_MAP_MAX_WEIGHTS
        and covered <= MAX_TILED_GROWTH * height * width
    )


# A dilated convolution goes through NNPACK only when tiling grows its map by at most this
# factor (S2M's layer4 and f-BRS's layer3/4: 1.06-1.11; ASPP rates of 6-36 on 1/8-1/16 maps:
# 1.3-2.1, where oneDNN, which skips the taps that read padding, stays faster).
MAX_TILED_GROWTH = 1.2


def tiled_size(height: int, width: int, rate: int) -> tuple[int, int]:
    """The map dilated_by_tiling convolves for a (height, width) input at dilation `rate`."""
    return rate * (-(-height // rate) + 1), rate * (-(-width // rate) + 1)


def dilated_by_tiling(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, rate: int
) -> torch.Tensor:
    """A 3x3 convolution with dilation and zero padding `rate` (same size) as one undilated
    Winograd convolution: x (1,C,H,W) float32, any memory format -> (1,O,H,W) NCHW.

    The taps of a convolution dilated by r at pixel (i + r*a, j + r*b) only read pixels of the
    same phase (i, j): each of the r*r sub-images x[..., i::r, j::r] is convolved by the plain
    3x3 kernel on its own. They are laid side by side in one map with a zero row and column
    after each (the padding their convolutions would see), so one NNPACK call with padding 1
    does all of them; the outputs are put back in place. Exact up to float rounding.
    """
    _, channels, height, width = x.shape
    h, w = -(-height // rate), -(-width // rate)  # each sub-image, after padding to r multiples
    padded = x.new_zeros(channels, h * rate, w * rate)
    padded[:, :height, :width] = x[0]
    tiles = x.new_zeros(channels, rate, h + 1, rate, w + 1)
    # (C, h, r, w, r) -> (C, r, h, r, w): phase (i, j) becomes tile (i, j)
    tiles[:, :, :h, :, :w] = padded.view(channels, h, rate, w, rate).permute(0, 2, 1, 4, 3)
    big = tiles.view(1, channels, rate * (h + 1), rate * (w + 1))
    out = torch._nnpack_spatial_convolution(big, weight, bias, [1, 1], [1, 1])
    out = out.view(-1, rate, h + 1, rate, w + 1)[:, :, :h, :, :w]
    out = out.permute(0, 2, 1, 4, 3).reshape(1, -1, h * rate, w * rate)
    return out[:, :, :height, :width].contiguous()


def reads_nchw(conv: nn.Module, in_channels: int, like: torch.Tensor) -> bool:
    """Whether `conv` will run NNPACK, which reads and writes NCHW, on an input of
    `in_channels` channels with the batch size, map size, device and dtype of `like`: a
    caller that assembles that input (a concatenation) then builds it NCHW, and the
    output stays NCHW, instead of the layer converting a channels-last input and its
    output (S2M's classifier at 1/4: 85 of its 195 ms were those two conversions)."""
    if not isinstance(conv, WinogradConv2d) or like.dim() != 4:
        return False
    return conv.kernel_for_like(like, in_channels) == NNPACK


def eligible(conv: nn.Module) -> bool:
    """A plain 3x3, stride-1, single-group, zero-padded Conv2d; dilated ones only with the
    same dilation both ways and padding equal to it (output the size of the input)."""
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.dilation[0] == conv.dilation[1]
        and (conv.dilation == (1, 1) or tuple(conv.padding) == conv.dilation)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
    )


def use_winograd_convs(net: nn.Module) -> int:
    """Turn every eligible Conv2d of `net` into a WinogradConv2d in place (parameters kept,
    undilated ones' weights stored NCHW, the layout NNPACK reads); returns how many. A no-op
    (0) where NNPACK is not available.

    Dilated layers keep their layout: S2M's ASPP (rates 6-18) and layer4 (rate 2) reach NNPACK
    only on maps larger than 480p's and otherwise run oneDNN (channels-last input) or the
    small-map kernel (its own transform), so an NCHW weight was converted back for oneDNN at
    every call (8 ms of an S2M call for the ASPP); an NNPACK call copies it instead."""
    if not nnpack_ready():
        return 0
    count = 0
    for module in net.modules():
        if eligible(module):
            module.__class__ = WinogradConv2d
            if module.dilation == (1, 1):
                module.weight.data = module.weight.data.contiguous()
            count += 1
    return count


def convolve_like(
    conv: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """conv's convolution (padding, stride, dilation, kernel choice) of x with `weight`/`bias`:
    a layer with its own kernel choice (WinogradConv2d, model/int8.Int8Conv2d) makes it."""
    convolve = getattr(conv, "convolve", None)
    if convolve is not None:
        return convolve(x, weight, bias)
    return conv._conv_forward(x, weight, bias)
