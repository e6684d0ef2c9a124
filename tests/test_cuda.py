"""The CUDA paths: parity replay in fp32, the fast mode (fp16 autocast) against fp32, the GUI.

Tests marked `cuda` need a CUDA device and skip with a reason without one; `bench/gpu_check.sh`
runs them (`pytest -m cuda`) on a GPU machine. The unmarked tests at the end check, on any
machine, what of the device plumbing needs no GPU, and that the clip and weights the fp16 test
compares on give non-trivial masks (run here, on the CPU, by the same code).
"""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames
from inference_core.session import Session
from model.build import FUSION, load_network, load_networks
from model.precision import choose_precision
from tests.shared_assets import REPO, require
from util.device import inference_context

HAS_CUDA = torch.cuda.is_available()


def cuda_test(fn):
    """Mark `fn` as a CUDA test that skips with a reason where there is no CUDA device."""
    skip = pytest.mark.skipif(
        not HAS_CUDA, reason="no CUDA device (torch.cuda.is_available() is False)"
    )
    return pytest.mark.cuda(skip(fn))


# ---- (a) the parity replay, fp32 on CUDA ------------------------------------------------------


@cuda_test
def test_p1_parity_replay_on_cuda_fp32(synthetic_checkpoints, tmp_path):
    """The README's parity commands with --device cuda: every array within check_parity's
    default tolerances (the same ones the CPU replay meets)."""
    scenario = require("parity/P1.npz")
    checker = require("tools/check_parity.py")
    pytest.importorskip("platformdirs", reason="platformdirs (requirements.txt) is not installed")
    out = tmp_path / "p1_cuda.npz"
    ck = synthetic_checkpoints
    cmd = [
        sys.executable, "-m", "evaluation.replay", str(scenario), "--out", str(out),
        "--prop_model", str(ck["stcn"]), "--fusion_model", str(ck["fusion_stcn"]),
        "--s2m_model", str(ck["s2m"]), "--device", "cuda",
    ]  # fmt: skip
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    check = [sys.executable, str(checker), str(scenario.parent), "P1", str(out)]
    result = subprocess.run(check, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    produced = set(np.load(out).files)
    for name in ("r2_prob", "r2_np_masks", "r2_fuse_t3_logits", "mod_q_seg", "r1_mem_frames"):
        assert name in produced


# ---- (b) the fast mode on CUDA agrees with fp32 -----------------------------------------------

T, H, W = 6, 80, 112  # the generated clip: a smooth texture sliding right, two regions on it


def two_object_clip() -> tuple[np.ndarray, np.ndarray]:
    """(frames (T,H,W,3) uint8 RGB, true index masks (T,H,W) uint8, labels 0..2): every frame
    is the first rolled 3 px further right, masks too."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 255, (8, 12, 3), dtype=np.uint8)
    texture = cv2.resize(coarse, (W, H), interpolation=cv2.INTER_LINEAR)
    first = np.zeros((H, W), np.uint8)
    first[4:76, 4:54], first[16:78, 60:108] = 1, 2
    frames = np.stack([np.roll(texture, 3 * t, axis=1) for t in range(T)])
    truth = np.stack([np.roll(first, 3 * t, axis=1) for t in range(T)])
    return frames, truth


def propagate_clip(checkpoints: dict, device: str, fast: bool):
    """Two rounds: the true masks of the first frame (propagation alone), then of the last
    (propagation with fusion) -> (soft results after round 1, after round 2, each
    (T, K+1, H, W) float32, and the Session)."""
    frames, truth = two_object_clip()
    nets = load_networks(
        checkpoints["stcn"], checkpoints["fusion_stcn"], checkpoints["s2m"], device, fast=fast
    )
    cfg = InferenceConfig(prob_dtype="float32", fast=fast)
    session = Session(nets, ArrayFrames(frames), 2, cfg)
    rounds = []
    for t in (0, T - 1):
        one_hot = torch.from_numpy(np.stack([truth[t] == k for k in range(3)])).float()
        session.interact(t, torch.nn.functional.pad(one_hot[:, None], session.pad))
        rounds.append(np.stack([session.results.prob(t) for t in range(T)]))
    return rounds[0], rounds[1], session


def assert_non_trivial(probs: np.ndarray) -> None:
    """Every propagated frame shows the background and both objects (synthetic weights favour
    the background after one round: about 94 % of the pixels here, as in test_speed_modes)."""
    for mask in probs[1:].argmax(1):
        assert len(np.unique(mask)) == 3, np.unique(mask)


def confident(probs: np.ndarray) -> np.ndarray:
    """Pixels whose two most likely labels are more than 0.05 apart (synthetic weights leave
    near ties, where any rounding flips the argmax; tests/test_speed_modes.py does the same)."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) > 0.05


@cuda_test
def test_fast_fp16_propagation_agrees_with_fp32_on_cuda(synthetic_checkpoints):
    ref1, ref2, ref_session = propagate_clip(synthetic_checkpoints, "cuda", fast=False)
    fast1, fast2, fast_session = propagate_clip(synthetic_checkpoints, "cuda", fast=True)
    assert ref_session.nets.precision.autocast is None
    assert fast_session.nets.precision.autocast == torch.float16
    assert next(fast_session.nets.prop.parameters()).device.type == "cuda"
    assert not np.array_equal(fast1, ref1)  # fp16 really ran: results moved
    # One round (propagation alone): >= 99 % of the mask pixels equal, as the issue states it.
    assert_non_trivial(ref1)
    agree = (fast1[1:].argmax(1) == ref1[1:].argmax(1)).mean()
    assert agree >= 0.99, f"fast agrees with fp32 on {agree:.4%} of the propagated pixels"
    assert float(np.abs(fast1 - ref1).mean()) < 0.01
    # After fusion: on the pixels fp32 is confident about, and the soft results close.
    sure = confident(ref2)[1:-1]
    agree = (fast2[1:-1].argmax(1) == ref2[1:-1].argmax(1))[sure].mean()
    assert agree >= 0.99, f"after fusion: {agree:.4%} of the confident pixels agree"
    assert float(np.abs(fast2 - ref2).mean()) < 0.01


# ---- (c) the GUI worker on CUDA, offscreen ----------------------------------------------------


@cuda_test
@pytest.mark.parametrize("mode", ["fp32", "fast"])
def test_gui_annotates_propagates_and_saves_on_cuda(mode, request, tmp_path):
    pytest.importorskip("PyQt5", reason="PyQt5 is not installed")
    pytest.importorskip("pytestqt", reason="pytest-qt is not installed")
    from tests.gui_helpers import draw_propagate_and_save, open_window

    qtbot = request.getfixturevalue("qtbot")
    video, weights = request.getfixturevalue("gui_assets")
    out = tmp_path / "out"
    extra = ["--fast"] if mode == "fast" else []
    window = open_window(
        qtbot, video, weights, out, "--num_objects", "2", "--device", "cuda", *extra
    )  # the last --device wins over open_window's "cpu"
    session = window.c.project.session
    assert session.device.type == "cuda"
    assert next(session.nets.prop.parameters()).device.type == "cuda"
    assert session.nets.precision.autocast == (torch.float16 if mode == "fast" else None)
    draw_propagate_and_save(qtbot, window, out)


# ---- (d) what of the device plumbing runs without a GPU ---------------------------------------


def test_cuda_precisions_chosen_without_a_gpu():
    fp32 = choose_precision("cuda")
    assert (fp32.dtype, fp32.autocast, fp32.channels_last, fp32.fast) == (
        torch.float32, None, True, False,
    )  # fmt: skip
    fast = choose_precision(torch.device("cuda:0"), fast=True)
    assert (fast.dtype, fast.autocast, fast.channels_last, fast.fast) == (
        torch.float32, torch.float16, True, True,
    )  # fmt: skip
    assert "fp16" in fast.describe()


def test_inference_context_autocasts_on_the_device_it_is_given(monkeypatch):
    calls = []
    real = torch.autocast

    def recording(device_type, dtype=None, **kw):
        calls.append((device_type, dtype))
        return real("cpu", dtype=torch.bfloat16)  # a real context, usable without CUDA

    monkeypatch.setattr(torch, "autocast", recording)
    with inference_context(torch.device("cuda:0"), torch.float16):
        assert torch.is_inference_mode_enabled()
    assert calls == [("cuda", torch.float16)]
    with inference_context(torch.device("cuda"), None):
        assert torch.is_inference_mode_enabled()
    assert calls == [("cuda", torch.float16)]  # fp32: no autocast at all


def test_inference_context_enters_cpu_autocast():
    with inference_context(torch.device("cpu"), torch.bfloat16):
        assert torch.is_inference_mode_enabled()
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu") and not torch.is_inference_mode_enabled()


def test_networks_prepared_for_cuda_fast_keep_fp32_channels_last_weights():
    """Under fp16 autocast the weights stay float32 (autocast casts per op), laid out NHWC."""
    net = load_network(FUSION, None, "cpu", choose_precision("cuda", fast=True))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.dtype == torch.float32 for c in convs)
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # folded


def test_the_fp16_comparison_clip_gives_non_trivial_masks(synthetic_checkpoints):
    """The premise of the CUDA fp16 test, checked by the same code on the CPU in fp32."""
    first, second, session = propagate_clip(synthetic_checkpoints, "cpu", fast=False)
    _, truth = two_object_clip()
    assert np.array_equal(session.results.mask(0), truth[0])
    assert np.array_equal(session.results.mask(T - 1), truth[-1])
    assert session.interacted == [0, T - 1]
    assert_non_trivial(first)
    sure = confident(second)[1:-1]
    assert sure.mean() > 0.3, sure.mean()  # enough confident pixels to compare after fusion


def test_gpu_check_script_parses():
    script = REPO / "bench" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
