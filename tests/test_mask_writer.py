"""The background mask writer: content, coalescing, flush, failures and retargeting."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from util.mask_io import read_index_mask
from workflow.mask_writer import MaskWriter

NAMES = ["00000", "00001", "00002"]
WAIT_S = 5.0  # generous: only reached when something is broken


class Masks:
    """Mutable per-frame masks plus a render that records calls and can be held."""

    def __init__(self, count: int = len(NAMES), shape: tuple[int, int] = (6, 8)) -> None:
        self.state = [np.full(shape, t + 1, np.uint8) for t in range(count)]
        self.calls: list[int] = []
        self.hold_frame: int | None = None  # render of this frame blocks until `release`
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def render(self, t: int) -> np.ndarray:
        with self._lock:
            self.calls.append(t)
        if t == self.hold_frame:
            self.hold_frame = None  # only the first render of it blocks
            self.entered.set()
            assert self.release.wait(WAIT_S)
        with self._lock:
            return self.state[t].copy()


def _can_block_writes(folder) -> bool:
    """chmod 0o500 stops writes for ordinary users, not for root."""
    os.chmod(folder, 0o500)
    probe = folder / "probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return True
    probe.unlink()
    return False


def test_files_hold_what_render_returned(tmp_path):
    masks = Masks()
    masks.state[1][2:4, 3:6] = 7
    with MaskWriter(tmp_path, NAMES, masks.render) as writer:
        for t in range(len(NAMES)):
            writer.submit(t)
        assert writer.flush(WAIT_S)
        assert writer.pending() == 0
        for t, name in enumerate(NAMES):
            np.testing.assert_array_equal(read_index_mask(tmp_path / f"{name}.png"), masks.state[t])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{n}.png" for n in NAMES]


def test_many_submits_of_a_frame_render_it_once_with_the_newest_state(tmp_path):
    masks = Masks()
    masks.hold_frame = 0
    writer = MaskWriter(tmp_path, NAMES, masks.render)
    writer.submit(0)
    assert masks.entered.wait(WAIT_S)  # the thread is now stuck rendering frame 0
    for value in range(10, 20):
        masks.state[1][:] = value
        writer.submit(1)
    assert writer.pending() == 2
    masks.release.set()
    assert writer.flush(WAIT_S)
    assert masks.calls.count(1) == 1
    np.testing.assert_array_equal(read_index_mask(tmp_path / "00001.png"), masks.state[1])
    assert int(read_index_mask(tmp_path / "00001.png")[0, 0]) == 19
    writer.close()


def test_submit_during_a_write_writes_the_frame_again(tmp_path):
    masks = Masks()
    masks.hold_frame = 2
    writer = MaskWriter(tmp_path, NAMES, masks.render)
    writer.submit(2)
    assert masks.entered.wait(WAIT_S)
    masks.state[2][:] = 42  # changed after render started: the next write must pick it up
    writer.submit(2)
    masks.release.set()
    assert writer.flush(WAIT_S)
    assert masks.calls.count(2) == 2
    assert int(read_index_mask(tmp_path / "00002.png")[0, 0]) == 42
    writer.close()


def test_flush_returns_only_once_files_exist(tmp_path):
    masks = Masks()
    masks.hold_frame = 1
    writer = MaskWriter(tmp_path, NAMES, masks.render)
    writer.submit(0)
    writer.submit(1)
    assert masks.entered.wait(WAIT_S)
    assert writer.flush(timeout=0.05) is False  # frame 1 is held: not done yet
    assert not (tmp_path / "00001.png").exists()
    threading.Timer(0.05, masks.release.set).start()
    assert writer.flush() is True
    assert (tmp_path / "00000.png").is_file() and (tmp_path / "00001.png").is_file()
    writer.close()


def test_close_flushes_and_refuses_later_submits(tmp_path):
    masks = Masks()
    writer = MaskWriter(tmp_path, NAMES, masks.render)
    for t in range(len(NAMES)):
        writer.submit(t)
    writer.close()
    assert all((tmp_path / f"{n}.png").is_file() for n in NAMES)
    assert not writer._thread.is_alive()
    with pytest.raises(RuntimeError):
        writer.submit(0)


def test_out_of_range_frame_is_refused(tmp_path):
    with MaskWriter(tmp_path, NAMES, Masks().render) as writer, pytest.raises(IndexError):
        writer.submit(len(NAMES))


def _check_failure_then_retarget(bad, good) -> None:
    masks = Masks()
    errors: list[tuple[int, Exception]] = []
    writer = MaskWriter(bad, NAMES, masks.render, on_error=lambda t, e: errors.append((t, e)))
    writer.submit(0)
    writer.submit(2)
    assert writer.flush(WAIT_S) is False  # settled, but failed
    assert writer.pending() == 0
    assert sorted(t for t, _ in errors) == [0, 2]
    assert all(isinstance(e, OSError) for _, e in errors)
    assert writer.failed() == {0, 2}

    masks.state[0][:] = 9  # the state changed while the folder was unusable
    writer.retarget(good)
    assert writer.flush(WAIT_S) is True
    assert writer.failed() == set()
    assert writer.folder == good
    for t in (0, 2):
        np.testing.assert_array_equal(read_index_mask(good / f"{NAMES[t]}.png"), masks.state[t])
    assert not (good / f"{NAMES[1]}.png").exists()  # never submitted
    writer.close()


def test_read_only_folder_reports_errors_and_retarget_recovers(tmp_path):
    bad = tmp_path / "read_only"
    bad.mkdir()
    try:
        if not _can_block_writes(bad):
            pytest.skip("running as root: chmod does not stop writes")
        _check_failure_then_retarget(bad, tmp_path / "good")
        assert list(bad.iterdir()) == []
    finally:
        os.chmod(bad, 0o700)


def test_unusable_folder_reports_errors_and_retarget_recovers(tmp_path):
    # A regular file where the folder should be fails even for root.
    bad = tmp_path / "not_a_folder"
    bad.write_bytes(b"")
    _check_failure_then_retarget(bad, tmp_path / "good")


def test_retarget_rewrites_every_frame_ever_submitted(tmp_path):
    masks = Masks()
    with MaskWriter(tmp_path / "a", NAMES, masks.render) as writer:
        for t in range(len(NAMES)):
            writer.submit(t)
        assert writer.flush(WAIT_S)
        writer.retarget(tmp_path / "b")
        assert writer.flush(WAIT_S)
    for name in NAMES:
        assert (tmp_path / "b" / f"{name}.png").is_file()


def test_render_error_is_reported_and_the_thread_keeps_working(tmp_path):
    errors: list[int] = []

    def render(t: int) -> np.ndarray:
        if t == 0:
            raise RuntimeError("boom")
        return np.full((4, 4), t, np.uint8)

    with MaskWriter(tmp_path, NAMES, render, on_error=lambda t, e: errors.append(t)) as writer:
        writer.submit(0)
        writer.submit(1)
        assert writer.flush(WAIT_S) is False
        assert errors == [0]
        assert writer.failed() == {0}
        assert (tmp_path / "00001.png").is_file()
