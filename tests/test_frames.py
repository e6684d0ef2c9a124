"""Frame sources: lazy decoding, working size, caches and clear errors, on real files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

import inference_core.frames as frames_mod
from inference_core.frames import (
    FrameReadError,
    ImageFolderFrames,
    VideoFrames,
    open_frames,
    working_size,
)

H, W, T = 96, 128, 12


def _frame(t: int) -> np.ndarray:
    """Grey background with a white square whose position encodes t."""
    frame = np.full((H, W, 3), 60, np.uint8)
    frame[30:50, 5 + 9 * t : 25 + 9 * t] = 250
    return frame


def _square_x(frame: np.ndarray) -> float:
    cols = np.nonzero(frame.mean(axis=2).max(axis=0) > 150)[0]
    return float(cols.mean())


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("vid") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for t in range(T):
        writer.write(cv2.cvtColor(_frame(t), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_working_size_rule():
    assert working_size(480, 854, 480) == (480, 854)
    assert working_size(720, 1280, 480) == (480, 853)
    assert working_size(1280, 720, 480) == (853, 480)
    assert working_size(100, 200, -1) == (100, 200)


def test_image_folder_natural_order_names_and_resize(tmp_path):
    folder = tmp_path / "vidéo clip"
    folder.mkdir()
    for t in (1, 2, 10):
        Image.fromarray(_frame(t)).save(folder / f"f{t}.png")
    (folder / "readme.txt").write_text("not an image")
    source = ImageFolderFrames(folder, resolution=48)
    assert source.names == ["f1", "f2", "f10"]
    assert source.source_size == (H, W) and source.size == (48, 64)
    frame = source.get(2)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert _square_x(frame) == pytest.approx(_square_x(_frame(10)) / 2, abs=1.5)


def test_image_folder_is_lazy_and_bounded(tmp_path, monkeypatch):
    for t in range(6):
        Image.fromarray(_frame(t)).save(tmp_path / f"{t}.jpg")
    decoded = []
    real = frames_mod._to_rgb8
    monkeypatch.setattr(frames_mod, "_to_rgb8", lambda im: decoded.append(1) or real(im))
    source = ImageFolderFrames(tmp_path, resolution=-1, cache_size=2)
    assert decoded == []  # opening reads headers only
    for t in (0, 1, 0, 1, 2, 0):
        source.get(t)
    assert len(decoded) == 4  # 0, 1, then 2 evicts 0, which is decoded again
    assert len(source._cache) == 2


def test_odd_image_modes_become_rgb(tmp_path):
    gray = np.tile(np.arange(0, 256, 2, dtype=np.uint8), (8, 1))
    Image.fromarray(gray, mode="L").save(tmp_path / "0.png")
    Image.fromarray(np.dstack([_frame(0)[:8], np.full((8, 128), 9, np.uint8)])).save(
        tmp_path / "1.png"
    )
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "2.png")
    Image.fromarray(gray, mode="L").convert("P").save(tmp_path / "3.png")
    source = ImageFolderFrames(tmp_path, resolution=-1)
    for t in range(4):
        frame = source.get(t)
        assert frame.shape == (8, 128, 3) and frame.dtype == np.uint8
    assert np.array_equal(source.get(2)[..., 0], gray)  # 16-bit scaled back to 8-bit


def test_images_of_another_size_are_resized(tmp_path):
    Image.fromarray(_frame(0)).save(tmp_path / "0.png")
    Image.fromarray(_frame(1)[:50, :60]).save(tmp_path / "1.png")
    source = ImageFolderFrames(tmp_path, resolution=-1)
    assert source.get(1).shape == (H, W, 3)


@pytest.mark.parametrize("case", ["missing", "file", "empty", "corrupt"])
def test_image_folder_errors_name_the_path(tmp_path, case):
    target = tmp_path / "frames"
    if case == "file":
        target.write_text("x")
    elif case == "empty":
        target.mkdir()
    elif case == "corrupt":
        target.mkdir()
        Image.fromarray(_frame(0)).save(target / "0.png")
        (target / "1.png").write_bytes(b"\x89PNG broken")
    if case == "corrupt":
        with pytest.raises(FrameReadError, match="1.png"):
            ImageFolderFrames(target).get(1)
    else:
        with pytest.raises(FrameReadError, match="frames"):
            ImageFolderFrames(target)


def test_video_random_access_returns_the_right_frames(video):
    with VideoFrames(video, resolution=-1) as source:
        assert len(source) == T and source.size == (H, W)
        for t in (7, 2, 11, 0):
            frame = source.get(t)
            assert np.abs(frame.astype(int) - _frame(t)).mean() < 10
            assert _square_x(frame) == pytest.approx(_square_x(_frame(t)), abs=1.5)
        with pytest.raises(IndexError):
            source.get(T)


def test_video_cache_folder_is_reused(video, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = VideoFrames(video, resolution=48, cache_dir=cache)
    expected = first.get(5)
    first.close()
    assert (cache / "meta.json").is_file() and (cache / "00011.jpg").is_file()

    def no_decoding(*_):
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(VideoFrames, "_decode_next", no_decoding)
    again = VideoFrames(video, resolution=48, cache_dir=cache)
    assert len(again) == T
    assert np.array_equal(again.get(5), expected)


def test_temporary_cache_is_removed_on_close(video):
    source = VideoFrames(video, resolution=-1)
    folder = source.cache_dir
    assert folder.is_dir()
    source.close()
    assert not folder.exists()


def test_video_errors(tmp_path):
    with pytest.raises(FrameReadError, match="missing.mp4"):
        VideoFrames(tmp_path / "missing.mp4")
    (tmp_path / "text.mp4").write_text("this is not a video")
    with pytest.raises(FrameReadError, match="text.mp4"):
        VideoFrames(tmp_path / "text.mp4")
    with pytest.raises(ValueError):
        open_frames()


def test_a_frame_reads_the_same_before_and_after_eviction(video):
    with VideoFrames(video, resolution=-1, cache_size=1) as source:
        first = source.get(5)
        source.get(6)
        assert np.array_equal(source.get(5), first)
