"""Train the STCN propagation, S2M or fusion network; single process or under torchrun.

    python train.py --stage static --data ../static --output saves/s0
    torchrun --nproc_per_node 2 train.py --stage main --data ../DAVIS/2017/trainval \
        --load_network saves/s0/static_300000.pth --output saves/s2
    python train.py --stage fusion --data ../DAVIS/2017/trainval --prop_model saves/stcn.pth ...
"""

from __future__ import annotations

import argparse
import logging
import sys

from training.config import STAGES, TrainConfig
from training.trainer import train


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command line -> TrainConfig; unset options take the stage's original defaults."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--stage", required=True, choices=sorted(STAGES))
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="static: folders of <name>.jpg + "
        "<name>.png; main/fusion: DAVIS/YouTube-VOS roots with JPEGImages/ Annotations/",
    )
    p.add_argument("--output", required=True, help="folder for checkpoints and logs")
    p.add_argument("--iterations", type=int, help="total iterations (default: the stage's)")
    p.add_argument(
        "--lr_steps", type=int, nargs="*", help="iterations where LR is multiplied by 0.1"
    )
    p.add_argument("--lr", type=float)
    p.add_argument("--batch_size", type=int, help="per process (per GPU)")
    p.add_argument("--crop", type=int, help="training crop size in pixels (multiple of 16)")
    p.add_argument("--bce_start", type=int, help="bootstrapped CE: full CE before this iteration")
    p.add_argument("--bce_end", type=int, help="bootstrapped CE: top-15%% pixels after this one")
    p.add_argument("--no_amp", action="store_true", help="disable fp16 autocast (CUDA only)")
    p.add_argument("--save_every", type=int)
    p.add_argument("--log_every", type=int)
    p.add_argument("--num_workers", type=int, default=0)
    p.add_argument("--resume", help="a <name>_checkpoint.pth to continue from")
    p.add_argument(
        "--load_network", help="initial weights (official format), e.g. the previous stage"
    )
    p.add_argument("--prop_model", help="fusion: propagation weights that generate its data")
    p.add_argument("--fusion_data", help="fusion: already generated data (root of <run>/ folders)")
    p.add_argument(
        "--skip_scale", type=float, default=1.0, help="max-skip factor (0.2 for YouTube-VOS)"
    )
    p.add_argument("--device", default="auto", help="auto, cuda, cpu")
    p.add_argument("--name", default="", help="checkpoint file prefix (default: the stage)")
    a = p.parse_args(argv)
    d = STAGES[a.stage]
    pick = lambda value, default: default if value is None else value  # noqa: E731
    crop = pick(a.crop, d.crop)
    if crop % 16:
        p.error("--crop must be a multiple of 16")
    return TrainConfig(
        stage=a.stage,
        data=tuple(a.data),
        output=a.output,
        iterations=pick(a.iterations, d.iterations),
        lr_steps=tuple(pick(a.lr_steps, d.lr_steps)),
        lr=pick(a.lr, d.lr),
        batch_size=pick(a.batch_size, d.batch_size),
        crop=crop,
        bce_start=pick(a.bce_start, d.bce_start),
        bce_end=pick(a.bce_end, d.bce_end),
        amp=d.amp and not a.no_amp,
        save_every=pick(a.save_every, d.save_every),
        log_every=pick(a.log_every, d.log_every),
        num_workers=a.num_workers,
        resume=a.resume,
        load_network=a.load_network,
        prop_model=a.prop_model,
        fusion_data=a.fusion_data,
        skip_scale=a.skip_scale,
        device=a.device,
        name=a.name,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = train(parse_args(argv))
    logging.getLogger("train").info(
        "iterations %d..%d, last loss %.4f, weights %s",
        result.start_iteration,
        result.end_iteration,
        result.last_loss,
        result.weights,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
