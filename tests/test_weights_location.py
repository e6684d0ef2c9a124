"""Where the weights are found: the per-user folder, $MIVOS_WEIGHTS, --weights_dir, ./saves.

Every test starts from a current folder that holds nothing (or only the old ./saves), with
XDG_DATA_HOME in tmp (platformdirs' per-user data folder on Linux) and $MIVOS_WEIGHTS unset.
The GUI tests open the real window through the real start-up path; a question about
downloading would mean the weights were not found, and fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtWidgets import QMessageBox

import interactive_gui
from gui.app import options_from_args, start
from model.weights import find_weight, user_weights_dir, weights_dir
from tests.gui_helpers import clip_frames, write_clip
from tests.weights_server import compact_weight_files
from util.mask_io import read_index_mask, write_index_mask
from workflow import headless

REPO = Path(__file__).resolve().parents[1]
FILES = ("stcn.pth", "fusion_stcn.pth", "s2m.pth", "fbrs.pth")


@pytest.fixture(scope="module")
def weight_bytes() -> dict[str, bytes]:
    return compact_weight_files()


def _fill(folder: Path, weight_bytes, names=FILES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(weight_bytes[name])
    return folder


def test_the_weights_folder_by_priority(home, monkeypatch):
    user = home / "xdg" / "mivos-studio" / "weights"
    assert user_weights_dir() == user
    assert weights_dir() == user
    monkeypatch.setenv("MIVOS_WEIGHTS", str(home / "env"))
    assert weights_dir() == home / "env"
    assert weights_dir(home / "flag") == home / "flag"  # --weights_dir beats the variable
    assert weights_dir("~/w", environ={}) == Path.home() / "w"
    assert weights_dir(environ={"MIVOS_WEIGHTS": " "}) == user  # blank: not set


def test_find_weight_prefers_the_weights_folder_then_old_saves(home, weight_bytes):
    user = home / "xdg" / "mivos-studio" / "weights"
    # Nowhere: the path the download will create.
    assert find_weight("stcn.pth") == user / "stcn.pth"
    # Only in the first release's ./saves (relative to the current folder): used.
    _fill(Path("saves"), weight_bytes, ["stcn.pth"])
    assert find_weight("stcn.pth") == Path("saves/stcn.pth")
    assert find_weight("s2m.pth") == user / "s2m.pth"  # ./saves lacks it: the weights folder
    # In both: the weights folder wins.
    _fill(user, weight_bytes, ["stcn.pth"])
    assert find_weight("stcn.pth") == user / "stcn.pth"


def test_an_explicit_weight_flag_wins(home, weight_bytes):
    user = _fill(home / "xdg" / "mivos-studio" / "weights", weight_bytes)
    mine = _fill(home / "mine", weight_bytes, ["stcn.pth"])
    args = interactive_gui.build_parser().parse_args(["--prop_model", str(mine / "stcn.pth")])
    opts = options_from_args(args)
    assert opts.prop_model == str(mine / "stcn.pth")
    assert (opts.fusion_model, opts.s2m_model, opts.fbrs_model) == tuple(
        str(user / name) for name in FILES[1:]
    )
    assert opts.weights_dir == str(user)


@pytest.mark.parametrize("how", ["user_data_dir", "MIVOS_WEIGHTS", "--weights_dir", "./saves"])
def test_gui_finds_the_weights_from_another_folder(qtbot, home, monkeypatch, weight_bytes, how):
    folder = {
        "user_data_dir": home / "xdg" / "mivos-studio" / "weights",
        "MIVOS_WEIGHTS": home / "env weights",
        "--weights_dir": home / "flag weights",
        "./saves": home / "cwd" / "saves",
    }[how]
    _fill(folder, weight_bytes)
    if how == "MIVOS_WEIGHTS":
        monkeypatch.setenv("MIVOS_WEIGHTS", str(folder))
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.No)
    argv = ["--video", str(write_clip(home / "clip.mp4")), "--output", str(home / "out"),
            "--device", "cpu", "--resolution", "-1"]  # fmt: skip
    if how == "--weights_dir":
        argv += ["--weights_dir", str(folder)]
    args = interactive_gui.build_parser().parse_args(argv)
    opts = options_from_args(args)
    expected = Path("saves") if how == "./saves" else folder
    assert [opts.prop_model, opts.fusion_model, opts.s2m_model, opts.fbrs_model] == [
        str(expected / name) for name in FILES
    ]

    window = start(args)
    qtbot.addWidget(window)
    assert asked == []  # nothing was missing: no offer to download
    assert window.c.s2m_available and window.c.clicks_available  # all four were loaded
    assert list((home / "cwd").iterdir()) == ([Path("saves").resolve()] if how == "./saves" else [])
    window.close()


def test_headless_command_finds_the_weights_from_another_folder(home, weight_bytes):
    folder = _fill(home / "env weights", weight_bytes, ["stcn.pth", "fusion_stcn.pth"])
    clip = write_clip(home / "clip.mp4")
    mask = np.zeros(clip_frames().shape[1:3], np.uint8)
    mask[20:44, 13:37] = 1
    write_index_mask(home / "masks" / "00000.png", mask)
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env.update(MIVOS_WEIGHTS=str(folder), PYTHONPATH=str(REPO))
    run = subprocess.run(
        [sys.executable, "-m", "inference_core", "--video", str(clip), "--masks",
         str(home / "masks"), "--output", str(home / "out"), "--device", "cpu"],
        cwd=home / "cwd", env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert read_index_mask(home / "out" / "00000.png").shape == mask.shape
    assert len(list((home / "out").glob("*.png"))) == len(clip_frames())
    # and the parser's defaults, built with the variable set, name that folder
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIVOS_WEIGHTS", str(folder))
        args = headless.build_parser().parse_args(["--video", "v", "--masks", "m", "--output", "o"])
    assert (args.prop_model, args.fusion_model) == (
        str(folder / "stcn.pth"),
        str(folder / "fusion_stcn.pth"),
    )
