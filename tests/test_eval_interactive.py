"""The DAVIS interactive evaluation end to end, the interaction schedule, and the CLI's errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("davisinteractive")

import eval_interactive_davis  # noqa: E402
from evaluation import davis_compat  # noqa: E402
from evaluation.dataset import DavisFolder, DavisLayoutError, describe_sequence  # noqa: E402
from evaluation.davis_session import DavisProcessor, scribbled_frame  # noqa: E402
from inference_core.frames import ArrayFrames  # noqa: E402
from model.build import load_networks  # noqa: E402
from tests.test_eval_metrics import (  # noqa: E402
    NUM_FRAMES,
    SEQUENCES,
    make_davis_set,
    random_checkpoints,
)
from util.mask_io import read_index_mask  # noqa: E402

MAX_INTERACTIONS = 3  # reaches the first propagation (interaction 2)


@pytest.fixture(scope="module")
def davis_set(tmp_path_factory) -> Path:
    return make_davis_set(tmp_path_factory.mktemp("davis"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    return random_checkpoints(tmp_path_factory.mktemp("weights"))


def _weight_args(weights: dict[str, Path]) -> list[str]:
    return ["--prop_model", str(weights["stcn.pth"]), "--fusion_model",
            str(weights["fusion_stcn.pth"]), "--s2m_model", str(weights["s2m.pth"])]  # fmt: skip


def test_end_to_end_report_summary_and_every_mask(davis_set, weights, tmp_path, capsys):
    out = tmp_path / "out"
    # --davis may also be the parent holding trainval/, as the original expected.
    parent = tmp_path / "DAVIS2017"
    parent.mkdir()
    (parent / "trainval").symlink_to(davis_set, target_is_directory=True)
    argv = ["--davis", str(parent), "--output", str(out), "--save_mask", "--device", "cpu",
            "--max_interactions", str(MAX_INTERACTIONS), *_weight_args(weights)]  # fmt: skip
    assert eval_interactive_davis.main(argv) == 0
    printed = capsys.readouterr().out
    assert "AUC-J&F:" in printed and "J&F@60s:" in printed

    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["auc"] <= 1.0
    assert 0.0 <= summary["metric_at_threshold"]["J_AND_F"] <= 1.0
    assert len(summary["curve"]["time"]) == MAX_INTERACTIONS + 2  # (0, 0) and the timeout added

    reports = [p for p in out.glob("result_*.csv") if not p.name.endswith(".tmp.csv")]
    assert len(reports) == 1
    import pandas as pd

    report = pd.read_csv(reports[0], index_col=0)
    samples = sum(n for _, _, n in SEQUENCES.values())
    rows = sum(n * objects * NUM_FRAMES for _, objects, n in SEQUENCES.values())
    assert len(report) == rows * MAX_INTERACTIONS  # no sample timed out
    assert report["sequence"].nunique() == len(SEQUENCES)
    for column in ("jaccard", "contour", "j_and_f"):
        assert report[column].between(0, 1).all()

    saved = sorted((out / "masks").glob("*/*/*"))
    assert len(saved) == samples * MAX_INTERACTIONS  # every interaction, the last one included
    for name, (size, num_objects, num_scribbles) in SEQUENCES.items():
        for i in range(1, num_scribbles + 1):
            last = out / "masks" / name / f"{i:03d}" / f"{MAX_INTERACTIONS:02d}"
            files = sorted(last.glob("*.png"))
            assert [p.stem for p in files] == [f"{t:05d}" for t in range(NUM_FRAMES)]
            mask = read_index_mask(files[0])
            assert mask.shape == size and mask.max() <= num_objects


def test_package_metadata_is_restored(davis_set):
    from davisinteractive.dataset import Davis

    assert "alpha" not in Davis.dataset and "alpha" not in Davis.sets["val"]
    info = describe_sequence(DavisFolder.locate(davis_set), "alpha")
    assert (info.num_frames, info.num_objects, info.image_size, info.num_scribbles) == (
        NUM_FRAMES, 2, (96, 64), 2,
    )  # fmt: skip


# ---- the schedule, on one processor --------------------------------------------------------------


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return load_networks(None, None, None, "cpu")


def _processor(nets) -> DavisProcessor:
    frames = np.random.default_rng(0).integers(0, 255, (NUM_FRAMES, 60, 90, 3), dtype=np.uint8)
    return DavisProcessor(nets, ArrayFrames(frames), num_objects=1)


def _scribble(frame: int | None) -> dict:
    strokes = [[] for _ in range(NUM_FRAMES)]
    if frame is not None:
        path = [[0.2, 0.5], [0.5, 0.5], [0.8, 0.5]]
        strokes[frame] = [{"path": path, "object_id": 1, "start_time": 0, "end_time": 0}]
    return {"sequence": "s", "scribbles": strokes}


def test_schedule_updates_on_0_1_3_4_6_and_propagates_on_2_5_7(nets):
    davis_compat.apply()
    processor = _processor(nets)
    propagated = []
    for count in range(8):
        masks, candidates = processor.interact(_scribble(1 + count % 3))
        assert masks.shape == (NUM_FRAMES, 60, 90) and masks.dtype == np.uint8
        if candidates is None:
            propagated.append(count)
        else:
            assert candidates == [1 + count % 3]  # the robot stays on the interacted frame
    assert propagated == [2, 5, 7]
    # Each propagation starts from the frame scribbled at that interaction.
    assert processor.session.interacted == [1 + count % 3 for count in (2, 5, 7)]


def test_empty_scribbles_keep_the_schedule(nets):
    davis_compat.apply()
    processor = _processor(nets)
    masks, candidates = processor.interact(_scribble(None))  # nothing known yet
    assert candidates is None and not masks.any()
    processor.interact(_scribble(2))  # interaction 1: updates frame 2
    before = processor.masks()
    masks, candidates = processor.interact(_scribble(None))  # interaction 2: propagates frame 2
    assert candidates is None and processor.session.interacted == [2]
    assert np.array_equal(masks[2], before[2])  # the refined frame is what was propagated
    assert scribbled_frame(_scribble(None)) is None and scribbled_frame(_scribble(4)) == 4


# ---- the command line ----------------------------------------------------------------------------


def test_cli_missing_folder_is_one_line(tmp_path, capsys):
    code = eval_interactive_davis.main(["--davis", str(tmp_path / "nope"), "--output", "o"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "nope" in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_cli_missing_weights_names_file_and_downloader(davis_set, tmp_path, capsys):
    argv = ["--davis", str(davis_set), "--output", str(tmp_path / "o"), "--device", "cpu",
            "--prop_model", str(tmp_path / "absent.pth")]  # fmt: skip
    assert eval_interactive_davis.main(argv) == 2
    err = capsys.readouterr().err
    assert "absent.pth" in err and "python download_model.py" in err


def test_incomplete_sequence_is_reported(davis_set, tmp_path):
    broken = tmp_path / "broken"
    (broken / "JPEGImages" / "480p" / "x").mkdir(parents=True)
    (broken / "Annotations" / "480p" / "x").mkdir(parents=True)
    (broken / "Scribbles").mkdir()
    (broken / "ImageSets").mkdir()
    folder = DavisFolder.locate(broken)
    with pytest.raises(DavisLayoutError, match="no annotation PNGs"):
        describe_sequence(folder, "x")
    with pytest.raises(DavisLayoutError, match="val.txt"):
        folder.list_sequences("val")
