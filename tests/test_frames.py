"""Frame sources: lazy decoding, working size, caches and clear errors, on real files."""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

import inference_core.video_readers as video_readers
from inference_core.frames import (
    ArrayFrames,
    FrameReadError,
    ImageFolderFrames,
    VideoFrames,
    open_frames,
    working_size,
)

H, W, T = 96, 128, 12
_REAL_CAPTURE = cv2.VideoCapture


def _frame(t: int) -> np.ndarray:
    """Grey background with a white square whose position encodes t."""
    frame = np.full((H, W, 3), 60, np.uint8)
    frame[30:50, 5 + 9 * t : 25 + 9 * t] = 250
    return frame


def _square_x(frame: np.ndarray) -> float:
    cols = np.nonzero(frame.mean(axis=2).max(axis=0) > 150)[0]
    return float(cols.mean())


def _assert_is_frame(frame: np.ndarray, t: int) -> None:
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous
    assert np.abs(frame.astype(int) - _frame(t)).mean() < 10
    assert _square_x(frame) == pytest.approx(_square_x(_frame(t)), abs=1.5)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("vid") / "vidéo clip" / "clip 1.mp4"
    path.parent.mkdir()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    assert writer.isOpened()
    for t in range(T):
        writer.write(cv2.cvtColor(_frame(t), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


class _Capture:
    """A real capture whose number of decodable frames is rigged."""

    def __init__(self, path: str, limit: int | None = None) -> None:
        self._real, self._limit, self._read = _REAL_CAPTURE(path), limit, 0

    def isOpened(self) -> bool:  # noqa: N802 - mirrors cv2.VideoCapture
        return self._real.isOpened()

    def get(self, prop: int) -> float:
        return self._real.get(prop)

    def set(self, prop: int, value: float) -> bool:
        return self._real.set(prop, value)

    def read(self):
        if self._limit is not None and self._read >= self._limit:
            return False, None
        self._read += 1
        return self._real.read()

    def release(self) -> None:
        self._real.release()


def _rig_capture(monkeypatch, **kwargs) -> None:
    monkeypatch.setattr(cv2, "VideoCapture", lambda p: _Capture(p, **kwargs))


class _RiggedPyAV(video_readers.PyAVReader):
    """The real PyAV reader with its frame count replaced (None: keep) or no frames at all."""

    def __init__(self, path, count: int | None = None, empty: bool = False) -> None:
        super().__init__(path)
        if count is not None:
            self.estimate = count
        if empty:
            self._frames = iter(())


def _rig_pyav(monkeypatch, **kwargs) -> None:
    monkeypatch.setattr(video_readers, "PyAVReader", lambda p: _RiggedPyAV(p, **kwargs))


def _no_pyav(monkeypatch) -> None:
    def refuse(path):
        raise ValueError(f"{path}: pretend PyAV cannot open this")

    monkeypatch.setattr(video_readers, "PyAVReader", refuse)


def test_working_size_rule():
    assert working_size(480, 854, 480) == (480, 854)
    assert working_size(720, 1280, 480) == (480, 853)
    assert working_size(1280, 720, 480) == (853, 480)
    assert working_size(100, 200, -1) == (100, 200)
    assert working_size(270, 480, 480) == (270, 480)  # never upscaled
    assert working_size(100, 200, None) == (100, 200)


def test_array_frames_hand_out_copies():
    data = np.stack([_frame(t) for t in range(3)])
    source = ArrayFrames(data)
    assert len(source) == 3 and source.size == (H, W) and source.names[2] == "00002"
    source.get(1)[:] = 0
    assert np.array_equal(source.get(1), _frame(1))
    with pytest.raises(IndexError):
        source.get(3)


def test_image_folder_natural_order_names_and_resize(tmp_path):
    folder = tmp_path / "vidéo clip"
    folder.mkdir()
    for t in (1, 2, 10):
        Image.fromarray(_frame(t)).save(folder / f"f{t}.png")
    (folder / "readme.txt").write_text("not an image")
    (folder / ".f0.png").write_bytes(b"hidden, and not even an image")
    source = open_frames(images=str(folder), resolution=48)
    assert isinstance(source, ImageFolderFrames)
    assert source.names == ["f1", "f2", "f10"]
    assert source.source_size == (H, W) and source.size == (48, 64)
    frame = source.get(2)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous
    assert _square_x(frame) == pytest.approx(_square_x(_frame(10)) / 2, abs=1.5)
    with pytest.raises(IndexError):
        source.get(3)


def test_image_extensions_are_case_insensitive_and_stems_stay_unique(tmp_path):
    Image.fromarray(_frame(0)).save(tmp_path / "a.JPG")
    Image.fromarray(_frame(1)).save(tmp_path / "a.png")
    Image.fromarray(_frame(2)).save(tmp_path / "b.Tiff", format="TIFF")
    Image.fromarray(_frame(3)).save(tmp_path / "c.bmp")
    source = ImageFolderFrames(tmp_path, resolution=-1)
    assert source.names == ["a.JPG", "a.png", "b", "c"]  # "a" twice would overwrite an output
    assert _square_x(source.get(2)) == pytest.approx(_square_x(_frame(2)), abs=1)


def test_image_folder_is_lazy_and_bounded(tmp_path, monkeypatch):
    for t in range(6):
        Image.fromarray(_frame(t)).save(tmp_path / f"{t}.jpg")
    loads = []
    real_load = ImageFile.ImageFile.load

    def counting_load(image):
        if image.tile:  # pixels not decoded yet; load() empties the tile list once it has
            loads.append(image.filename)
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    source = ImageFolderFrames(tmp_path, resolution=-1, cache_size=2)
    assert loads == []  # opening reads a header, decodes no pixels
    for t in (0, 1, 0, 1, 2, 0):
        source.get(t)
        assert len(source._cache) <= 2
    assert len(loads) == 4  # 0, 1, then 2 evicts 0, which is decoded again


def test_cached_frames_cannot_be_corrupted_by_callers(tmp_path):
    Image.fromarray(_frame(4)).save(tmp_path / "0.png")
    source = ImageFolderFrames(tmp_path, resolution=-1)
    source.get(0)[:] = 0
    assert np.array_equal(source.get(0), _frame(4))


def test_concurrent_reads_stay_bounded_and_correct(tmp_path):
    for t in range(8):
        Image.fromarray(_frame(t)).save(tmp_path / f"{t}.png")
    source = ImageFolderFrames(tmp_path, resolution=-1, cache_size=3)
    errors = []

    def reader(offset: int) -> None:
        for i in range(40):
            t = (i * 3 + offset) % 8
            if _square_x(source.get(t)) != _square_x(_frame(t)):
                errors.append(t)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(source._cache) <= 3


def test_odd_image_modes_become_rgb(tmp_path):
    gray = np.tile(np.arange(0, 256, 2, dtype=np.uint8), (8, 1))
    Image.fromarray(gray, mode="L").save(tmp_path / "0.png")
    Image.fromarray(np.dstack([_frame(0)[:8], np.full((8, 128), 9, np.uint8)])).save(
        tmp_path / "1.png"
    )
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "2.png")
    Image.fromarray(gray, mode="L").convert("P").save(tmp_path / "3.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "4.tif")
    source = ImageFolderFrames(tmp_path, resolution=-1)
    for t in range(5):
        frame = source.get(t)
        assert frame.shape == (8, 128, 3) and frame.dtype == np.uint8
    assert np.array_equal(source.get(0)[..., 1], gray)
    assert np.array_equal(source.get(1), _frame(0)[:8])  # alpha dropped, colours kept
    assert np.array_equal(source.get(2)[..., 0], gray)  # 16-bit scaled back to 8-bit
    assert np.array_equal(source.get(4)[..., 2], gray)


def test_images_of_another_size_are_resized_with_one_warning(tmp_path, caplog):
    Image.fromarray(_frame(0)).save(tmp_path / "0.png")
    Image.fromarray(_frame(1)[:50, :60]).save(tmp_path / "1.png")
    Image.fromarray(_frame(2)[:40, :60]).save(tmp_path / "2.png")
    source = ImageFolderFrames(tmp_path, resolution=-1)
    with caplog.at_level(logging.WARNING, logger="inference_core.frames"):
        assert source.get(1).shape == (H, W, 3)
        assert source.get(2).shape == (H, W, 3)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1.png" in warnings[0].getMessage()


@pytest.mark.parametrize("case", ["missing", "file", "empty", "corrupt", "corrupt_first"])
def test_image_folder_errors_name_the_path(tmp_path, case):
    target = tmp_path / "my frames"
    if case == "file":
        target.write_text("x")
    elif case != "missing":
        target.mkdir()
        (target / "notes.txt").write_text("not an image")
    if case == "corrupt":
        Image.fromarray(_frame(0)).save(target / "0.png")
        data = (target / "0.png").read_bytes()
        (target / "1.png").write_bytes(data[: len(data) // 3])  # truncated
        source = ImageFolderFrames(target)
        with pytest.raises(FrameReadError, match=r"^.*my frames/1\.png: "):
            source.get(1)
        return
    if case == "corrupt_first":
        (target / "0.jpg").write_bytes(b"no jpeg here")
    match = {"empty": "contains no images", "missing": "not found", "file": "not a folder"}
    with pytest.raises(FrameReadError, match=match.get(case, r"0\.jpg")) as info:
        ImageFolderFrames(target)
    assert str(info.value).startswith(str(target))


def test_video_random_access_returns_the_right_frames(video):
    with open_frames(video=video, resolution=-1) as source:
        assert isinstance(source, VideoFrames)
        assert len(source) == T and source.size == (H, W) and source.source_size == (H, W)
        assert source.names == [f"{t:05d}" for t in range(T)]
        for t in (7, 2, 11, 0):
            _assert_is_frame(source.get(t), t)
        with pytest.raises(IndexError):
            source.get(T)


def test_video_is_resized_to_the_working_size(video):
    with VideoFrames(video, resolution=48) as source:
        assert source.size == (48, 64) and source.get(3).shape == (48, 64, 3)
        assert _square_x(source.get(3)) == pytest.approx(_square_x(_frame(3)) / 2, abs=1.5)


def test_long_video_decodes_lazily_and_in_order(video):
    progress = []
    with VideoFrames(video, resolution=-1, eager_limit=T - 1) as source:
        jpegs = lambda: sorted(p.name for p in source.cache_dir.glob("*.jpg"))  # noqa: E731
        assert jpegs() == ["00000.jpg"]  # only the frame read to learn the size
        assert len(source) == T  # the container's estimate
        _assert_is_frame(source.get(7), 7)
        assert len(jpegs()) == 8
        _assert_is_frame(source.get(2), 2)
        source.prefetch_all(lambda done, total: progress.append((done, total)))
        assert len(jpegs()) == T and progress[0] == (9, T) and progress[-1][0] == T


def test_an_over_estimated_length_shrinks_at_the_real_end(video, monkeypatch):
    # A truncated or corrupt file announces more frames than decode: a message, not IndexError.
    _rig_pyav(monkeypatch, count=T + 5)
    with VideoFrames(video, resolution=-1, eager_limit=0) as source:
        assert len(source) == T + 5
        with pytest.raises(FrameReadError, match=r"clip 1\.mp4: frame 14 .* after 12 frames"):
            source.get(T + 2)
        assert len(source) == T and len(source.names) == T
        _assert_is_frame(source.get(T - 1), T - 1)
        with pytest.raises(FrameReadError, match="announces 17"):
            source.get(T + 4)  # still announced: callers may loop up to it
        with pytest.raises(IndexError):
            source.get(T + 5)


def test_an_over_estimate_found_at_open_is_just_the_length(video, monkeypatch):
    _rig_pyav(monkeypatch, count=T + 5)
    with VideoFrames(video, resolution=-1) as source:  # short: decoded at open
        assert len(source) == T
        with pytest.raises(IndexError):
            source.get(T + 2)


def test_an_unknown_length_is_found_by_decoding(video, monkeypatch):
    _rig_pyav(monkeypatch, count=-1)
    with VideoFrames(video, resolution=-1, eager_limit=0) as source:
        assert len(source) == T
        _assert_is_frame(source.get(T - 1), T - 1)


def test_video_cache_folder_is_reused(video, tmp_path, monkeypatch):
    cache = tmp_path / "caché dir"
    first = VideoFrames(video, resolution=48, cache_dir=cache)
    expected = first.get(5)
    first.close()
    assert (cache / "meta.json").is_file() and (cache / "00011.jpg").is_file()

    def no_decoding(*_):
        raise AssertionError("the cache should have been reused")

    with monkeypatch.context() as patch:
        patch.setattr(VideoFrames, "_decode_next", no_decoding)
        patch.setattr(VideoFrames, "_store", no_decoding)
        again = VideoFrames(video, resolution=48, cache_dir=cache)
        assert len(again) == T
        assert np.array_equal(again.get(5), expected)
        again.close()
    assert cache.is_dir()  # the user's folder is kept

    other = VideoFrames(video, resolution=-1, cache_dir=cache)  # another size: decoded again
    assert other.get(5).shape == (H, W, 3)
    other.close()


def test_temporary_cache_is_removed_on_close(video):
    source = VideoFrames(video, resolution=-1)
    folder = source.cache_dir
    assert folder.is_dir()
    source.close()
    source.close()
    assert not folder.exists()
    with pytest.raises(FrameReadError, match="closed"):
        source.get(0)


def test_video_errors(tmp_path, video, monkeypatch):
    with pytest.raises(FrameReadError, match=r"missing\.mp4: .*not found"):
        VideoFrames(tmp_path / "missing.mp4")
    (tmp_path / "text.mp4").write_text("this is not a video")
    with pytest.raises(FrameReadError, match=r"text\.mp4: is not a video PyAV or OpenCV can read"):
        VideoFrames(tmp_path / "text.mp4")
    with pytest.raises(ValueError):
        open_frames()
    with pytest.raises(ValueError):
        open_frames(video=video, images=tmp_path)
    with pytest.raises(FrameReadError, match=r"sound\.wav: has no video stream"):
        _wav(tmp_path / "sound.wav")
        VideoFrames(tmp_path / "sound.wav")
    _rig_capture(monkeypatch, limit=0)
    _rig_pyav(monkeypatch, empty=True)
    with pytest.raises(FrameReadError, match=r"clip 1\.mp4: has no video frames"):
        VideoFrames(video, cache_dir=tmp_path / "cache")


def _wav(path) -> None:
    """A short silent WAV file: a media file PyAV opens that has no video stream."""
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 800)


def test_pyav_decodes_by_default(video):
    with VideoFrames(video, resolution=-1) as source:
        assert isinstance(source._reader, video_readers.PyAVReader)
        assert source.fps == pytest.approx(10.0)


def test_opencv_reads_what_pyav_cannot(video, monkeypatch):
    _no_pyav(monkeypatch)
    with VideoFrames(video, resolution=-1, eager_limit=0) as source:
        assert isinstance(source._reader, video_readers.OpenCVReader)
        assert source._decoded == T  # OpenCV's count is not trusted: decoded to count
        assert len(source) == T and source.fps == pytest.approx(10.0)
        for t in (0, 5, T - 1):
            _assert_is_frame(source.get(t), t)


def test_a_frame_reads_the_same_before_and_after_eviction(video):
    with VideoFrames(video, resolution=-1, cache_size=1) as source:
        first = source.get(5)
        source.get(6)
        assert np.array_equal(source.get(5), first)


def test_background_decoding_interleaves_with_readers(video, tmp_path):
    with VideoFrames(video, resolution=-1, eager_limit=2) as source:
        assert source._decoded < T  # opened lazily
        thread = source.decode_in_background()
        _assert_is_frame(source.get(T - 1), T - 1)  # a reader is served meanwhile
        thread.join(timeout=30)
        assert not thread.is_alive() and source._decoded == T and len(source) == T
