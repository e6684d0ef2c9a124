"""Building a real main window on a generated clip, and driving its canvas with the mouse."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PyQt5.QtCore import QPoint, Qt
from PyQt5.QtTest import QTest

from gui.app import open_main_window
from interactive_gui import build_parser
from model.build import FUSION, PROPAGATION, S2M
from tests.shared_assets import SHARED, write_synthetic_checkpoint

H, W, T = 64, 96, 6


def clip_frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (7, 7), 0)
    frames = np.repeat(background[None], T, axis=0)
    for t in range(T):
        cv2.circle(frames[t], (25 + 6 * t, 32), 12, (230, 60, 40), -1)
    return frames


def write_clip(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for frame in clip_frames():
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_weights(folder: Path) -> dict[str, Path]:
    """Synthetic official-layout checkpoints when ../shared is there, else random ones."""
    paths = {name: folder / f"{name}.pth" for name in ("stcn", "fusion_stcn", "s2m")}
    if (SHARED / "tools" / "synth_weights.py").is_file():
        for name, path in paths.items():
            write_synthetic_checkpoint(name, path)
    else:
        torch.manual_seed(0)
        for spec, name in ((PROPAGATION, "stcn"), (FUSION, "fusion_stcn"), (S2M, "s2m")):
            torch.save(spec.factory().state_dict(), paths[name])
    return paths


def open_window(qtbot, video: Path, weights: dict[str, Path], output: Path, *extra: str):
    args = build_parser().parse_args(
        [
            "--video", str(video), "--output", str(output), "--device", "cpu",
            "--prop_model", str(weights["stcn"]), "--fusion_model", str(weights["fusion_stcn"]),
            "--s2m_model", str(weights["s2m"]), "--resolution", "-1", *extra,
        ]
    )  # fmt: skip
    return show_window(qtbot, open_main_window(args))


def show_window(qtbot, window):
    """Show a main window and make it active (shortcuts only reach the active window)."""
    qtbot.addWidget(window)
    window.resize(900, 600)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    return window


def widget_pos(canvas, x: float, y: float) -> QPoint:
    """Image pixel -> canvas widget position (inverse of Canvas.to_image)."""
    target = canvas._target()
    r = target.width() / canvas.image_size()[1]
    return QPoint(
        int(round(target.left() + (x + 0.5) * r)), int(round(target.top() + (y + 0.5) * r))
    )


def drag(qtbot, window, points, button=Qt.LeftButton) -> None:
    """Press at the first point, move through the rest, release at the last; wait for the edit."""
    canvas = window.canvas
    with qtbot.waitSignal(window.c.worker.edited, timeout=60000):
        QTest.mousePress(canvas, button, Qt.NoModifier, widget_pos(canvas, *points[0]))
        for x, y in points[1:]:
            QTest.mouseMove(canvas, widget_pos(canvas, x, y))
        QTest.mouseRelease(canvas, button, Qt.NoModifier, widget_pos(canvas, *points[-1]))


def draw_propagate_and_save(qtbot, window, out: Path) -> None:
    """Draw object 1 with the free-hand brush on frame 0, propagate through the whole clip in
    the worker thread, close (flushing the writer), and check every frame's mask was saved."""
    from util.mask_io import read_index_mask  # noqa: PLC0415

    session = window.c.project.session
    window.tools.radios["free"].click()
    window.tools.brush.setValue(11)
    drag(qtbot, window, [(15, 20), (40, 25)])
    assert (window.c.project.mask(0) == 1).any()
    failures = []
    window.c.worker.failed.connect(failures.append)
    with qtbot.waitSignal(window.c.worker.propagation_finished, timeout=120000) as blocker:
        window.actions_bar.propagate.click()
    assert blocker.args == [0, False], failures
    frames = session.num_frames
    assert all(session.results.has_prob(t) for t in range(frames))
    window.close()  # flushes the background writer
    assert sorted(p.name for p in out.glob("*.png")) == [f"{t:05d}.png" for t in range(frames)]
    assert (read_index_mask(out / "00000.png") == 1).any()
