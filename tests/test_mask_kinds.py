"""Mask files read as their authors meant, on the headless command and the GUI's opening path.

Kinds that broke comparable tools: a void band (255) as in DAVIS/VOC ground truth, object ids
that are not contiguous (1, 3, 7), and palette PNGs whose palette is not DAVIS's (an editor's
adaptive palette: mapped by colour; colours outside DAVIS's: refused, naming the file).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from tests.gui_helpers import write_weights
from util.mask_io import MaskReadError, read_index_mask
from util.palette import DAVIS_PALETTE
from workflow.headless import main as headless_main
from workflow.open_project import StartupOptions, open_project
from workflow.state import read_state

H, W, T = 48, 64, 4


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("mask_kinds")
    frames = root / "frames"
    frames.mkdir()
    rng = np.random.default_rng(3)
    for t in range(T):
        image = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
        Image.fromarray(image).save(frames / f"{t:05d}.jpg", quality=95)
    return frames, write_weights(root)


def _objects(*ids: int) -> np.ndarray:
    """Side-by-side rectangles with the given ids."""
    mask = np.zeros((H, W), np.uint8)
    for n, k in enumerate(ids):
        mask[8:40, 4 + 20 * n : 18 + 20 * n] = k
    return mask


def _save_palette(path, indices: np.ndarray, palette: np.ndarray) -> None:
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette.astype(np.uint8).tobytes())
    image.save(path)


def _void_band(folder):
    mask = _objects(1, 2)
    band = np.zeros_like(mask, bool)
    band[6:42, 2:40] = True
    mask[band & (mask == 0)] = 255  # a void band around the objects, as in DAVIS
    for t in (0, 2):
        _save_palette(folder / f"{t:05d}.png", mask, DAVIS_PALETTE)
    return {"ids": [1, 2], "given": {0: np.where(mask == 255, 0, mask)}}


def _noncontiguous(folder):
    mask = _objects(1, 3, 7)
    _save_palette(folder / "00000.png", mask, DAVIS_PALETTE)
    return {"ids": [1, 3, 7], "given": {0: mask}}


def _adaptive_palette(folder):
    # An editor re-indexed the colours: index 1 holds DAVIS green (object 2), 2 DAVIS red (1).
    palette = np.zeros((256, 3), np.uint8)
    palette[1], palette[2] = DAVIS_PALETTE[2], DAVIS_PALETTE[1]
    _save_palette(folder / "00000.png", _objects(1, 2), palette)
    return {"ids": [1, 2], "given": {0: _objects(2, 1)}}


def _foreign_palette(folder):
    palette = np.zeros((256, 3), np.uint8)
    palette[1], palette[2] = (255, 0, 0), (0, 0, 255)  # not DAVIS colours
    _save_palette(folder / "00000.png", _objects(1, 2), palette)
    return {"error": "not the DAVIS palette"}


KINDS = {
    "void_band": _void_band,
    "ids_1_3_7": _noncontiguous,
    "adaptive_palette": _adaptive_palette,
    "foreign_palette": _foreign_palette,
}


def _options(frames, masks, out, weights) -> StartupOptions:
    return StartupOptions(
        video=None, images=str(frames), masks=str(masks), output=str(out), num_objects=None,
        resolution=-1, mem_freq=5, fast=False, prop_model=str(weights["stcn"]),
        fusion_model=str(weights["fusion_stcn"]), s2m_model=None,
    )  # fmt: skip


def _check_outputs(out, case) -> None:
    ids = set(case["ids"])
    for t in range(T):
        present = set(np.unique(read_index_mask(out / f"{t:05d}.png")).tolist())
        assert present <= ids | {0}, f"frame {t}: {present} beyond the objects {ids}"
    for t, given in case["given"].items():
        assert np.array_equal(read_index_mask(out / f"{t:05d}.png"), given)
    state = read_state(out, [f"{t:05d}" for t in range(T)])
    assert [o.id for o in state.objects] == case["ids"]


@pytest.mark.parametrize("kind", KINDS)
def test_mask_kind_on_the_headless_command(kind, assets, tmp_path, capsys, caplog):
    frames, weights = assets
    masks = tmp_path / "masks"
    masks.mkdir()
    case = KINDS[kind](masks)
    out = tmp_path / "out"
    code = headless_main(
        ["--images", str(frames), "--masks", str(masks), "--output", str(out), "--device",
         "cpu", "--resolution", "-1", "--prop_model", str(weights["stcn"]),
         "--fusion_model", str(weights["fusion_stcn"])]
    )  # fmt: skip
    if "error" in case:
        assert code == 2
        err = capsys.readouterr().err
        assert case["error"] in err and "00000.png" in err and "Traceback" not in err
        return
    assert code == 0
    _check_outputs(out, case)
    if kind == "void_band":  # said once, though two files hold void
        said = [r for r in caplog.records if "void" in r.getMessage()]
        assert len(said) == 1 and "2 mask file(s)" in said[0].getMessage()


@pytest.mark.parametrize("kind", KINDS)
def test_mask_kind_on_the_gui_opening_path(kind, assets, tmp_path):
    frames, weights = assets
    masks = tmp_path / "masks"
    masks.mkdir()
    case = KINDS[kind](masks)
    out = tmp_path / "out"
    if "error" in case:
        with pytest.raises(MaskReadError, match=case["error"]) as info:
            open_project(_options(frames, masks, out, weights), torch.device("cpu"))
        assert "00000.png" in str(info.value)
        return
    project, _ = open_project(_options(frames, masks, out, weights), torch.device("cpu"))
    assert [o.id for o in project.objects] == case["ids"]
    assert project.num_objects == len(case["ids"])
    project.propagate()
    project.close()
    _check_outputs(out, case)
    # Reopened, the saved masks are read back with the person's ids, as the same objects.
    again, _ = open_project(_options(frames, masks, out, weights), torch.device("cpu"))
    try:
        assert [o.id for o in again.objects] == case["ids"] and again.awaiting() == []
        assert np.array_equal(again.saved_labels(0), case["given"][0])
    finally:
        again.close()


def test_ids_above_num_objects_name_the_file(assets, tmp_path, caplog):
    frames, weights = assets
    masks = tmp_path / "masks"
    masks.mkdir()
    _noncontiguous(masks)
    opts = _options(frames, masks, tmp_path / "out", weights)
    opts = StartupOptions(**{**opts.__dict__, "num_objects": 3})
    caplog.set_level(logging.WARNING)
    with pytest.raises(MaskReadError, match="id 7 but --num_objects is 3") as info:
        open_project(opts, torch.device("cpu"))
    assert "00000.png" in str(info.value)
