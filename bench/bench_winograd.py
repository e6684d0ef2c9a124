"""Per layer: oneDNN's direct channels-last 3x3 convolution vs NNPACK's Winograd (with the
NCHW <-> NHWC conversions a Winograd call costs inside a channels-last network; dilated layers
tiled, model/winograd.py dilated_by_tiling) vs the small-map Winograd with its kernel
transformed once (model/winograd_small.py), at the sizes a 480x854 frame gives, and which one
model/winograd.py's rule (WinogradConv2d.kernel_for) picks.

    python bench/bench_winograd.py [--height 480 --width 864] [--threads 2]
    python bench/bench_winograd.py --height 32 --width 48   # tiny maps (the small map's floor)

The kernels of each layer run alternately (A B C A B C, common.alternated_median_ms) and the
median of --repeats is kept per kernel; only their ratios (NNPACK / direct, small map / direct)
are meaningful. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from common import alternated_median_ms
from torch import nn

import model.fused_ops as fused_ops
from model.build import PROPAGATION, S2M, load_network
from model.precision import Precision
from model.winograd import WinogradConv2d, dilated_by_tiling, eligible, nnpack_ready
from model.winograd_small import small_map_conv3x3, transform_kernel


def layer_inputs(height: int, width: int) -> list[tuple[str, nn.Conv2d, tuple[int, ...]]]:
    """(name, conv, input shape) of every Winograd-eligible convolution of STCN (key encoder,
    value encoder, decoder) and S2M, as one frame of height x width runs them."""
    found: dict[str, tuple[nn.Conv2d, tuple[int, ...]]] = {}
    cl = Precision("fp32 + channels-last", channels_last=True)
    nets = {
        "stcn": load_network(PROPAGATION, None, "cpu", cl),
        "s2m": load_network(S2M, None, "cpu", cl),
    }
    hooks = []
    for net_name, net in nets.items():
        for name, module in net.named_modules():
            if eligible(module):

                def hook(m, args, out, key=f"{net_name}.{name}"):
                    found.setdefault(key, (m, tuple(args[0].shape)))

                hooks.append(module.register_forward_hook(hook))
    pointwise, fused_ops._POINTWISE = fused_ops._POINTWISE, None  # plain calls reach the hooks
    try:
        image = torch.randn(1, 3, height, width).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            prop = nets["stcn"]
            feats = prop.encode_key(image)
            prop.encode_value(image, feats.f16, torch.rand(1, 1, height, width))
            mem_out = torch.randn(1, 512, height // 16, width // 16)
            prop.decoder(mem_out, feats.f16_thin, feats.f8, feats.f4)
            s2m_input = torch.randn(1, 6, height, width)
            nets["s2m"](s2m_input.contiguous(memory_format=torch.channels_last))
    finally:
        fused_ops._POINTWISE = pointwise
        for h in hooks:
            h.remove()
    return [(name, conv, shape) for name, (conv, shape) in found.items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=864)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if not nnpack_ready():
        raise SystemExit("this PyTorch build has no NNPACK: nothing to compare")
    torch.set_num_threads(args.threads)
    print(f"{args.height}x{args.width}, {args.threads} threads; ms = median of {args.repeats}")
    print(f"{'layer':44s} {'input':>20s} {'GMAC':>6s} {'direct':>7s} {'NNPACK':>7s} "
          f"{'ratio':>5s} {'small':>6s} {'ratio':>5s}  rule")  # fmt: skip
    with torch.inference_mode():
        for name, conv, shape in layer_inputs(args.height, args.width):
            x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
            w_nhwc, w_nchw, bias = conv.weight, conv.weight.contiguous(), conv.bias

            rate = conv.dilation[0]

            def direct(x=x, w=w_nhwc, b=bias, conv=conv):
                return F.conv2d(x, w, b, 1, conv.padding, conv.dilation)

            def winograd(x=x, w=w_nchw, b=bias, rate=rate):
                if rate > 1:
                    y = dilated_by_tiling(x.contiguous(), w, b, rate)
                else:
                    y = torch._nnpack_spatial_convolution(x.contiguous(), w, b, [1, 1], [1, 1])
                return y.contiguous(memory_format=torch.channels_last)

            u = transform_kernel(w_nchw)

            def small_map(x=x, u=u, b=bias, rate=rate):
                return small_map_conv3x3(x, u, b, rate)

            ms = alternated_median_ms(
                {"direct": direct, "nnpack": winograd, "small": small_map}, args.repeats
            )
            a, b, c = ms["direct"], ms["nnpack"], ms["small"]
            gmac = 9 * shape[1] * conv.out_channels * shape[2] * shape[3] / 1e9
            rule = WinogradConv2d.kernel_for(conv, shape[1], *shape[2:], x.device, x.dtype, False,
                                             shape[0]) or "direct"  # fmt: skip
            print(f"{name:44s} {str(shape):>20s} {gmac:6.2f} {a:7.1f} {b:7.1f} "
                  f"{b / a:5.2f} {c:6.1f} {c / a:5.2f}  {rule}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
