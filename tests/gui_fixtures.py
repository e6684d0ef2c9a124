"""The main window as a fixture, for the GUI test modules."""

from __future__ import annotations

import pytest

from tests.gui_helpers import open_window


def window_with(num_objects: int):
    """A fixture: the main window on `gui_assets` (tests/conftest.py), with `num_objects`
    objects, closed afterwards."""

    @pytest.fixture
    def window(qtbot, gui_assets, tmp_path):
        video, weights = gui_assets
        win = open_window(
            qtbot, video, weights, tmp_path / "out", "--num_objects", str(num_objects)
        )
        yield win
        win.close()

    return window
