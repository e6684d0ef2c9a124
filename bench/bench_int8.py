"""Per layer: bf16 (oneDNN, channels-last, fused ReLU/add) vs int8 (model/int8.py: the input
quantised per call, then oneDNN's VNNI convolution) on the layer shapes of a 480p frame.

python bench/bench_int8.py [--threads 2] [--repeats 7]
python bench/bench_int8.py --quantise   # the activation quantisation pass alone

Prints the median milliseconds of each and int8 / bf16; model/int8.py's `pays_off` rule comes
from this table. Both run in this one process, alternated call by call (A B A B,
common.alternated_median_ms); no weights needed. --quantise compares reading the quantised
values with int_repr (a copy) and as a view (model/int8.py uint8_of).
"""

from __future__ import annotations

import argparse
import copy

import torch
from common import alternated_median_ms
from torch import nn

from model.fused_ops import conv_add, conv_relu
from model.int8 import Int8Conv2d, int8_ready, uint8_of

# (name, in, out, kernel, stride, dilation, height, width, residual add)
LAYERS = [
    ("STCN decoder 1/4 ResBlock", 256, 256, 3, 1, 1, 120, 216, False),
    ("STCN decoder 1/8 ResBlock", 512, 512, 3, 1, 1, 60, 108, False),
    ("STCN decoder 1/8 in", 512, 256, 3, 1, 1, 60, 108, False),
    ("STCN compress 1/16", 1024, 512, 3, 1, 1, 30, 54, False),
    ("STCN key_proj 1/16", 1024, 64, 3, 1, 1, 30, 54, False),
    ("ResNet res2 3x3", 64, 64, 3, 1, 1, 120, 216, False),
    ("ResNet res3 3x3", 128, 128, 3, 1, 1, 60, 108, False),
    ("ResNet res4 3x3", 256, 256, 3, 1, 1, 30, 54, False),
    ("ResNet res2 1x1 out + add", 64, 256, 1, 1, 1, 120, 216, True),
    ("ResNet res4 1x1 in", 1024, 256, 1, 1, 1, 30, 54, False),
    ("ResNet res4 1x1 out + add", 256, 1024, 1, 1, 1, 30, 54, True),
    ("f-BRS res5 3x3 dil 4 (1/8)", 512, 512, 3, 1, 4, 56, 100, False),
    ("f-BRS res5 1x1 in (1/8)", 2048, 512, 1, 1, 1, 56, 100, False),
    ("f-BRS res5 1x1 out + add", 512, 2048, 1, 1, 1, 56, 100, True),
    ("S2M ASPP 3x3 dil 6 (1/16)", 2048, 256, 3, 1, 6, 30, 54, False),
    ("S2M decoder 3x3 (1/4)", 304, 256, 3, 1, 1, 120, 216, False),
]


def quantisation(repeats: int) -> None:
    """quantize_per_tensor then int_repr vs then uint8_of, on bf16 maps of the decoder's sizes
    (the float32 conversion included in both)."""
    print(f"{'bf16 map':22s} {'int_repr ms':>11s} {'view ms':>8s} {'view/int_repr':>13s}")
    for shape in [(1, 256, 120, 216), (1, 512, 60, 108), (3, 256, 120, 216)]:
        flat = torch.randn(shape).to(torch.bfloat16).reshape(-1)

        def copied(flat=flat):
            return torch.quantize_per_tensor(flat.float(), 0.02, 128, torch.quint8).int_repr()

        def viewed(flat=flat):
            return uint8_of(torch.quantize_per_tensor(flat.float(), 0.02, 128, torch.quint8))

        ms = alternated_median_ms({"copy": copied, "view": viewed}, repeats)
        print(f"{str(shape):22s} {ms['copy']:11.2f} {ms['view']:8.2f} "
              f"{ms['view'] / ms['copy']:13.2f}", flush=True)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--quantise", action="store_true", help="time the quantisation pass only")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.quantise:
        quantisation(args.repeats)
        return
    if not int8_ready():
        print("no int8 convolution on this CPU or PyTorch build (needs VNNI/AMX and oneDNN)")
        return
    print(f"{'layer':34s} {'GMAC':>6s} {'bf16 ms':>8s} {'int8 ms':>8s} {'int8/bf16':>9s}")
    torch.manual_seed(0)
    for name, cin, cout, k, stride, rate, h, w, add in LAYERS:
        conv = nn.Conv2d(cin, cout, k, stride, padding=rate * (k // 2), dilation=rate)
        conv = conv.to(torch.bfloat16, memory_format=torch.channels_last).requires_grad_(False)
        x = torch.relu(torch.randn(1, cin, h, w)).to(torch.bfloat16)
        x = x.contiguous(memory_format=torch.channels_last)
        other = torch.randn(1, cout, h // stride, w // stride).to(torch.bfloat16)
        other = other.contiguous(memory_format=torch.channels_last)

        quantised = copy.copy(conv)  # the same parameters, run through int8
        quantised.__class__ = Int8Conv2d

        def run(conv, x=x, other=other, add=add):
            return conv_add(conv, x, other, relu=True) if add else conv_relu(conv, x)

        with torch.inference_mode():
            ms = alternated_median_ms(
                {"bf16": lambda c=conv: run(c), "int8": lambda c=quantised: run(c)}, args.repeats
            )
        macs = k * k * cin * cout * (h // stride) * (w // stride) / 1e9
        b, i = ms["bf16"], ms["int8"]
        print(f"{name:34s} {macs:6.2f} {b:8.1f} {i:8.1f} {i / b:9.2f}", flush=True)


if __name__ == "__main__":
    main()
