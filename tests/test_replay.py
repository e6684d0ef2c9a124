"""`python -m evaluation.replay`: P1 end to end, and scenarios in the same format we make."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from evaluation.replay import replay
from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames
from inference_core.session import Session
from interact.free import FreeInteraction
from interact.scribble import ScribbleInteraction
from model.build import load_networks
from tests.shared_assets import REPO, require
from util.tensor_util import unpad


def test_p1_end_to_end_through_the_command_line(synthetic_checkpoints, tmp_path):
    scenario = require("parity/P1.npz")
    out = tmp_path / "p1_ours.npz"
    ck = synthetic_checkpoints
    cmd = [
        sys.executable, "-m", "evaluation.replay", str(scenario), "--out", str(out),
        "--prop_model", str(ck["stcn"]), "--fusion_model", str(ck["fusion_stcn"]),
        "--s2m_model", str(ck["s2m"]),
    ]  # fmt: skip
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    check = [sys.executable, str(require("tools/check_parity.py")), str(scenario.parent), "P1"]
    result = subprocess.run([*check, str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    # every output of the original that is not an input must have been produced
    produced = set(np.load(out).files)
    for name in ("r2_prob", "r2_np_masks", "r2_fuse_t3_logits", "mod_q_seg", "r1_mem_frames"):
        assert name in produced


def test_missing_scenario_is_a_one_line_error(tmp_path):
    cmd = [sys.executable, "-m", "evaluation.replay", str(tmp_path / "nope.npz")]
    run = subprocess.run(
        [*cmd, "--out", str(tmp_path / "o.npz")], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "nope.npz" in run.stderr and "Traceback" not in run.stderr


# ---- a scenario we record ourselves: 3 objects, odd size, mem_freq 2, scribble and free rounds

ROUNDS = [
    ("scribble", 1, [(0, 1, [(5, 5), (20, 12), (30, 30)]), (1, 0, [(40, 40), (45, 10)]),
                     (2, 2, [(10, 35), (12, 36)]), (3, 3, [(50, 20), (52, 22)])]),
    ("free", 5, [(0, 2, [(3, 3), (25, 20)]), (1, 0, [(30, 30), (31, 31)])]),
    ("scribble", 3, [(0, 3, [(20, 20), (25, 25)]), (1, 1, [(8, 40)]), (2, 0, [(1, 1), (60, 40)])]),
]  # fmt: skip


def _points(strokes):
    return np.array([(sid, lab, x, y) for sid, lab, pts in strokes for x, y in pts], np.int64)


def _record(nets, frames: np.ndarray, num_objects: int, mem_freq: int) -> dict:
    """Run the rounds un-forced and save inputs plus outputs in the parity format."""
    cfg = InferenceConfig(mem_freq=mem_freq, prob_dtype="float32")
    session = Session(nets, ArrayFrames(frames), num_objects, cfg)
    meta = {"num_objects": num_objects, "mem_freq": mem_freq, "top_k": 20, "rounds": []}
    out = {"frames_rgb_u8": frames}
    with torch.inference_mode():
        for n, (kind, idx, strokes) in enumerate(ROUNDS, 1):
            p = f"r{n}_"
            meta["rounds"].append({"kind": kind, "idx": idx})
            out[p + "idx"] = np.array([idx])
            out[p + "stroke_points"] = _points(strokes)
            if kind == "scribble":
                prev = session.results.padded_mask(idx)
                out[p + "s2m_prev_mask"] = prev[None]
                inter = ScribbleInteraction(session.frames.size, num_objects, prev)
                for _, label, pts in strokes:
                    inter.add_stroke(label, pts)
                mask = inter.predict(nets.s2m, session.image(idx))
            else:
                prev = session.results.prob(idx)[1:, None]
                out[p + "free_prev_prob"] = prev
                out[p + "free_brush"] = np.array([4])
                inter = FreeInteraction(
                    unpad(torch.from_numpy(prev), session.pad).numpy(), session.pad
                )
                for _, label, pts in strokes:
                    inter.add_stroke(label, pts, 4)
                mask = inter.predict()
            out[p + "interact_mask"] = mask.numpy()
            session.interact(idx, mask)
            out[p + "prob"] = np.stack([session.results.prob(t) for t in range(len(frames))], 1)[
                :, :, None
            ]
            out[p + "np_masks"] = np.stack([session.results.mask(t) for t in range(len(frames))])
    out["r3_fuse_t2_tc_tr"] = np.array([1, 3])
    out["meta_json"] = np.array([json.dumps(meta)])
    return out


def test_recorded_scenario_replays_to_the_same_numbers(tmp_path):
    torch.manual_seed(3)
    nets = load_networks(None, None, None, "cpu")
    frames = np.random.default_rng(1).integers(0, 256, (7, 45, 61, 3), dtype=np.uint8)
    recorded = _record(nets, frames, num_objects=3, mem_freq=2)
    ours = replay(recorded, nets)
    for n in (1, 2, 3):
        p = f"r{n}_"
        np.testing.assert_allclose(
            ours[p + "interact_mask"], recorded[p + "interact_mask"], atol=1e-6
        )
        np.testing.assert_allclose(ours[p + "prob"], recorded[p + "prob"], atol=1e-5)
        assert np.array_equal(ours[p + "np_masks"], recorded[p + "np_masks"])
    assert ours["r2_free_drawn_map"].shape == (3, 1, 45, 61)
    assert list(ours["r3_fused_frames"]) == [4, 2]  # between 3 and its neighbours 5 and 1
    assert list(ours["r3_fuse_t2_tc_tr"]) == [1, 3]
    assert ours["r3_fuse_t2_dist"] == pytest.approx(np.array([[0.5, 0.5]]))
    assert list(ours["r3_certain_mem_frames"]) == [1, 3, 5]
    # round 2 (free at 5): forward 6 (end, no write); backward 4,3,2 to interaction 1: write at 3
    assert list(ours["r2_mem_frames"]) == [5, 3]
    assert list(ours["r2_fused_frames"]) == [4, 3, 2]
