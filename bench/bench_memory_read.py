"""The memory read's top-k selection as the memory grows, at 480p (30x54 query positions at
1/16): one (M, N) affinity then torch.topk (the way before model/memory_read.py's blocks, with
its reused buffer up to 256 MB) vs top_k_affinity's cache-sized blocks, alternated call by call
in one process (common.alternated_median_ms); and the whole read_memory (1 object) beside it.

    python bench/bench_memory_read.py [--frames 2 5 10 30 60] [--threads 2] [--repeats 5]

Prints milliseconds and blocked / one matrix per memory size, and whether both chose the same
entries. Random keys (speed does not depend on the values); asserts nothing.
"""

from __future__ import annotations

import argparse
import math

import torch
from common import alternated_median_ms

from model.memory_read import read_memory, top_k_affinity

H, W = 30, 54  # 1/16 of a 480x854 frame padded to 480x864
BUFFER_MAX = 64 << 20  # elements: the reused affinity buffer of the one-matrix read


def one_matrix(mkf: torch.Tensor, qkf: torch.Tensor, top_k: int, buffer: torch.Tensor | None):
    """The one-matrix selection: (M, N) affinity in one product, then top-k along its rows."""
    scale = 1 / math.sqrt(mkf.shape[0])
    m, n = qkf.shape[1], mkf.shape[1]
    out = buffer[: m * n].view(m, n) if buffer is not None and m * n <= buffer.numel() else None
    affinity = torch.addmm(mkf.pow(2).sum(0)[None, :], qkf.t(), mkf, beta=-scale,
                           alpha=2 * scale, out=out)  # fmt: skip
    return torch.topk(affinity, k=min(top_k, n), dim=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, nargs="+", default=[2, 5, 10, 30, 60])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    buffer = torch.empty(BUFFER_MAX)
    print(f"480p memory read, {args.threads} threads, top-k 20; ms = median of {args.repeats}")
    print(f"{'memory frames':>13s} {'one matrix':>10s} {'blocked':>8s} {'ratio':>6s} "
          f"{'read_memory':>11s}  same entries")  # fmt: skip
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for frames in args.frames:
            mk = torch.randn(1, 64, frames, H, W, generator=g)
            qk = torch.randn(1, 64, H, W, generator=g)
            # position-major float32 values, as inference_core/memory_bank.py keeps them
            mv = torch.randn(1, frames, H, W, 512, generator=g).permute(0, 4, 1, 2, 3)
            mkf, qkf = mk.flatten(2)[0], qk.flatten(2)[0]
            ms = alternated_median_ms(
                {
                    "one": lambda mkf=mkf, qkf=qkf: one_matrix(mkf, qkf, 20, buffer),
                    "blocked": lambda mkf=mkf, qkf=qkf: top_k_affinity(mkf, qkf, 20),
                    "read": lambda mk=mk, qk=qk, mv=mv: read_memory(mk, qk, mv, 20),
                },
                args.repeats,
            )
            a = one_matrix(mkf, qkf, 20, buffer).indices.sort(1).values
            b = top_k_affinity(mkf, qkf, 20)[1].sort(1).values
            same = 100 * (a == b).float().mean().item()
            print(f"{frames:13d} {ms['one']:10.1f} {ms['blocked']:8.1f} "
                  f"{ms['blocked'] / ms['one']:6.2f} {ms['read']:11.1f}  {same:.3f} %",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
