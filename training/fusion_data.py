"""Fusion training data generation (spec §4.4), ported to the STCN API, and attention maps.

For each video and reference frame r = 0, separation, 2*separation, ...: start from the GT of
up to 5 objects at r, propagate forward and backward over the whole video with memory = the
reference + the previous frame (temporary) + a permanent frame every `mem_freq` frames, and
save floor(prob*255) PNGs at <out>/<video>/<r:05d>/<label:05d>/<t:05d>.png.
(The original names object folders o+1, an index into the label list; we use the label itself,
which is the same for DAVIS's contiguous ids and lets the dataset find the GT directly.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from model.aggregate import aggregate_wbg
from model.memory_read import difference_attention
from model.normalize import normalize_frames
from model.stcn import PropagationNetwork
from training.datasets import read_labels, read_rgb

log = logging.getLogger(__name__)
MIN_PIXELS = 100
MAX_OBJECTS = 5


def pad16(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad (...,H,W) on the bottom/right to multiples of 16; returns the original size."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % 16, 0, -h % 16)), (h, w)


def _propagate(net, images, ref: int, ref_prob, mem_freq: int) -> dict[int, torch.Tensor]:
    """Probabilities (K,1,H,W) of every frame from the reference, in both directions."""
    keys = {}

    def key(t: int):
        if t not in keys:
            keys[t] = net.encode_key(images[t : t + 1])
        return keys[t]

    ref_value = net.encode_value(images[ref : ref + 1], key(ref).f16, ref_prob)
    probs = {ref: ref_prob}
    for step in (1, -1):
        mem_k, mem_v = [key(ref).k16.unsqueeze(2)], [ref_value]
        temp: tuple[torch.Tensor, torch.Tensor] | None = None
        last = ref
        for t in range(ref + step, len(images) if step > 0 else -1, step):
            ks = mem_k + ([temp[0]] if temp else [])
            vs = mem_v + ([temp[1]] if temp else [])
            prob = net.segment(torch.cat(ks, 2), torch.cat(vs, 2), key(t))
            prob = aggregate_wbg(prob, keep_bg=False)
            probs[t] = prob
            value = net.encode_value(images[t : t + 1], key(t).f16, prob)
            if abs(t - last) >= mem_freq:
                mem_k.append(key(t).k16.unsqueeze(2))
                mem_v.append(value)
                last, temp = t, None
            else:
                temp = (key(t).k16.unsqueeze(2), value)
    return probs


def generate_fusion_data(
    net: PropagationNetwork,
    video_root: str | Path,
    out_root: str | Path,
    separation: int = 3,
    mem_freq: int = 5,
) -> int:
    """Write propagation results of every video under video_root; returns the PNG count."""
    device = next(net.parameters()).device
    video_root, out_root = Path(video_root), Path(out_root)
    written = 0
    for seq in sorted((video_root / "JPEGImages").iterdir()):
        frame_paths = sorted(seq.glob("*.jpg"))
        labels = [
            read_labels(video_root / "Annotations" / seq.name / f"{p.stem}.png")
            for p in frame_paths
        ]
        rgb = np.stack([read_rgb(p) for p in frame_paths])
        images, (h, w) = pad16(normalize_frames(rgb, device))
        with torch.inference_mode():
            for ref in range(0, len(frame_paths), separation):
                ids = [int(v) for v in np.unique(labels[ref]) if v not in (0, 255)]
                ids = [i for i in ids if (labels[ref] == i).sum() > MIN_PIXELS][:MAX_OBJECTS]
                if not ids:
                    continue
                gt = torch.from_numpy(np.stack([labels[ref] == i for i in ids])).float()
                gt, _ = pad16(gt.unsqueeze(1).to(device))
                probs = _propagate(net, images, ref, aggregate_wbg(gt, keep_bg=False), mem_freq)
                for t, prob in probs.items():
                    out = (prob[:, 0, :h, :w] * 255).floor().clamp(0, 255).byte().cpu().numpy()
                    for label, plane in zip(ids, out, strict=True):
                        folder = out_root / seq.name / f"{ref:05d}" / f"{label:05d}"
                        folder.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(plane).save(folder / f"{t:05d}.png")
                        written += 1
        log.info("fusion data: %s done (%d PNGs so far)", seq.name, written)
    return written


@torch.no_grad()
def attention_maps(
    prop: PropagationNetwork,
    rgb: torch.Tensor,
    ref_rgb: torch.Tensor,
    ref_prev: torch.Tensor,
    ref_gt: torch.Tensor,
) -> torch.Tensor:
    """Difference maps at the interacted frame aligned to the target frame (networks.md A.6).

    rgb/ref_rgb (B,3,S,S) with S a multiple of 16; ref_prev/ref_gt (B,K,S,S) -> (B,K,2,S,S).
    """
    b = rgb.shape[0]
    keys = prop.key_proj(prop.key_encoder(torch.cat([ref_rgb, rgb]))[0]).float()
    pos = (ref_gt - ref_prev).clamp(0, 1)
    neg = (ref_prev - ref_gt).clamp(0, 1)
    out = [
        difference_attention(
            keys[i : i + 1].unsqueeze(2), keys[b + i : b + i + 1], pos[i, :, None], neg[i, :, None]
        )
        for i in range(b)
    ]
    return torch.stack(out)
