"""The GUI with --fast on the CPU: the window says which precision runs, and a drawn mask
propagates and saves through the fast networks (bf16, int8 3x3 layers where the CPU has them).

Real widgets, simulated mouse events, the real worker thread, synthetic weights.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("PyQt5", reason="PyQt5 is not installed")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")

from model.int8 import Int8Conv2d, int8_ready  # noqa: E402
from model.precision import choose_precision  # noqa: E402
from tests.gui_helpers import draw_propagate_and_save, open_window  # noqa: E402


def test_gui_propagates_and_saves_in_the_fast_mode_and_says_so(qtbot, gui_assets, tmp_path):
    video, weights = gui_assets
    out = tmp_path / "out"
    window = open_window(qtbot, video, weights, out, "--num_objects", "2", "--fast")
    session = window.c.project.session
    expected = choose_precision("cpu", fast=True)
    assert session.nets.precision == expected
    assert expected.describe() in window.windowTitle()
    int8_layers = [m for m in session.nets.prop.decoder.modules() if isinstance(m, Int8Conv2d)]
    assert bool(int8_layers) == (expected.int8 and int8_ready())
    if expected.dtype == torch.bfloat16:
        assert next(session.nets.prop.decoder.parameters()).dtype == torch.bfloat16
    draw_propagate_and_save(qtbot, window, out)
