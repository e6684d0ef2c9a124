"""A long annotation session: 100 rounds of edits and propagation on a 150-frame clip.

Runs the GUI's real stack without windows: open_project (the start-up path, real video file,
real checkpoints through the loader) and the InferenceWorker's job handling, called directly.
Frames are tiny and few so the 100 rounds fit in CI (the cost is the frames propagated: every
corrected frame once, coarse to fine, then short passes between neighbours three frames apart);
what is checked is that nothing grows with the number of rounds: the certain memory (one entry
per corrected frame), the caches, the live tensors, the undo history, and that cancelled rounds
leave a state the next round continues from.
"""

from __future__ import annotations

import gc
import warnings

import cv2
import numpy as np
import psutil
import pytest
import torch

from gui.jobs import PropagateJob, ResetJob, StrokeJob, UndoJob
from gui.worker import InferenceWorker
from tests.gui_helpers import write_weights
from util.mask_io import read_index_mask
from workflow.open_project import StartupOptions, open_project

H, W, T = 32, 48, 150
ROUNDS = 100
CORRECTED = np.linspace(0, T - 1, 50).astype(int)  # the frames the "annotator" keeps fixing


def _coarse_to_fine(frames: np.ndarray) -> list[int]:
    """The middle frame first, then the middles of each half, and so on (short passes: fast)."""
    order, spans = [], [(0, len(frames) - 1)]
    while spans:
        lo, hi = spans.pop(0)
        if lo <= hi:
            mid = (lo + hi) // 2
            order.append(int(frames[mid]))
            spans += [(lo, mid - 1), (mid + 1, hi)]
    return order


def _write_video(path):
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (5, 5), 0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (W, H))
    for t in range(T):
        frame = background.copy()
        cv2.circle(frame, (8 + (t % 32), 16), 6, (40, 60, 230), -1)
        writer.write(frame)
    writer.release()
    return path


def _live_tensor_bytes() -> int:
    """Bytes of every live tensor that is not a network parameter or buffer."""
    gc.collect()
    total = 0
    with warnings.catch_warnings():  # isinstance() on deprecated torch aliases warns
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor) and not isinstance(obj, torch.nn.Parameter):
                    total += obj.nbytes
            except ReferenceError:  # weak proxies
                continue
    return total


@pytest.fixture
def workspace(tmp_path):
    weights = write_weights(tmp_path)
    opts = StartupOptions(
        video=str(_write_video(tmp_path / "clip.mp4")), images=None, masks=None,
        output=str(tmp_path / "out"), num_objects=2, resolution=-1, mem_freq=5, fast=False,
        prop_model=str(weights["stcn"]), fusion_model=str(weights["fusion_stcn"]),
        s2m_model=None, fbrs_model=None,
    )  # fmt: skip
    ws, _ = open_project(opts, torch.device("cpu"))
    yield ws
    ws.close()
    ws.session.close()


def _stroke(rng, t: int, label: int) -> StrokeJob:
    x0, y0 = rng.uniform(4, W - 4), rng.uniform(4, H - 4)
    points = tuple((x0 + 3 * i, y0 + (i % 2)) for i in range(5))
    return StrokeJob(t, "free", label, points, brush=4)


def _propagate(worker: InferenceWorker, t: int, cancel_after: int | None) -> list[int]:
    done: list[int] = []

    def on_progress(frame: int, count: int, total: int) -> None:
        done.append(frame)
        if cancel_after is not None and count >= cancel_after:
            worker.cancel.set()

    worker.cancel.clear()
    worker.progress.connect(on_progress)
    try:
        worker.run(PropagateJob(t))
    finally:
        worker.progress.disconnect(on_progress)
        worker.cancel.clear()
    return done


def test_a_hundred_rounds_stay_within_the_bounded_caches(qapp, workspace):
    ws = workspace
    worker = InferenceWorker(ws)
    failures: list[str] = []
    worker.failed.connect(failures.append)
    rng = np.random.default_rng(1)
    frames = ws.session.num_frames
    cfg = ws.session.cfg
    rss = psutil.Process()
    census: dict[int, tuple[dict, int, int]] = {}
    cancelled_rounds = 0
    first_pass = _coarse_to_fine(CORRECTED)
    for round_no in range(ROUNDS):
        # Every corrected frame once, then the same frames again in a random order.
        t = first_pass[round_no] if round_no < len(first_pass) else int(rng.choice(CORRECTED))
        worker.run(_stroke(rng, t, label=1 + round_no % 2))
        worker.run(_stroke(rng, t, label=2 - round_no % 2))
        if round_no % 7 == 3:
            worker.run(UndoJob(t))
            worker.run(UndoJob(t, redo=True))
        if round_no % 13 == 5:
            worker.run(ResetJob(t))
            worker.run(_stroke(rng, t, label=1))
        cancel_after = 3 if round_no % 10 == 9 else None
        order = ws.session.propagation_order(t)  # before the commit: t is new or repeated
        done = _propagate(worker, t, cancel_after)
        if cancel_after is not None and len(order) > cancel_after:
            cancelled_rounds += 1
            assert len(done) == cancel_after
        # No job failed, and the committed frame is the result the person made.
        assert not failures
        assert ws.editor.pending(t) is None
        if round_no in (len(CORRECTED), ROUNDS - 1):
            assert ws.writer.flush(timeout=60)
            report = ws.session.memory_report()
            census[round_no] = (report, _live_tensor_bytes(), rss.memory_info().rss)

    report, tensors_mid, rss_mid = census[len(CORRECTED)]
    final, tensors_end, rss_end = census[ROUNDS - 1]
    assert cancelled_rounds >= 5
    # One certain-memory entry per corrected frame, however many rounds corrected it.
    assert final["certain_entries"] == len(CORRECTED) == report["certain_entries"]
    assert final["certain_memory"] == report["certain_memory"]
    # The caches hold at most their configured number of frames.
    per_image = ws.session.image(0).nbytes
    assert final["image_cache"] <= cfg.image_cache * per_image
    per_feature = sum(x.nbytes for x in ws.session.features(0))
    assert final["feature_cache"] <= cfg.feature_cache * per_feature
    assert final["results_ram"] == report["results_ram"]
    # Nothing else accumulates tensors round after round (slack: one cached frame's features).
    assert tensors_end <= tensors_mid + per_feature + per_image
    # The undo history was cleared by each propagation.
    assert not ws.editor.can_undo(t) and ws.editor.pending_frames() == []
    print(f"\nRSS after round {len(CORRECTED)}: {rss_mid / 2**20:.0f} MiB, "
          f"after {ROUNDS}: {rss_end / 2**20:.0f} MiB")  # fmt: skip
    assert rss_end - rss_mid < 256 * 2**20

    # Every frame's mask on disk is the session's final result (source resolution).
    for f in range(0, frames, 37):
        on_disk = read_index_mask(ws.output / f"{ws.names[f]}.png")
        assert np.array_equal(on_disk, ws.labels_at_source(f))
    kinds = [entry["kind"] for entry in ws.log.read()]
    assert kinds.count("propagate") == ROUNDS
