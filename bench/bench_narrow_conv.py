"""3x3 layers to one output: oneDNN's direct convolution vs model/narrow_conv.py's product and
shifted sums, float32, on the shapes of a 480p frame (the STCN decoder's prediction on its NCHW
1/4 map as the Winograd decoder leaves it, the fusion network's last layer at full size).

python bench/bench_narrow_conv.py [--threads 2] [--repeats 7]

Prints the median milliseconds of each and narrow / oneDNN; both run in this one process,
alternating per call; no weights needed.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from common import alternated_median_ms  # (importing common puts the repository on sys.path)

from model.narrow_conv import narrow_conv3x3, tap_matrix

# (name, batch, in channels, height, width, channels-last)
SHAPES = [
    ("STCN decoder prediction, 1 object, NCHW", 1, 256, 120, 216, False),
    ("STCN decoder prediction, 3 objects, NCHW", 3, 256, 120, 216, False),
    ("fusion last layer, 1 object, channels-last", 1, 32, 480, 864, True),
    ("fusion last layer, 3 objects, channels-last", 3, 32, 480, 864, True),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    print(f"{'layer':46s} {'oneDNN ms':>10s} {'narrow ms':>10s} {'narrow/oneDNN':>14s}")
    for name, n, c, h, w, nhwc in SHAPES:
        fmt = torch.channels_last if nhwc else torch.contiguous_format
        x = torch.randn(n, c, h, w, generator=g).contiguous(memory_format=fmt)
        weight = (torch.randn(1, c, 3, 3, generator=g) / c).contiguous(memory_format=fmt)
        bias, taps = torch.zeros(1), tap_matrix(weight)
        runs = {
            "onednn": lambda x=x, weight=weight, bias=bias: F.conv2d(x, weight, bias, padding=1),
            "narrow": lambda x=x, taps=taps, bias=bias: narrow_conv3x3(x, taps, bias),
        }
        with torch.inference_mode():
            a, b = alternated_median_ms(runs, args.repeats).values()
        print(f"{name:46s} {a:10.1f} {b:10.1f} {b / a:14.2f}", flush=True)


if __name__ == "__main__":
    main()
