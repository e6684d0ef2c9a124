"""J and F against their definitions, the score aggregation, and eval_semi.py end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import eval_semi
from evaluation.metrics import (
    ScoreTable,
    boundary_map,
    boundary_measure,
    boundary_tolerance_px,
    frame_scores,
    region_similarity,
)
from model.build import FUSION, PROPAGATION, S2M
from util.mask_io import read_index_mask, write_index_mask

# ---- a small DAVIS-format set (also used by test_eval_interactive.py) ----------------------------

SEQUENCES = {"alpha": ((64, 96), 2, 2), "beta": ((60, 90), 1, 1)}  # (H, W), objects, scribbles
NUM_FRAMES = 5


def _object_masks(size: tuple[int, int], num_objects: int, t: int) -> np.ndarray:
    """Rectangles that drift right by 3 px per frame; object k sits in the k-th horizontal band."""
    h, w = size
    mask = np.zeros(size, np.uint8)
    band = h // (num_objects + 1)
    for k in range(1, num_objects + 1):
        top = band * k - band // 2
        mask[top : top + band, 10 + 3 * t : 10 + 3 * t + w // 3] = k
    return mask


def _scribble_file(name: str, mask: np.ndarray, frame: int, num_objects: int) -> dict:
    """The official format: per frame a list of strokes, paths in [0, 1] image fractions."""
    h, w = mask.shape
    strokes = []
    for k in range(1, num_objects + 1):
        ys, xs = np.nonzero(mask == k)
        y = float(ys.mean())
        path = [[x / w, y / h] for x in np.linspace(xs.min() + 2, xs.max() - 2, 8)]
        strokes.append({"path": path, "object_id": k, "start_time": 0, "end_time": 0})
    scribbles = [[] for _ in range(NUM_FRAMES)]
    scribbles[frame] = strokes
    return {"sequence": name, "scribbles": scribbles}


def make_davis_set(root: Path) -> Path:
    """Two short generated sequences in the DAVIS-2017 layout (names unknown to the package)."""
    rng = np.random.default_rng(0)
    for name, (size, num_objects, num_scribbles) in SEQUENCES.items():
        for t in range(NUM_FRAMES):
            mask = _object_masks(size, num_objects, t)
            image = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
            image[mask > 0] = 200 + 20 * mask[mask > 0, None]
            jpeg = root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg"
            jpeg.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(jpeg, quality=95)
            write_index_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", mask)
        for i in range(1, num_scribbles + 1):
            frame = (2 * i) % NUM_FRAMES
            doc = _scribble_file(name, _object_masks(size, num_objects, frame), frame, num_objects)
            path = root / "Scribbles" / name / f"{i:03d}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc))
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("\n".join(SEQUENCES) + "\n")
    (sets / "train.txt").write_text("")
    return root


def random_checkpoints(folder: Path) -> dict[str, Path]:
    """Random-weight checkpoints of the three networks, saved like official ones."""
    torch.manual_seed(0)
    paths = {}
    for spec in (PROPAGATION, FUSION, S2M):
        paths[spec.filename] = folder / spec.filename
        torch.save(spec.factory().state_dict(), paths[spec.filename])
    return paths


# ---- J -------------------------------------------------------------------------------------------


def _square(size=(40, 40), top=10, left=10, side=10) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_region_similarity_perfect_empty_and_known_overlap():
    a = _square()
    assert region_similarity(a, a) == 1.0
    assert region_similarity(a, np.zeros_like(a)) == 0.0
    assert region_similarity(np.zeros_like(a), a) == 0.0
    assert region_similarity(np.zeros_like(a), np.zeros_like(a)) == 1.0  # absent from both
    # Shifted by 5 columns: 50 shared pixels, 150 in the union.
    assert region_similarity(a, _square(left=15)) == pytest.approx(50 / 150)


# ---- F -------------------------------------------------------------------------------------------


def test_boundary_map_is_the_one_pixel_rim_seen_from_the_right_and_below():
    mask = _square(size=(8, 8), top=2, left=2, side=3)  # rows/cols 2..4
    edge = boundary_map(mask)
    expected = np.zeros((8, 8), bool)
    expected[1, 1:5] = True  # the pixel above differs from its lower/lower-right neighbour
    expected[1:5, 1] = True
    expected[4, 1:5] = True  # the object's last row differs from the row below
    expected[1:5, 4] = True
    assert np.array_equal(edge, expected)
    # The image border is no boundary: a full mask has none.
    assert not boundary_map(np.ones((5, 5), bool)).any()


def test_boundary_tolerance_is_ceil_of_0008_diagonal():
    assert boundary_tolerance_px((480, 854)) == math.ceil(0.008 * math.hypot(480, 854)) == 8
    assert boundary_tolerance_px((40, 40)) == 1


def test_boundary_measure_perfect_empty_and_shift():
    a = _square(size=(100, 100), top=30, left=30, side=40)  # tolerance ceil(1.13) = 2 px
    assert boundary_measure(a, a) == 1.0
    assert boundary_measure(a, np.zeros_like(a)) == 0.0
    assert boundary_measure(np.zeros_like(a), np.zeros_like(a)) == 1.0
    # A shift within the tolerance matches every boundary pixel.
    assert boundary_measure(a, np.roll(a, 2, axis=1)) == 1.0
    # Shifted 10 px right (beyond the tolerance): each rim (a 41 x 41 outline, 160 pixels)
    # keeps its top and bottom rows where the other's rows run within 2 px (41 - 10 + 2 = 33
    # columns each), plus 2 pixels at each end of the one vertical side that those rows cross.
    shifted = np.roll(a, 10, axis=1)
    assert boundary_map(a).sum() == boundary_map(shifted).sum() == 160
    matched = 2 * 33 + 2 * 2  # precision = recall by symmetry
    assert boundary_measure(a, shifted) == pytest.approx(matched / 160)


def test_measures_agree_with_davisinteractive_when_installed():
    pytest.importorskip("davisinteractive")
    from evaluation import davis_compat

    davis_compat.apply()
    from davisinteractive.metrics.jaccard import batched_f_measure, batched_jaccard

    rng = np.random.default_rng(1)
    truth = rng.random((3, 48, 64)) > 0.7
    pred = rng.random((3, 48, 64)) > 0.6
    truth[:, 10:30, 10:40], pred[:, 12:32, 15:45] = True, True
    ours = [frame_scores(truth[i].astype(int), pred[i].astype(int), 1) for i in range(3)]
    j_ref = batched_jaccard(truth, pred, nb_objects=1)
    f_ref = batched_f_measure(truth, pred, nb_objects=1)
    assert np.allclose([j[0] for j, _ in ours], j_ref)
    assert np.allclose([f[0] for _, f in ours], f_ref)


def test_frame_scores_per_object_and_void():
    truth = np.zeros((20, 20), np.uint8)
    truth[2:8, 2:8], truth[12:18, 12:18] = 1, 2
    pred = truth.copy()
    pred[12:18, 12:18] = 0  # object 2 missed entirely
    j, f = frame_scores(truth, pred, 2)
    assert j.tolist() == [1.0, 0.0] and f.tolist() == [1.0, 0.0]
    # Void pixels count for neither mask: predicting object 1 there costs nothing.
    truth_void = truth.copy()
    truth_void[0:2, :] = 255
    pred_void = pred.copy()
    pred_void[0:2, :] = 1
    j_void, _ = frame_scores(truth_void, pred_void, 2, void_id=255)
    assert j_void[0] == 1.0


def test_score_table_averages_objects_per_sequence_and_overall():
    table = ScoreTable()
    one = table.add_sequence("one", [[1.0], [0.5]], [[1.0], [1.0]])  # 1 object, 2 frames
    assert (one.j, one.f, one.jf) == (0.75, 1.0, 0.875)
    two = table.add_sequence("two", [[0.0, 1.0]], [[0.0, 0.0]])  # 2 objects, 1 frame
    assert (two.j, two.num_objects) == (0.5, 2)
    overall = table.overall()  # objects 0.75, 0.0, 1.0
    assert overall.j == pytest.approx(1.75 / 3) and overall.num_objects == 3
    with pytest.raises(ValueError):
        ScoreTable().overall()


# ---- eval_semi.py --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def davis_set(tmp_path_factory) -> Path:
    return make_davis_set(tmp_path_factory.mktemp("davis"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    return random_checkpoints(tmp_path_factory.mktemp("weights"))


def test_eval_semi_writes_masks_and_scores(davis_set, weights, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--images", str(davis_set), "--masks", str(davis_set), "--output", str(out),
            "--device", "cpu", "--prop_model", str(weights["stcn.pth"]),
            "--fusion_model", str(weights["fusion_stcn.pth"])]  # fmt: skip
    assert eval_semi.main(argv) == 0
    for name, (size, _, _) in SEQUENCES.items():
        files = sorted((out / name).glob("*.png"))
        assert [p.stem for p in files] == [f"{t:05d}" for t in range(NUM_FRAMES)]
        assert read_index_mask(files[-1]).shape == size  # the source resolution
        with Image.open(files[1]) as image:
            assert image.mode == "P"
    results = json.loads((out / "results.json").read_text())
    assert [r["sequence"] for r in results] == [*SEQUENCES, "overall"]
    assert all(0.0 <= r[key] <= 1.0 for r in results for key in ("J", "F", "J&F"))
    assert (out / "results.csv").read_text().startswith("sequence,objects,J,F,J&F")
    assert "overall" in capsys.readouterr().out


def test_eval_semi_one_line_errors(tmp_path, weights, capsys):
    missing = tmp_path / "nowhere"
    argv = ["--images", str(missing), "--masks", str(missing), "--output", str(tmp_path / "o")]
    assert eval_semi.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere" in err and "Traceback" not in err
