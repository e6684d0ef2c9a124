from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# A developer's own weights (per-user folder, $MIVOS_WEIGHTS) must not leak into tests: the
# per-user data folder is an empty temporary one unless a test sets its own.
_USER_DATA = tempfile.mkdtemp(prefix="mivos-test-userdata-")
os.environ["XDG_DATA_HOME"] = _USER_DATA
atexit.register(shutil.rmtree, _USER_DATA, ignore_errors=True)
os.environ.pop("MIVOS_WEIGHTS", None)

from tests.shared_assets import write_synthetic_checkpoint  # noqa: E402


@pytest.fixture(autouse=True)
def _two_threads():
    # Same thread count as the parity reference run, and what CI machines have; before every
    # test, since code under test may change it for the process (the batch's local engine
    # gives its worker one thread: every later test ran on one core, ~1.5x slower)
    if torch.get_num_threads() != 2:
        torch.set_num_threads(2)


@pytest.fixture(scope="session")
def synthetic_checkpoints(tmp_path_factory):
    """Synthetic stcn/fusion_stcn/s2m checkpoints (salt 0) written once per test session."""
    folder = tmp_path_factory.mktemp("synthetic_weights")
    return {
        name: write_synthetic_checkpoint(name, folder / f"{name}.pth")
        for name in ("stcn", "fusion_stcn", "s2m")
    }


@pytest.fixture(scope="module")
def gui_assets(tmp_path_factory):
    """(clip.mp4, weights): the GUI tests' generated clip and synthetic weights, per module."""
    from tests.gui_helpers import write_clip, write_weights

    folder = tmp_path_factory.mktemp("gui_assets")
    return write_clip(folder / "clip.mp4"), write_weights(folder)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty current folder (tmp/cwd), the per-user data folder under tmp/xdg (platformdirs'
    Linux rule), no $MIVOS_WEIGHTS; returns tmp_path."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MIVOS_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path
