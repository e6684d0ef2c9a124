"""Rebuild an f-BRS parity scenario from its inputs and write the arrays its reference names.

    python -m interact.replay_clicks SCENARIO.npz --fbrs_model F --out OUT.npz [--device cpu]

Inputs read from the scenario (shared/parity/FBRS.md): the frame (frame_rgb_u8), the clicks,
and per BRS click the recorded L-BFGS evaluation points (kN_brs_x), which are *replayed*
instead of letting the optimiser choose (a free-running optimiser diverges on float noise).
A click without recorded points runs L-BFGS freely. Optional parts (aggregation, undo/redo,
unit vectors) are produced when their inputs are present. Compare the output with
shared/tools/check_parity.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from interact.click import merge_click_mask
from interact.replay_click_units import (
    box_array,
    click_rows,
    click_square_units,
    clicks_from_rows,
    distance_map_units,
    transform_chain_units,
    zoom_units,
)
from model.checkpoint import CheckpointError, read_state_dict
from model.fbrs.clicks import Click, points_tensor
from model.fbrs.controller import ClickController
from model.fbrs.distance_maps import click_maps
from model.fbrs.load import load_fbrs, state_dict_fingerprint
from model.fbrs.network import FBRSNetwork
from model.fbrs.predictor import NORM_RADIUS
from model.normalize import normalize_frames
from util.tensor_util import pad_amounts

log = logging.getLogger(__name__)
Arrays = dict[str, np.ndarray]
# Inputs written back unchanged, so the output names every array of the reference.
_ECHOED = (
    "frame_idx",
    "frame_rgb_u8",
    "weights_salt",
    "meta_json",
    "agg_tar_obj",
    "redo_click",
    "zu_prev_prob",
    "zu_clicks",
    "zu_boxes_in",
    "cm_clicks",
    "cm_hw",
)
_ECHOED_PATTERN = re.compile(r"dm\d+_(points|hw_norm)")


class ScenarioError(ValueError):
    """The scenario file lacks an input this tool needs."""


def _config(sc: Mapping[str, np.ndarray]) -> dict:
    return json.loads(str(sc["meta_json"])).get("cfg", {}) if "meta_json" in sc else {}


def _frame(sc: Mapping[str, np.ndarray], device: torch.device):
    """The normalised frame, zero-padded to multiples of 16 after normalisation, and the pad."""
    if "frame_rgb_u8" not in sc:
        raise ScenarioError("the scenario has no frame_rgb_u8")
    rgb = np.asarray(sc["frame_rgb_u8"], dtype=np.uint8)
    pad = pad_amounts(*rgb.shape[:2])
    return F.pad(normalize_frames(rgb, device)[None], pad), pad


def _clicks(sc: Mapping[str, np.ndarray], cfg: dict, pad) -> list[Click]:
    """The session's clicks in padded coordinates (the controller's frame)."""
    if "clicks" in sc and len(sc["clicks"]):
        return clicks_from_rows(sc["clicks"])
    left, _, top, _ = pad
    rows = sc["clicks_img"] if "clicks_img" in sc else cfg.get("clicks")
    if rows is None or len(rows) == 0:
        raise ScenarioError("the scenario has no clicks")
    return [Click(c.y + top, c.x + left, c.positive) for c in clicks_from_rows(np.asarray(rows))]


def _first_click_internals(net: FBRSNetwork, frame: torch.Tensor, click: Click, full: bool):
    """c1_*: the plain forward of the unflipped padded frame for the first click alone."""
    points = points_tensor([[click]], device=frame.device)
    out: Arrays = {"c1_points": points.cpu().numpy()}
    if not full:
        return out
    maps = click_maps(points, *frame.shape[-2:], NORM_RADIUS)
    with torch.no_grad():
        it = net.internals(frame, maps)
    c4 = it.c4.double()
    out.update(
        c1_dist_maps=maps[0].cpu().numpy(),
        c1_rgb_conv=it.rgb[0].cpu().numpy(),
        c1_c4_stats=np.array([c4.mean().item(), c4.std().item(), c4.abs().max().item()]),
        c1_feat160=it.features[0].cpu().numpy(),
        c1_logits_stride4=it.logits_f4[0].cpu().numpy(),
        c1_logits=it.logits[0].cpu().numpy(),
    )
    return out


def _brs_arrays(prefix: str, record) -> Arrays:
    brs = record.brs
    evals = brs.evaluations if brs is not None else []
    n = len(evals)
    return {
        f"{prefix}_brs_x0": np.empty(0) if record.brs_x0 is None else record.brs_x0,
        f"{prefix}_brs_x": np.array([e.x for e in evals]).reshape(n, -1 if n else 320),
        f"{prefix}_brs_f": np.array([e.f for e in evals], dtype=np.float64),
        f"{prefix}_brs_g": np.array([e.g for e in evals]).reshape(n, -1 if n else 320),
        f"{prefix}_brs_grad_zero": np.array([e.grad_zero for e in evals], dtype=bool),
        f"{prefix}_brs_fmax": np.array([e.fmax for e in evals], dtype=np.float64).reshape(n, 2),
        f"{prefix}_brs_iou": np.array([e.iou for e in evals], dtype=np.float64),
        f"{prefix}_brs_best_idx": np.array([brs.best_index if brs else -1], dtype=np.int64),
        f"{prefix}_best_loss": np.array([evals[brs.best_index].f if brs else -1.0]),
        f"{prefix}_n_evals": np.array([n], dtype=np.int64),
        f"{prefix}_lbfgs_nit": np.array([brs.n_iterations if brs else -1], dtype=np.int64),
    }


def _click_arrays(prefix: str, ctrl: ClickController, mask: torch.Tensor) -> Arrays:
    rec = ctrl.predictor.last
    out = {
        f"{prefix}_prob": ctrl.prob[0, 0].float().cpu().numpy(),
        f"{prefix}_np_masks": mask[0, 0].cpu().numpy().astype(np.uint8),
        f"{prefix}_net_input_hw": np.array(rec.net_input_hw, dtype=np.int64),
        f"{prefix}_zoom_roi": box_array(rec.zoom_roi),
        f"{prefix}_limit_roi": box_array(rec.limit_roi),
        f"{prefix}_net_clicks": np.stack([click_rows(cl) for cl in rec.net_clicks]),
        f"{prefix}_net_points": rec.net_points.cpu().numpy(),
        f"{prefix}_pos_mask_sum": rec.pos_mask_sum.astype(np.float32),
        f"{prefix}_neg_mask_sum": rec.neg_mask_sum.astype(np.float32),
        f"{prefix}_net_logits": rec.net_logits.float().cpu().numpy(),
        f"{prefix}_features_recomputed": np.array([rec.features_recomputed]),
        f"{prefix}_opt_data": np.asarray(ctrl.predictor.brs_x, dtype=np.float64),
    }
    out.update(_brs_arrays(prefix, rec))
    return out


def _replay_points(sc: Mapping[str, np.ndarray], prefix: str) -> list[np.ndarray] | None:
    key = f"{prefix}_brs_x"
    if key not in sc or len(sc[key]) == 0:
        return None
    return [np.asarray(row, dtype=np.float64) for row in sc[key]]


def _click(ctrl, frame, click: Click, sc, prefix: str) -> tuple[torch.Tensor, Arrays]:
    replay = _replay_points(sc, prefix)
    mask = ctrl.interact(frame, click.x, click.y, click.positive, replay=replay)
    return mask, _click_arrays(prefix, ctrl, mask)


def _labels(prev: torch.Tensor | None, target: int, mask: torch.Tensor) -> np.ndarray:
    merged = merge_click_mask(prev, target, mask)
    return merged.argmax(0)[0].cpu().numpy().astype(np.uint8)


def _aggregation_inputs(sc: Mapping[str, np.ndarray], cfg: dict):
    if "agg_prev_prob" not in sc:
        return None, 1
    prev = torch.from_numpy(np.asarray(sc["agg_prev_prob"], dtype=np.float32))
    target = int(sc["agg_tar_obj"][0]) if "agg_tar_obj" in sc else int(cfg.get("tar_obj", 1))
    return prev, target


def _redo_click(sc: Mapping[str, np.ndarray], cfg: dict, pad) -> Click | None:
    row = sc["redo_click"] if "redo_click" in sc else cfg.get("undo_redo")
    if row is None:
        return None
    # Like clicks_img, the redo click is in unpadded image coordinates (GUI mouse positions).
    y, x, positive = (float(v) for v in np.asarray(row, dtype=np.float64))
    left, _, top, _ = pad
    return Click(y + top, x + left, bool(positive))


def _session(ctrl: ClickController, frame, clicks, sc, prev, target: int) -> Arrays:
    """kN_* for every click of one session, and the aggregation after each (agg_*)."""
    out: Arrays = {}
    labels, merged = [], None
    for k, click in enumerate(clicks):
        mask, arrays = _click(ctrl, frame, click, sc, f"k{k}")
        out.update(arrays)
        if prev is not None:
            merged = merge_click_mask(prev, target, mask)
            labels.append(merged.argmax(0)[0].cpu().numpy().astype(np.uint8))
    if prev is not None:
        out["agg_prev_prob"] = prev.numpy()
        out["agg_np_masks"] = np.stack(labels)
        out["agg_interact_mask"] = merged.cpu().numpy()
    return out


def _undo_redo(ctrl: ClickController, frame, redo: Click, sc, prev, target: int) -> Arrays:
    """Undo the last click (undo_*), then click `redo` instead (redo_*)."""
    out: Arrays = {}
    restored = ctrl.undo()
    if restored is not None:
        out["undo_np_masks"] = restored[0, 0].cpu().numpy().astype(np.uint8)
        if prev is not None:
            out["undo_agg_np_masks"] = _labels(prev, target, restored)
    mask, arrays = _click(ctrl, frame, redo, sc, "redo")
    out.update(arrays)
    if prev is not None:
        out["redo_agg_np_masks"] = _labels(prev, target, mask)
    return out


def replay_scenario(sc: Mapping[str, np.ndarray], net: FBRSNetwork, device: torch.device) -> Arrays:
    """Every array of the scenario's reference that can be rebuilt from its inputs."""
    cfg = _config(sc)
    frame, pad = _frame(sc, device)
    clicks = _clicks(sc, cfg, pad)
    out: Arrays = {
        k: np.asarray(v) for k, v in sc.items() if k in _ECHOED or _ECHOED_PATTERN.fullmatch(k)
    }
    out["pad_lr_tb"] = np.array(pad, dtype=np.int64)
    out["frame_norm"] = frame.cpu().numpy()
    out["clicks"] = click_rows(clicks)
    out["clicks_img"] = click_rows([c.moved(c.y - pad[2], c.x - pad[0]) for c in clicks])
    out.update(_first_click_internals(net, frame, clicks[0], cfg.get("full_internals", True)))

    ctrl = ClickController(net)
    prev, target = _aggregation_inputs(sc, cfg)
    out.update(_session(ctrl, frame, clicks, sc, prev, target))
    redo = _redo_click(sc, cfg, pad)
    if redo is not None:
        out.update(_undo_redo(ctrl, frame, redo, sc, prev, target))

    frame_cpu = frame.cpu()
    out.update(zoom_units(sc, frame_cpu))
    out.update(distance_map_units(sc))
    out.update(click_square_units(sc))
    out.update(transform_chain_units(sc, frame_cpu))
    return out


def _read_scenario(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario file not found")
    try:
        return dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ScenarioError(f"{path}: not a readable .npz file ({exc})") from exc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", help="parity scenario .npz (e.g. shared/parity/fbrs_P1.npz)")
    ap.add_argument("--fbrs_model", required=True, help="f-BRS checkpoint (fbrs.pth)")
    ap.add_argument("--out", required=True, help="output .npz")
    ap.add_argument("--device", default="cpu", help="torch device (default cpu, as the reference)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    device = torch.device(args.device)
    try:
        sc = _read_scenario(Path(args.scenario))
        net = load_fbrs(args.fbrs_model, device)
        # As the GUI does: autograd off; the BRS objective turns it on locally.
        with torch.no_grad():
            out = replay_scenario(sc, net, device)
        sd = read_state_dict(args.fbrs_model)
    except (CheckpointError, ScenarioError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    out["weights_sha256_fbrs"] = np.array(state_dict_fingerprint(sd))
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out}: {len(out)} arrays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
