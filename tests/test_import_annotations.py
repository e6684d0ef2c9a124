"""Imported masks are annotations, in the headless command and the GUI alike.

Masks on frames 0, 5 and 8 introduce objects 1, 2 and 3 (as YouTube-VOS annotates objects that
enter later); the frame-5 mask is one pixel narrower than the frames.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gui.app import open_main_window
from interactive_gui import build_parser
from tests.gui_helpers import write_weights
from util.mask_io import read_index_mask, write_index_mask
from workflow.headless import main as headless_main
from workflow.open_project import StartupOptions, open_project
from workflow.state import STATE_FILE, read_state

H, W, T = 64, 96, 12  # objects must span a few 1/16 feature cells
GIVEN = {0: 1, 5: 2, 8: 3}  # frame -> the object its mask introduces


def _disc(t: int, k: int) -> tuple[int, int]:
    """Centre of object k at frame t: each moves right, 2 px per frame."""
    return (14 + 2 * t + 28 * (k - 1), 14 + 14 * (k - 1))


def _object_mask(t: int, k: int) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    cx, cy = _disc(t, k)
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= 144


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("import_assets")
    frames, masks = root / "frames", root / "masks"
    frames.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(7)
    background = rng.integers(0, 90, (H, W, 3), dtype=np.uint8)
    colours = {1: (250, 60, 40), 2: (40, 230, 60), 3: (60, 80, 250)}
    for t in range(T):
        image = background.copy()
        for first, k in GIVEN.items():
            if t >= first - 1:  # each object appears just before its mask
                image[_object_mask(t, k)] = colours[k]
        Image.fromarray(image).save(frames / f"{t:05d}.png")
    for t, k in GIVEN.items():
        mask = _object_mask(t, k).astype(np.uint8) * k
        if t == 5:
            mask = mask[:, : W - 1]  # one pixel narrower than the frames
        write_index_mask(masks / f"{t:05d}.png", mask)
    return frames, masks, write_weights(root)


def _given_at_source(masks, t: int) -> np.ndarray:
    return read_index_mask(masks / f"{t:05d}.png", size=(H, W))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / max((a | b).sum(), 1)


def _check_output(out, masks) -> dict[int, np.ndarray]:
    saved = {t: read_index_mask(out / f"{t:05d}.png") for t in range(T)}
    for t, k in GIVEN.items():
        given = _given_at_source(masks, t)
        assert _iou(saved[t] == k, given == k) >= 0.99, f"frame {t}: the given object {k}"
    # Earlier objects are still tracked through and after the frames that introduced others.
    assert (saved[5] == 1).any() and (saved[8] == 2).any()
    for t in range(9, T):
        present = set(np.unique(saved[t]))
        assert {1, 2} <= present, f"frame {t} lost an object: {present}"
    return saved


def _common(weights) -> list[str]:
    return [
        "--device", "cpu", "--resolution", "-1",
        "--prop_model", str(weights["stcn"]), "--fusion_model", str(weights["fusion_stcn"]),
    ]  # fmt: skip


def test_headless_and_gui_keep_masks_that_introduce_objects_on_later_frames(
    qtbot, assets, tmp_path
):
    frames, masks, weights = assets
    out_cli = tmp_path / "cli"
    args = ["--images", str(frames), "--masks", str(masks), "--output", str(out_cli)]
    assert headless_main([*args, *_common(weights)]) == 0
    headless = _check_output(out_cli, masks)

    out_gui = tmp_path / "gui"
    gui_args = build_parser().parse_args(
        ["--images", str(frames), "--masks", str(masks), "--output", str(out_gui),
         "--s2m_model", str(weights["s2m"]), *_common(weights)]
    )  # fmt: skip
    window = open_main_window(gui_args)
    qtbot.addWidget(window)
    project = window.c.project
    # Imported at once: written to the output folder, marked, and waiting to be propagated.
    assert project.writer.flush(timeout=30)
    assert sorted(p.name for p in out_gui.glob("*.png")) == [f"{t:05d}.png" for t in GIVEN]
    assert [project.provenance[t].kind for t in GIVEN] == ["imported"] * 3
    assert project.provenance[5].introduces == (2,)
    assert window.timeline.marks.kinds[5] == "imported"
    assert window.c.frame == 0 and project.awaiting() == [0, 5, 8]
    with qtbot.waitSignal(window.c.worker.propagation_finished, timeout=180000) as done:
        window.actions_bar.propagate.click()  # no new edit needed
    assert done.args[1] is False
    window.close()
    gui = _check_output(out_gui, masks)
    # One rule, one implementation: the GUI's masks are the headless command's.
    for t in range(T):
        assert np.array_equal(gui[t], headless[t]), f"frame {t}"
    assert (out_gui / STATE_FILE).is_file()


def test_full_masks_takes_every_file_as_a_full_annotation(assets, tmp_path):
    frames, masks, weights = assets
    out = tmp_path / "out"
    args = ["--images", str(frames), "--masks", str(masks), "--output", str(out), "--full_masks"]
    assert headless_main([*args, *_common(weights)]) == 0
    at5 = read_index_mask(out / "00005.png")
    assert np.array_equal(at5, _given_at_source(masks, 5))  # object 1 not carried into it


def test_headless_rerun_is_identical_and_keeps_annotations_made_in_the_gui(assets, tmp_path):
    frames, masks, weights = assets
    out = tmp_path / "out"
    args = [
        "--images", str(frames), "--masks", str(masks), "--output", str(out), *_common(weights)
    ]  # fmt: skip
    assert headless_main(args) == 0
    first = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert headless_main(args) == 0
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == first
    # A person corrects frame 10 in the GUI's project (its opening path, no window)...
    opts = StartupOptions(
        video=None, images=str(frames), masks=None, output=str(out), num_objects=None,
        resolution=-1, mem_freq=5, fast=False, prop_model=str(weights["stcn"]),
        fusion_model=str(weights["fusion_stcn"]), s2m_model=None,
    )  # fmt: skip
    project, _ = open_project(opts, torch.device("cpu"))
    assert project.session.memory_frames() == [0, 5, 8]
    project.apply_stroke(10, "free", 3, [(2.0, 56.0), (40.0, 58.0)], 5)
    project.propagate()
    project.close()
    corrected = (out / "00010.png").read_bytes()
    assert corrected != first["00010.png"]
    # ...and the headless command, run again, propagates around it without changing it.
    assert headless_main(args) == 0
    assert (out / "00010.png").read_bytes() == corrected
    assert (out / "00005.png").read_bytes() == first["00005.png"]
    state = read_state(out, [f"{t:05d}" for t in range(T)])
    assert state.provenance[10].kind == "annotated" and state.provenance[5].kind == "imported"
