"""Recompute the module-level arrays of the P1 parity scenario with our networks.

Inputs come from the reference file (teacher forcing, as shared/parity/README.md advises), so
each array tests one module: encoders, memory read, segmentation, S2M, fusion attention and net.
"""

from __future__ import annotations

import numpy as np
import torch

from model.aggregate import aggregate_wbg
from model.build import Networks
from model.memory_read import memory_affinity
from model.normalize import normalize_frames
from util.tensor_util import pad_divide_by


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def s2m_round(nets: Networks, image: torch.Tensor, ref, prefix: str) -> dict[str, np.ndarray]:
    """S2M on the stored scribble map and previous mask -> logits, prob, interact mask."""
    scribbles = torch.from_numpy(ref[f"{prefix}scribble_map"].astype(np.int64))
    prev = torch.from_numpy(ref[f"{prefix}s2m_prev_mask"]).long()
    num_objects = ref[f"{prefix}interact_mask"].shape[0] - 1
    logits = []
    for obj in range(1, num_objects + 1):
        pos = scribbles == obj
        neg = (scribbles != obj) & (scribbles != 255)
        maps, _ = pad_divide_by(torch.stack([pos, neg]).float().unsqueeze(0), 16)
        x = torch.cat([image, (prev == obj).float().unsqueeze(0), maps], dim=1)
        logits.append(nets.s2m(x))
    logits = torch.cat(logits, dim=0)
    prob = torch.sigmoid(logits)
    return {
        f"{prefix}s2m_logits": _np(logits),
        f"{prefix}s2m_prob": _np(prob),
        f"{prefix}interact_mask": _np(aggregate_wbg(prob, keep_bg=True, hard=True)),
    }


def compute_p1_modules(nets: Networks, ref) -> dict[str, np.ndarray]:
    """All module-level P1 arrays (mod_*, rN_s2m_*, rN_interact_mask, r2_fuse_t3_*)."""
    out: dict[str, np.ndarray] = {}
    frames = normalize_frames(ref["frames_rgb_u8"])
    out["frames_norm"] = _np(frames.unsqueeze(0))
    padded, pad = pad_divide_by(frames, 16)
    out["pad_lr_tb"] = np.array(pad, dtype=np.int64)
    prop = nets.prop
    feats = {t: prop.encode_key(padded[t : t + 1]) for t in range(padded.shape[0])}

    mem_t, q_t = int(ref["mod_mem_frame"][0]), int(ref["mod_query_frame"][0])
    mem, query = feats[mem_t], feats[q_t]
    out.update(
        mod_mem_k16=_np(mem.k16),
        mod_mem_f16_thin=_np(mem.f16_thin),
        mod_mem_f16=_np(mem.f16),
        mod_q_k16=_np(query.k16),
        mod_q_f16_thin=_np(query.f16_thin),
        mod_q_f16=_np(query.f16),
        mod_q_f8_ch0_31=_np(query.f8[:, :32]),
        mod_q_f4_ch0_15=_np(query.f4[:, :16]),
        mod_q_f8_chan_mean=_np(query.f8.mean(dim=(0, 2, 3))),
        mod_q_f8_chan_absmean=_np(query.f8.abs().mean(dim=(0, 2, 3))),
        mod_q_f4_chan_mean=_np(query.f4.mean(dim=(0, 2, 3))),
        mod_q_f4_chan_absmean=_np(query.f4.abs().mean(dim=(0, 2, 3))),
    )
    r1_mask = torch.from_numpy(ref["r1_interact_mask"])
    value0 = prop.encode_value(padded[mem_t : mem_t + 1], mem.f16, r1_mask[1:])
    out["mod_mem_value"] = _np(value0)
    out["mod_affinity"] = _np(memory_affinity(mem.k16.unsqueeze(2), query.k16, prop.top_k))
    out["mod_q_seg"] = _np(prop.segment(mem.k16.unsqueeze(2), value0, query))

    for prefix in ("r1_", "r2_"):
        idx = int(ref[f"{prefix}idx"][0])
        out.update(s2m_round(nets, padded[idx : idx + 1], ref, prefix))

    out.update(_fusion_t3(nets, padded, feats, ref))
    return out


def _fusion_t3(nets: Networks, padded, feats, ref) -> dict[str, np.ndarray]:
    """Round 2's fusion at frame 3: memory = certain frames (0 from r1, 5 from r2)."""
    tc, tr = (int(v) for v in ref["r2_fuse_t3_tc_tr"])
    ti = 3
    prop = nets.prop
    r1_mask = torch.from_numpy(ref["r1_interact_mask"])
    r2_mask = torch.from_numpy(ref["r2_interact_mask"])
    r1_prob = torch.from_numpy(ref["r1_prob"])
    keys = torch.stack([feats[tc].k16, feats[tr].k16], dim=2)
    values = torch.cat(
        [
            prop.encode_value(padded[tc : tc + 1], feats[tc].f16, r1_mask[1:]),
            prop.encode_value(padded[tr : tr + 1], feats[tr].f16, r2_mask[1:]),
        ],
        dim=2,
    )
    curr = aggregate_wbg(prop.segment(keys, values, feats[ti]), keep_bg=True)
    delta = r2_mask - r1_prob[:, tr]
    attn = prop.get_attention(
        feats[tr].k16.unsqueeze(2), delta.clamp(0, 1), (-delta).clamp(0, 1), feats[ti].k16
    )
    span = abs(tc - tr)
    dist = torch.tensor([[abs(tc - ti) / span, abs(tr - ti) / span]], dtype=torch.float32)
    prev = r1_prob[:, ti]
    num_objects = prev.shape[0] - 1
    logits = torch.cat(
        [
            nets.fusion(
                padded[ti : ti + 1], prev[k : k + 1], curr[k : k + 1], attn[k : k + 1], dist
            )
            for k in range(1, num_objects + 1)
        ]
    )
    return {
        "r2_fuse_t3_dist": _np(dist),
        "r2_fuse_t3_attn": _np(attn),
        "r2_fuse_t3_logits": _np(logits),
        "r2_fuse_t3_out": _np(aggregate_wbg(torch.sigmoid(logits), keep_bg=True)),
    }
