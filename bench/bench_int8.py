"""Per layer: bf16 (oneDNN, channels-last, fused ReLU/add) vs int8 (model/int8.py: the input
quantised per call, then oneDNN's VNNI convolution) on the layer shapes of a 480p frame.

python bench/bench_int8.py [--threads 2] [--repeats 7]

Prints the median milliseconds of each and int8 / bf16; model/int8.py's `pays_off` rule comes
from this table. Both run in this one process, alternating per layer; no weights needed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import REPO  # noqa: F401  (puts the repository on sys.path)
from torch import nn

from model.fused_ops import conv_add, conv_relu
from model.int8 import Int8Conv2d, int8_ready

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


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
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

        def run(conv=conv, x=x, other=other, add=add):
            return conv_add(conv, x, other, relu=True) if add else conv_relu(conv, x)

        with torch.inference_mode():
            bf16 = [median_ms(run, args.repeats)]
            conv.__class__ = Int8Conv2d
            int8 = [median_ms(run, args.repeats)]
            conv.__class__ = nn.Conv2d
            bf16.append(median_ms(run, args.repeats))
            conv.__class__ = Int8Conv2d
            int8.append(median_ms(run, args.repeats))
        macs = k * k * cin * cout * (h // stride) * (w // stride) / 1e9
        b, i = statistics.mean(bf16), statistics.mean(int8)
        print(f"{name:34s} {macs:6.2f} {b:8.1f} {i:8.1f} {i / b:9.2f}", flush=True)


if __name__ == "__main__":
    main()
