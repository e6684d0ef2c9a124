"""Training on tiny generated data (CPU): stages, overfitting, resume, official weights, DDP."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import train
from model.build import FUSION, PROPAGATION, S2M, load_network
from tests.test_training_data import write_static, write_videos
from training.datasets import StaticClips, VideoClips, max_skip_at, sample_triplet
from training.losses import BootstrappedCE, class_target, wbg_logits
from training.models import FusionTrainModel, PropagationTrainModel, S2MTrainModel
from training.scribbles import ScribbleSamples

REPO = Path(__file__).resolve().parents[1]
COMMON = ["--crop", "64", "--batch_size", "2", "--log_every", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_data")
    write_static(root / "static")
    write_videos(root / "videos")
    return root


@pytest.fixture(scope="module")
def main_weights(data, tmp_path_factory) -> Path:
    """Two iterations of the main stage; its official weights feed the fusion stage."""
    out = tmp_path_factory.mktemp("main_run")
    args = ["--stage", "main", "--data", str(data / "videos"), "--output", str(out)]
    train.main([*args, "--iterations", "2", *COMMON])
    return out / "main_2.pth"


def test_bootstrapped_ce_schedule_and_topk():
    ce = BootstrappedCE(10, 20)
    assert ce.fraction(9) == 1.0 and ce.fraction(10) == 1.0
    assert ce.fraction(15) == pytest.approx(0.15 + 0.85 * 0.5)
    assert ce.fraction(20) == pytest.approx(0.15) and ce.fraction(21) == 0.15
    assert BootstrappedCE(10, 20, s2m_variant=True).fraction(20) == 0.15
    logits = torch.zeros(1, 2, 2, 5)
    logits[0, 1, 0] = 10.0  # row 0 confidently class 1; row 1 undecided
    target = torch.ones(1, 2, 5, dtype=torch.long)
    hard = ce(logits, target, it=100)  # top 15 % of 10 px = the 1 hardest pixel
    assert hard == pytest.approx(float(np.log(2)), abs=1e-4)
    assert ce(logits, target, it=0) < hard


def test_absent_second_object_is_two_class_ce():
    prob = torch.rand(1, 2, 4, 4)
    present = torch.tensor([[True, False]])
    target = class_target((prob > 0.5).float(), present)
    three = wbg_logits(prob, present)
    two = wbg_logits(prob[:, :1])
    ce = torch.nn.functional.cross_entropy
    assert ce(three, target) == pytest.approx(float(ce(two, target)), abs=1e-4)


def test_max_skip_curriculum_and_triplets():
    assert [max_skip_at(p) for p in (0, 0.1, 0.25, 0.45, 0.95)] == [5, 10, 15, 25, 5]
    assert max_skip_at(0.45, 0.2) == 5
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = sorted(sample_triplet(rng, 30, 10))
        assert 0 <= t[0] <= t[1] <= t[2] <= 29 and t[2] - t[0] <= 2 * 10 + 2


def test_datasets_shapes(data):
    clip = StaticClips((str(data / "static"),), 64)[0]
    assert clip["rgb"].shape == (3, 3, 64, 64) and clip["masks"].shape == (3, 2, 64, 64)
    assert clip["present"].tolist() == [True, False] and clip["masks"][:, 0].sum() > 0
    video = VideoClips((str(data / "videos"),), 64)[0]
    assert video["masks"].shape == (3, 2, 64, 64) and video["present"][0]
    s2m = ScribbleSamples((str(data / "static"),), 64)[0]
    assert s2m["rgb"].shape == (3, 64, 64) and (s2m["pos"].sum() + s2m["neg"].sum()) > 0


def _overfit(model, batch: dict, names: list[str], steps: int, lr: float) -> tuple[float, float]:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss, _ = model(*(batch[n] for n in names), 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses[0], losses[-1]


def _collate(dataset, n: int) -> dict:
    items = [dataset[i % len(dataset)] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_propagation_overfits_a_fixed_batch(data):
    torch.manual_seed(0)
    np.random.seed(0)
    batch = _collate(VideoClips((str(data / "videos"),), 64), 1)
    model = PropagationTrainModel(PROPAGATION.factory(), BootstrappedCE(20_000, 70_000)).eval()
    first, last = _overfit(model, batch, ["rgb", "masks", "present"], 15, 1e-4)
    assert last < 0.7 * first, (first, last)


def test_s2m_overfits_a_fixed_batch(data):
    torch.manual_seed(0)
    np.random.seed(0)
    batch = _collate(ScribbleSamples((str(data / "static"),), 64), 2)
    model = S2MTrainModel(S2M.factory(), BootstrappedCE(10_000, 30_000, s2m_variant=True))
    first, last = _overfit(model.train(), batch, ["rgb", "prev", "pos", "neg", "gt"], 12, 1e-4)
    assert last < 0.7 * first, (first, last)


def test_fusion_overfits_a_fixed_batch():
    torch.manual_seed(0)
    masks = torch.zeros(2, 2, 32, 32)
    masks[:, 0, 4:16, 4:16] = 1
    masks[:, 1, 18:28, 10:30] = 1
    batch = {
        "rgb": torch.randn(2, 3, 32, 32),
        "seg1": masks.roll(3, -1),
        "seg2": masks.roll(-3, -2),
        "attn": torch.rand(2, 2, 2, 32, 32),
        "dist": torch.rand(2, 2),
        "masks": masks,
        "present": torch.tensor([[True, True], [True, False]]),
    }
    model = FusionTrainModel(FUSION.factory(), BootstrappedCE(0, 0)).eval()
    names = ["rgb", "seg1", "seg2", "attn", "dist", "masks", "present"]
    first, last = _overfit(model, batch, names, 40, 1e-3)
    assert last < 0.7 * first, (first, last)


def test_static_stage_resumes_and_writes_official_weights(data, tmp_path):
    args = ["--stage", "static", "--data", str(data / "static"), "--output", str(tmp_path)]
    train.main([*args, "--iterations", "2", "--save_every", "2", *COMMON])
    state = torch.load(tmp_path / "static_checkpoint.pth", weights_only=True)
    assert state["iteration"] == 2 and set(state) >= {"network", "optimizer", "scheduler"}
    result = train.train(
        train.parse_args(
            [
                *args,
                "--iterations",
                "3",
                *COMMON,
                "--resume",
                str(tmp_path / "static_checkpoint.pth"),
            ]
        )
    )
    assert (result.start_iteration, result.end_iteration) == (2, 3)
    sd = torch.load(tmp_path / "static_3.pth", weights_only=True)
    assert set(sd) == set(PROPAGATION.factory().state_dict())  # bare, no "module." prefix
    load_network(PROPAGATION, tmp_path / "static_3.pth")  # strict load raises on any mismatch


def test_s2m_stage_runs(data, tmp_path):
    args = ["--stage", "s2m", "--data", str(data / "static"), "--output", str(tmp_path)]
    train.main([*args, "--iterations", "2", *COMMON])
    load_network(S2M, tmp_path / "s2m_2.pth")


def test_main_then_fusion_stage(data, main_weights, tmp_path):
    load_network(PROPAGATION, main_weights)
    args = ["--stage", "fusion", "--data", str(data / "videos"), "--output", str(tmp_path)]
    train.main([*args, "--iterations", "2", "--prop_model", str(main_weights), *COMMON])
    pngs = list((tmp_path / "fusion_data" / "run0").rglob("*.png"))
    # 2 videos x references {0, 3} x 2 objects x 6 frames.
    assert len(pngs) == 2 * 2 * 2 * 6
    load_network(FUSION, tmp_path / "fusion_2.pth")


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not installed")
def test_two_process_gloo_run_agrees(data, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        "torchrun",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(29500 + os.getpid() % 1000),
        str(REPO / "train.py"),
        "--stage",
        "static",
        "--data",
        str(data / "static"),
        "--output",
        str(tmp_path),
        "--iterations",
        "2",
        "--device",
        "cpu",
        "--crop",
        "64",
        "--batch_size",
        "1",
    ]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    prints = [(tmp_path / f"fingerprint_rank{r}.txt").read_text() for r in (0, 1)]
    assert prints[0] == prints[1]
    load_network(PROPAGATION, tmp_path / "static_2.pth")


def test_static_clips_always_show_the_object_in_the_first_frame(data):
    clips = StaticClips((str(data / "static"),), 64)
    empty = 0
    for seed in range(60):  # seeded: the same 60 samples every run
        np.random.seed(seed)
        clip = clips[seed % len(clips)]
        empty += int(clip["masks"][0, 0].sum() == 0)
    assert empty == 0
