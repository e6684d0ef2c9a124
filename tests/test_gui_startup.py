"""Starting the application: missing weights and bad input are one clear message, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QMessageBox

import gui.app
import interactive_gui
from tests.gui_helpers import open_window, write_clip, write_weights
from tests.shared_assets import REPO


@pytest.fixture
def no_user_weights(tmp_path, monkeypatch):
    """The weight defaults resolve in an empty per-user folder, not the developer's own."""
    monkeypatch.delenv("MIVOS_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def dialogs(monkeypatch, qapp):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append(text))
    return shown


def _weights_args(weights):
    return ["--prop_model", str(weights["stcn"]), "--fusion_model", str(weights["fusion_stcn"]),
            "--s2m_model", str(weights["s2m"]), "--device", "cpu"]  # fmt: skip


def test_missing_weights_name_each_file_and_the_command(
    dialogs, tmp_path, capsys, monkeypatch, no_user_weights
):
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    video = write_clip(tmp_path / "clip.mp4")
    code = interactive_gui.main(
        ["--video", str(video), "--prop_model", str(tmp_path / "nope" / "stcn.pth"),
         "--fusion_model", str(tmp_path / "nope" / "fusion_stcn.pth")]
    )  # fmt: skip
    assert code == 2
    (text,) = dialogs
    assert "stcn.pth" in text and "fusion_stcn.pth" in text
    assert "python download_model.py" in text
    # the optional two are named too, where the download would put them
    user = tmp_path / "xdg" / "mivos-studio" / "weights"
    assert f"{user / 's2m.pth'}  (scribbles, optional)" in text
    assert f"{user / 'fbrs.pth'}  (clicks, optional)" in text
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("case", ["unreadable_video", "empty_folder", "bad_masks"])
def test_bad_input_is_a_message(dialogs, tmp_path, case):
    weights = write_weights(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.mp4").write_text("not a video")
    source = {
        "unreadable_video": ["--video", str(tmp_path / "junk.mp4")],
        "empty_folder": ["--images", str(tmp_path / "empty")],
        "bad_masks": ["--video", str(write_clip(tmp_path / "clip.mp4")), "--masks",
                      str(tmp_path / "no_such_masks")],
    }[case]  # fmt: skip
    code = interactive_gui.main(
        [*source, "--output", str(tmp_path / "out"), *_weights_args(weights)]
    )
    assert code == 2
    (text,) = dialogs
    needle = {"unreadable_video": "junk.mp4", "empty_folder": "empty", "bad_masks": "no_such_masks"}
    assert needle[case] in text


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit):
        interactive_gui.main(["--help"])
    out = capsys.readouterr().out
    for flag in ("--video", "--images", "--num_objects", "--masks", "--resolution", "--mem_freq",
                 "--mem_every", "--mem_profile", "--no_amp", "--device", "--prop_model",
                 "--fusion_model", "--s2m_model", "--fbrs_model", "--output"):  # fmt: skip
        assert flag in out


def test_declined_download_is_the_missing_weights_message(
    dialogs, tmp_path, monkeypatch, no_user_weights
):
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    code = interactive_gui.main(
        ["--video", str(write_clip(tmp_path / "clip.mp4")),
         "--prop_model", str(tmp_path / "stcn.pth"), "--fusion_model", str(tmp_path / "f.pth")]
    )  # fmt: skip
    assert code == 2 and "python download_model.py" in dialogs[0]


def test_opening_runs_off_the_gui_thread_which_stays_responsive(qtbot, tmp_path, monkeypatch):
    gui_thread = threading.get_ident()
    real_build = gui.app.open_project
    ticks: list[int] = []
    seen: dict[str, int] = {}

    def slow_build(opts, device):
        seen["thread"] = threading.get_ident()
        deadline = time.monotonic() + 10
        while len(ticks) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # a blocked GUI thread would never tick
        return real_build(opts, device)

    monkeypatch.setattr(gui.app, "open_project", slow_build)
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    weights = write_weights(tmp_path)
    window = open_window(qtbot, write_clip(tmp_path / "clip.mp4"), weights, tmp_path / "out")
    timer.stop()
    assert seen["thread"] != gui_thread
    assert len(ticks) >= 3
    assert window.c.num_frames == 6


def test_the_splash_shows_before_anything_heavy_is_imported():
    """A window within about a second: the splash needs Qt only, not PyTorch (seconds)."""
    code = (
        "import sys; from PyQt5.QtWidgets import QApplication; import interactive_gui; "
        "app = QApplication([]); splash = interactive_gui.show_splash(app); "
        "print(splash.isVisible(), 'torch' in sys.modules, 'gui.app' in sys.modules, "
        "'Loading PyTorch' in splash.message())"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.stdout.split() == ["True", "False", "False", "True"], out.stderr
