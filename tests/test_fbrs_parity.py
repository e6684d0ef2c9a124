"""f-BRS parity (shared/parity/FBRS.md): replay fbrs_P1/fbrs_P2 from their inputs only and
compare every reference array with the shared checker. BRS clicks replay the recorded L-BFGS
evaluation points; everything else is recomputed."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from interact.replay_clicks import main as replay_main
from tests.shared_assets import REPO, require, write_synthetic_checkpoint

# What a scenario keeps once its reference outputs are removed.
INPUTS = re.compile(
    r"frame_rgb_u8|frame_idx|weights_salt|meta_json|clicks|clicks_img|(k\d+|redo)_brs_x"
    r"|agg_prev_prob|agg_tar_obj|redo_click|zu_prev_prob|zu_clicks|zu_boxes_in"
    r"|dm\d+_points|dm\d+_hw_norm|cm_clicks|cm_hw|tc_clicks"
)


@pytest.fixture(scope="module")
def fbrs_weights(tmp_path_factory):
    require("checkpoints/schema/fbrs.json")
    return write_synthetic_checkpoint("fbrs", tmp_path_factory.mktemp("w") / "fbrs.pth")


@pytest.mark.parametrize("scenario", ["fbrs_P1", "fbrs_P2"])
def test_replay_from_inputs_passes_the_checker(scenario, fbrs_weights, tmp_path):
    ref_path = require(f"parity/{scenario}.npz")
    checker = require("tools/check_parity.py")
    ref = np.load(ref_path)
    inputs = tmp_path / f"{scenario}_inputs.npz"
    np.savez(inputs, **{k: ref[k] for k in ref.files if INPUTS.fullmatch(k)})
    out = tmp_path / "out.npz"
    cmd = [sys.executable, "-m", "interact.replay_clicks", str(inputs)]
    cmd += ["--fbrs_model", str(fbrs_weights), "--out", str(out)]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    check = [sys.executable, str(checker), str(ref_path.parent), scenario, str(out)]
    result = subprocess.run(check + ["--require-all"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]


def test_missing_scenario_is_a_one_line_error(tmp_path, capsys):
    code = replay_main([str(tmp_path / "none.npz"), "--fbrs_model", "x", "--out", "o.npz"])
    err = capsys.readouterr().err
    assert code == 2 and "not found" in err and err.count("\n") == 1


def test_bad_checkpoint_is_a_one_line_error(tmp_path, capsys):
    scenario = tmp_path / "s.npz"
    np.savez(scenario, frame_rgb_u8=np.zeros((16, 16, 3), np.uint8), clicks=np.ones((1, 3)))
    bad = tmp_path / "stcn.pth"
    torch.save({"key_encoder.conv1.weight": torch.zeros(64, 3, 7, 7)}, bad)
    code = replay_main([str(scenario), "--fbrs_model", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "looks like the STCN" in err and err.count("\n") == 1
