"""The fp32 levers one at a time: one propagated STCN frame at 480x864 (key encoder, a memory
read of 3 frames, decoder; 1 object), each network adding one lever to the one before, all
timed in one process, alternating call by call:

  checkpoint   the checkpoint's layers as they are: BN after each conv, NCHW, ReLU and adds
               as separate ops (what the original runs)
  +fold        batch norm folded into the convolutions (model/fold_bn.py)
  +fuse        ReLU and residual adds inside the convolution (oneDNN post-ops, model/fused_ops.py)
  +nhwc        weights and activations channels-last
  default      + the narrow 3x3 product and Winograd (NNPACK, small-map): the fp32 that
               --fast is not (model/precision.py), the decoder NCHW

python bench/bench_levers.py [--repeats 5] [--threads 2] [--compile]

Prints each network's median seconds per frame, its ratio to the one before and to
`checkpoint`, and the largest difference of its probabilities from `checkpoint`'s (fp32: every
lever keeps the numbers). --compile also times torch.compile (inductor, weights frozen) of the
+nhwc network without our kernels (inductor fuses on its own): the first call, which compiles,
then compiled vs default alternated, and after how many frames the compilation would have
paid for itself. Asserts nothing; needs a C++ compiler for --compile.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import time

import torch
from common import alternated_median_ms, frames, weight_files

import model.fused_ops as fused_ops
from model.build import PROPAGATION, load_network
from model.fold_bn import fold_batchnorm
from model.normalize import normalize_frames
from model.precision import choose_precision
from util.tensor_util import pad_divide_by

MEMORY_FRAMES = 3


@contextlib.contextmanager
def post_ops(enabled: bool):
    """oneDNN's conv + ReLU/add fusion on or off for the calls inside (model/fused_ops.py reads
    this at every call)."""
    saved = fused_ops._POINTWISE
    fused_ops._POINTWISE = saved if enabled else None
    try:
        yield
    finally:
        fused_ops._POINTWISE = saved


def the_networks(path) -> dict[str, tuple[torch.nn.Module, bool]]:
    """name -> (network, post-ops on), each one lever more than the one before."""
    plain = load_network(PROPAGATION, path, "cpu", precision=None)  # BN separate, NCHW
    plain.requires_grad_(False)
    folded = copy.deepcopy(plain)
    fold_batchnorm(folded)
    nhwc = copy.deepcopy(folded).to(memory_format=torch.channels_last)
    default = load_network(PROPAGATION, path, "cpu", choose_precision("cpu"))
    return {
        "checkpoint": (plain, False),
        "+fold": (folded, False),
        "+fuse": (folded, True),
        "+nhwc": (nhwc, True),
        "default": (default, True),
    }


def frame_runner(net, post_ops_on: bool, image, mem_k, mem_v):
    """A no-argument call: key encoding of `image`, memory read and decoding -> (1,1,H,W)."""

    def run() -> torch.Tensor:
        with post_ops(post_ops_on):
            feats = net.encode_key(image)
            return net.segment(mem_k, mem_v, feats)

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = weight_files()
    nets = the_networks(paths[0] if paths else None)
    clip = frames(MEMORY_FRAMES + 1, args.height, args.width)
    images = [pad_divide_by(normalize_frames(f, "cpu").unsqueeze(0), 16)[0] for f in clip]
    mask = torch.zeros(1, 1, *images[0].shape[-2:])
    mask[..., 100:250, 60:200] = 1
    with torch.inference_mode():
        default = nets["default"][0]
        keys, values = [], []
        for image in images[:MEMORY_FRAMES]:
            feats = default.encode_key(image)
            keys.append(feats.k16.unsqueeze(2))
            values.append(default.encode_value(image, feats.f16, mask))
        mem_k, mem_v = torch.cat(keys, dim=2), torch.cat(values, dim=2)
        runs = {name: frame_runner(net, on, images[-1], mem_k, mem_v)
                for name, (net, on) in nets.items()}  # fmt: skip
        reference = runs["checkpoint"]()
        diffs = {name: float((run() - reference).abs().max()) for name, run in runs.items()}
        ms = alternated_median_ms(runs, args.repeats)
    size = tuple(images[0].shape[-2:])
    print(f"one propagated frame, {size}, {MEMORY_FRAMES} memory frames, 1 object, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} (alternated)")  # fmt: skip
    print(f"{'network':12s} {'s/frame':>8s} {'/ previous':>11s} {'/ checkpoint':>13s} "
          f"{'max |p - p_checkpoint|':>23s}")  # fmt: skip
    previous = None
    for name, t in ms.items():
        step = f"{t / previous:11.2f}" if previous else f"{'':11s}"
        print(f"{name:12s} {t / 1e3:8.3f} {step} {t / ms['checkpoint']:13.2f} {diffs[name]:23.1e}")
        previous = t
    if args.compile:
        compiled_vs_default(nets, images[-1], mem_k, mem_v, ms["default"], args.repeats)


def compiled_vs_default(nets, image, mem_k, mem_v, default_ms: float, repeats: int) -> None:
    """torch.compile of the +nhwc network's key encoder and decoder (the memory read, a sparse
    product, stays eager) vs the default network, alternated."""
    import torch._inductor.config as inductor_config  # noqa: PLC0415

    inductor_config.freezing = True  # weights as constants: inductor prepacks them for oneDNN
    net = copy.deepcopy(nets["+nhwc"][0])
    net.key_encoder = torch.compile(net.key_encoder)
    net.decoder = torch.compile(net.decoder)
    runs = {
        "compiled": frame_runner(net, False, image, mem_k, mem_v),
        "default": frame_runner(nets["default"][0], True, image, mem_k, mem_v),
    }
    with torch.inference_mode():
        start = time.perf_counter()
        runs["compiled"]()
        first = time.perf_counter() - start
        ms = alternated_median_ms(runs, repeats)
    steady = ms["compiled"] / 1e3
    print(f"torch.compile (inductor, frozen weights) of +nhwc: first call {first:.1f} s, then "
          f"{steady:.3f} s/frame; default {ms['default'] / 1e3:.3f} s/frame; "
          f"compiled / default {ms['compiled'] / ms['default']:.2f}")  # fmt: skip
    gain = default_ms / 1e3 - steady
    if gain <= 0:
        print("compiled is not faster than default: its compilation never pays off")
    else:
        print(f"the compilation pays off after {(first - steady) / gain:.0f} frames")


if __name__ == "__main__":
    main()
