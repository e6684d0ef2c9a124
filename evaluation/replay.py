"""Replay a parity scenario (shared/parity/README.md format) through the real session.

    python -m evaluation.replay SCENARIO.npz --out OUT.npz --prop_model P --fusion_model F \
        --s2m_model S [--device cpu]

Reads only the scenario's inputs and writes what we compute under the reference names. Rounds
are teacher-forced: S2M gets the stored previous mask, a free-hand round starts from the stored
soft mask, and the session's round gets the stored interaction mask, so one near-tie pixel cannot
make later rounds diverge. This is a command-line entry point: it combines inference_core and
interact, the one place outside the GUI allowed to.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames
from inference_core.observer import FusionDetails, RoundObserver
from inference_core.session import Session
from interact.free import FreeInteraction
from interact.scribble import ScribbleInteraction
from model.build import Networks, load_networks
from model.checkpoint import CheckpointError
from model.memory_read import memory_affinity
from model.normalize import normalize_frames
from model.weights import find_weight
from util.device import pick_device
from util.tensor_util import unpad


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


class _RoundRecorder(RoundObserver):
    """Collects the bookkeeping arrays of one round."""

    def __init__(self, detail_frames: set[int]) -> None:
        self.memory_frames: list[int] = []
        self.fused_frames: list[int] = []
        self.details: dict[int, FusionDetails] = {}
        self.detail_frames = detail_frames

    def memory_written(self, t: int) -> None:
        self.memory_frames.append(t)

    def fused(self, details: FusionDetails) -> None:
        self.fused_frames.append(details.ti)
        if details.ti in self.detail_frames:
            self.details[details.ti] = details


def _round_numbers(ref) -> list[int]:
    return sorted(int(m.group(1)) for k in ref.keys() if (m := re.fullmatch(r"r(\d+)_idx", k)))


def _strokes(points: np.ndarray) -> list[tuple[int, list[tuple[float, float]]]]:
    """Rows (stroke_id, label, x, y) -> [(label, [(x, y), ...])] in file order."""
    strokes: list[tuple[int, list[tuple[float, float]]]] = []
    current = None
    for stroke_id, label, x, y in np.asarray(points).reshape(-1, 4).tolist():
        if stroke_id != current:
            strokes.append((int(label), []))
            current = stroke_id
        strokes[-1][1].append((float(x), float(y)))
    return strokes


def _scribble_round(session: Session, ref, p: str, idx: int) -> tuple[torch.Tensor, dict]:
    key = f"{p}s2m_prev_mask"
    prev = ref[key].reshape(session.padded_size) if key in ref else session.results.padded_mask(idx)
    inter = ScribbleInteraction(session.frames.size, session.num_objects, prev)
    for label, pts in _strokes(ref[f"{p}stroke_points"]):
        inter.add_stroke(label, pts)
    mask = inter.predict(session.nets.s2m, session.image(idx))
    return mask, {
        f"{p}scribble_map": inter.scribble_map(),
        f"{p}s2m_logits": _np(inter.logits),
        f"{p}s2m_prob": _np(inter.prob),
    }


def _free_round(session: Session, ref, p: str, idx: int) -> tuple[torch.Tensor, dict]:
    key = f"{p}free_prev_prob"
    if key in ref:
        prev = unpad(torch.from_numpy(ref[key]), session.pad).numpy()
    else:
        prev = unpad(torch.from_numpy(session.results.prob(idx)[1:, None]), session.pad).numpy()
    inter = FreeInteraction(prev, session.pad)
    brush = int(np.asarray(ref[f"{p}free_brush"]).reshape(-1)[0])
    for label, pts in _strokes(ref[f"{p}stroke_points"]):
        inter.add_stroke(label, pts, brush)
    return inter.predict(session.device), {f"{p}free_drawn_map": inter.drawn_map()}


def _detail_frames(ref, p: str) -> set[int]:
    pattern = re.compile(re.escape(p) + r"fuse_t(\d+)_tc_tr")
    return {int(m.group(1)) for k in ref.keys() if (m := pattern.fullmatch(k))}


def _run_round(session: Session, ref, n: int) -> dict[str, np.ndarray]:
    p = f"r{n}_"
    idx = int(np.asarray(ref[f"{p}idx"]).reshape(-1)[0])
    free = f"{p}free_brush" in ref
    mask, out = (_free_round if free else _scribble_round)(session, ref, p, idx)
    out[f"{p}interact_mask"] = _np(mask)
    forced = torch.from_numpy(ref[f"{p}interact_mask"]) if f"{p}interact_mask" in ref else mask
    recorder = _RoundRecorder(_detail_frames(ref, p))
    session.observer = recorder
    session.update_mask_only(idx, forced)
    session.interact(idx, forced)
    t_all = range(session.num_frames)
    out[f"{p}np_masks"] = np.stack([session.results.mask(t) for t in t_all])
    out[f"{p}prob"] = np.stack([session.results.prob(t) for t in t_all], axis=1)[:, :, None]
    out[f"{p}mem_frames"] = np.array(recorder.memory_frames, dtype=np.int64)
    out[f"{p}certain_mem_frames"] = np.array(sorted(set(session.interacted)), dtype=np.int64)
    out[f"{p}fused_frames"] = np.array(recorder.fused_frames, dtype=np.int64)
    for ti, d in recorder.details.items():
        q = f"{p}fuse_t{ti}_"
        out[q + "tc_tr"] = np.array([d.tc, d.tr], dtype=np.int64)
        out[q + "dist"] = _np(d.dist)
        out[q + "attn"] = _np(d.attention)
        out[q + "logits"] = _np(d.logits)
        out[q + "out"] = _np(d.out)
    return out


def module_probe(session: Session, ref) -> dict[str, np.ndarray]:
    """The mod_* arrays: memory = mod_mem_frame with round 1's mask, query = mod_query_frame."""
    mem_t = int(np.asarray(ref["mod_mem_frame"]).reshape(-1)[0])
    q_t = int(np.asarray(ref["mod_query_frame"]).reshape(-1)[0])
    mem, query = session.features(mem_t), session.features(q_t)
    prop = session.nets.prop
    out = {
        "mod_mem_k16": mem.k16,
        "mod_mem_f16_thin": mem.f16_thin,
        "mod_mem_f16": mem.f16,
        "mod_q_k16": query.k16,
        "mod_q_f16_thin": query.f16_thin,
        "mod_q_f16": query.f16,
        "mod_q_f8_ch0_31": query.f8[:, :32],
        "mod_q_f4_ch0_15": query.f4[:, :16],
        "mod_q_f8_chan_mean": query.f8.mean(dim=(0, 2, 3)),
        "mod_q_f8_chan_absmean": query.f8.abs().mean(dim=(0, 2, 3)),
        "mod_q_f4_chan_mean": query.f4.mean(dim=(0, 2, 3)),
        "mod_q_f4_chan_absmean": query.f4.abs().mean(dim=(0, 2, 3)),
    }
    masks = torch.from_numpy(ref["r1_interact_mask"]).to(session.device)[1:]
    value = prop.encode_value(session.image(mem_t), mem.f16, masks)
    out["mod_mem_value"] = value
    out["mod_affinity"] = memory_affinity(mem.k16.unsqueeze(2), query.k16, session.cfg.top_k)
    out["mod_q_seg"] = prop.segment(mem.k16.unsqueeze(2), value, query, session.cfg.top_k)
    return {k: _np(v) for k, v in out.items()}


def replay(ref, nets: Networks, prob_dtype: str = "float32") -> dict[str, np.ndarray]:
    """Run every round of scenario `ref` (an npz mapping); returns our arrays by reference name."""
    meta = json.loads(str(np.asarray(ref["meta_json"]).reshape(-1)[0]))
    frames_u8 = np.asarray(ref["frames_rgb_u8"])
    num_objects = int(meta.get("num_objects") or ref["r1_interact_mask"].shape[0] - 1)
    cfg = InferenceConfig(
        mem_freq=int(meta.get("mem_freq", 5)),
        top_k=int(meta.get("top_k", 20)),
        prob_dtype=prob_dtype,
        reinteraction="append",  # the original's rule, which the references were made with
    )
    session = Session(nets, ArrayFrames(frames_u8), num_objects, cfg)
    out: dict[str, np.ndarray] = {
        "frames_norm": _np(normalize_frames(frames_u8).unsqueeze(0)),
        "pad_lr_tb": np.array(session.pad, dtype=np.int64),
    }
    with torch.inference_mode():
        for n in _round_numbers(ref):
            out.update(_run_round(session, ref, n))
        if "mod_mem_frame" in ref and "r1_interact_mask" in ref:
            out.update(module_probe(session, ref))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.replay", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("scenario", help="scenario .npz in the shared/parity format")
    parser.add_argument("--out", required=True, help="where to write our arrays (.npz)")
    parser.add_argument("--prop_model", default=str(find_weight("stcn.pth")))
    parser.add_argument("--fusion_model", default=str(find_weight("fusion_stcn.pth")))
    parser.add_argument("--s2m_model", default="saves/s2m.pth")
    parser.add_argument(
        "--device", default="cpu", help="auto|cuda|mps|cpu (default cpu: fp32 parity)"
    )
    parser.add_argument("--prob_dtype", default="float32", choices=["float32", "float16"])
    args = parser.parse_args(argv)
    try:
        scenario = Path(args.scenario)
        if not scenario.is_file():
            raise ValueError(f"{scenario}: scenario file not found")
        device = pick_device(args.device)
        nets = load_networks(args.prop_model, args.fusion_model, args.s2m_model, device)
        with np.load(scenario, allow_pickle=False) as ref:
            out = replay(ref, nets, args.prob_dtype)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.out, **out)
    except (CheckpointError, ValueError, KeyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(out)} arrays to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
