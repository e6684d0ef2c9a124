"""Frames read as viewers and players show them, on every path (issue 15, frame reading).

One table per kind of input, each generated here with tiny frames (PyAV and Pillow; no ffmpeg
command needed), checked through `open_frames` (what the GUI and the headless command both
call), the headless command (`workflow.headless.main`) and the GUI's opening path
(`workflow.open_project.open_project`, no window):

- JPEG/PNG/TIFF frames with an EXIF orientation: upright pixels, upright sizes before decoding;
- videos with a display rotation (and mirroring) in the container: applied by PyAV, rotations
  by the OpenCV fallback alike; PyAV and OpenCV give the same frames of a common clip;
- a variable-frame-rate clip whose duration x frame rate overstates its length: the true count;
- the source frame rate as `fps`;
- the output folder = the frames folder: refused, and our masks never listed as frames.
"""

from __future__ import annotations

import logging
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import inference_core.video_readers as video_readers
from inference_core.frame_range import FrameRange
from inference_core.frames import (
    ArrayFrames,
    FrameReadError,
    ImageFolderFrames,
    VideoFrames,
    open_frames,
)
from tests.gui_helpers import write_weights
from util.mask_io import read_index_mask, write_index_mask
from workflow.headless import main as headless_main
from workflow.open_project import StartupOptions, check_frames_not_overwritten, open_project

# Stored landscape: 112 wide, 64 tall (as make_exif_frames.py in the issue).
SH, SW = 64, 112


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_weights(tmp_path_factory.mktemp("weights"))


def _common(weights) -> list[str]:
    return [
        "--device", "cpu", "--resolution", "-1",
        "--prop_model", str(weights["stcn"]), "--fusion_model", str(weights["fusion_stcn"]),
    ]  # fmt: skip


def _gui_options(weights, output: Path, **inputs) -> StartupOptions:
    return StartupOptions(
        video=inputs.get("video"), images=inputs.get("images"), masks=inputs.get("masks"),
        output=str(output), num_objects=None, resolution=-1, mem_freq=5, fast=False,
        prop_model=str(weights["stcn"]), fusion_model=str(weights["fusion_stcn"]),
        s2m_model=None,
    )  # fmt: skip


def _scene(t: int, h: int = SH, w: int = SW) -> np.ndarray:
    """(h, w, 3) uint8: a ramp, a bright block in the top-left quarter and a moving bar.

    Nothing in it is symmetric, so every rotation or mirror gives another image.
    """
    ys, xs = np.mgrid[0:h, 0:w]
    frame = np.stack([xs * 200 // w, ys * 200 // h, np.full_like(xs, 90)], axis=2)
    frame[2 : h // 3, 2 : w // 4] = (250, 250, 250)
    x = 4 + (3 * t) % (w - 12)
    frame[h // 2 :, x : x + 6] = (20, 20, 230)
    return frame.astype(np.uint8)


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- EXIF orientation ------------------------------------------------------------------------

# orientation -> how the stored pixels are shown (the EXIF specification's eight cases)
SHOWN = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),  # rotate 90 clockwise to display (phones held upright)
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _exif_frames(folder: Path, orientation: int, ext: str = "jpg", count: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(count):
        exif = Image.Exif()
        exif[0x0112] = orientation
        extra = {"quality": 95} if ext == "jpg" else {}
        Image.fromarray(_scene(t)).save(folder / f"{t:05d}.{ext}", exif=exif.tobytes(), **extra)
    return folder


def _stored(path: Path) -> np.ndarray:
    """The pixels as stored: PNG and TIFF are lossless, a JPEG's as decoded by Pillow (which
    does not apply the orientation to JPEGs by itself)."""
    if path.suffix != ".jpg":
        return _scene(int(path.stem))
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("ext", ["jpg", "png", "tif"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_sizes_are_upright(tmp_path, orientation, ext):
    folder = _exif_frames(tmp_path / "frames", orientation, ext)
    upright_hw = (SW, SH) if orientation >= 5 else (SH, SW)
    source = open_frames(images=str(folder), resolution=-1)
    assert source.source_size == upright_hw and source.size == upright_hw
    assert source._cache.get(0) is None  # the sizes above came from a header: nothing decoded
    for t in range(3):
        frame = source.get(t)
        stored = _stored(folder / f"{t:05d}.{ext}")
        assert frame.shape == (*upright_hw, 3) and frame.flags.c_contiguous
        assert np.array_equal(frame, SHOWN[orientation](stored))
        with Image.open(folder / f"{t:05d}.{ext}") as image:  # what every EXIF-aware viewer shows
            assert np.array_equal(frame, np.asarray(ImageOps.exif_transpose(image).convert("RGB")))
    # the working size is computed from the upright size: the shorter side is the width here
    small = open_frames(images=str(folder), resolution=32)
    assert small.size == ((56, 32) if orientation >= 5 else (32, 56))
    assert small.get(0).shape == (*small.size, 3)


def test_exif_orientation_6_is_a_quarter_turn_clockwise(tmp_path):
    folder = _exif_frames(tmp_path / "frames", 6)
    source = ImageFolderFrames(folder, resolution=-1)
    frame = source.get(1)
    assert frame.shape == (112, 64, 3)  # 64 wide, 112 tall
    assert np.array_equal(frame, np.rot90(_stored(folder / "00001.jpg"), k=-1))
    # the bright block stored top-left is shown top-right
    assert frame[2:20, 45:62].mean() > 240 and frame[2:20, 2:19].mean() < 200


def _upright_mask() -> np.ndarray:
    """A mask drawn on the upright (portrait, 64 wide x 112 tall) frame 0."""
    mask = np.zeros((SW, SH), np.uint8)
    mask[10:50, 8:40] = 1
    mask[70:100, 30:60] = 2
    return mask


def test_exif_frames_through_the_headless_command_and_the_gui_opening_path(
    tmp_path, weights, caplog
):
    caplog.set_level(logging.WARNING)
    frames = _exif_frames(tmp_path / "frames", 6, count=6)
    masks = tmp_path / "masks"
    write_index_mask(masks / "00000.png", _upright_mask())
    out = tmp_path / "out"
    argv = ["--images", str(frames), "--masks", str(masks), "--output", str(out)]
    assert headless_main([*argv, *_common(weights)]) == 0
    written = sorted(out.glob("*.png"))
    assert [p.name for p in written] == [f"{t:05d}.png" for t in range(6)]
    for path in written:
        assert read_index_mask(path).shape == (SW, SH)  # upright: 112 tall, 64 wide
    assert np.array_equal(read_index_mask(out / "00000.png"), _upright_mask())  # as drawn
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [line for line in warned if "resiz" in line], warned

    opts = _gui_options(weights, tmp_path / "gui", images=str(frames), masks=str(masks))
    project, _ = open_project(opts, torch.device("cpu"))
    try:
        frames_seen = project.session.frames
        assert frames_seen.source_size == (SW, SH) and frames_seen.size == (SW, SH)
        assert np.array_equal(frames_seen.get(0), np.rot90(_stored(frames / "00000.jpg"), -1))
        assert np.array_equal(project.labels_at_source(0), _upright_mask())
    finally:
        project.close()


# --- videos: one decoder, display rotation ---------------------------------------------------


def _patch_tkhd_matrix(path: Path, matrix: tuple[int, ...]) -> None:
    """Write a display matrix into an MP4's track header (for PyAV without set_display_*)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"tkhd") + 4
    version = data[at]
    start = at + 4 + (32 if version == 1 else 20) + 16
    data[start : start + 36] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(data))


def _write_video(
    path: Path,
    frames: list[np.ndarray],
    rate: int = 10,
    rotation: tuple[int, bool, bool] = (0, False, False),
    pts: list[int] | None = None,
    last_duration: int | None = None,
) -> Path:
    """H.264 (yuv420p) through PyAV; `pts` in 1/1000 s for variable rates; `rotation` is
    (degrees counter-clockwise, hflip, vflip) stored as the container's display matrix."""
    h, w = frames[0].shape[:2]
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.options = {"crf": "12"}
    patch = None
    if rotation != (0, False, False):
        if hasattr(stream, "set_display_rotation"):
            stream.set_display_rotation(rotation[0], hflip=rotation[1], vflip=rotation[2])
        else:
            assert rotation[1:] == (False, False) and path.suffix == ".mp4"
            patch = video_readers.rotation_matrix(rotation[0])
    if pts is not None:
        stream.codec_context.time_base = Fraction(1, 1000)
    packets = []
    for t, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if pts is not None:
            frame.pts, frame.time_base = pts[t], Fraction(1, 1000)
        packets += stream.encode(frame)
    packets += stream.encode()
    if last_duration is not None:  # how long the last picture stays on screen (a pause)
        last = max(packets, key=lambda p: p.pts)
        last.duration = int(last_duration / 1000 / last.time_base)
    for packet in packets:
        container.mux(packet)
    container.close()
    if patch is not None:
        _patch_tkhd_matrix(path, (*patch[:8], 1 << 30))
    return path


ROTATIONS = {
    # (degrees counter-clockwise, hflip, vflip) -> the upright image players show
    (90, False, False): lambda a: np.rot90(a, 1),
    (180, False, False): lambda a: np.rot90(a, 2),
    (270, False, False): lambda a: np.rot90(a, 3),  # a phone held upright: 90 clockwise
    (0, True, False): lambda a: a[:, ::-1],
    (0, False, True): lambda a: a[::-1],
    (90, True, False): lambda a: np.rot90(a, 1)[:, ::-1],
}


@pytest.mark.parametrize("rotation", list(ROTATIONS), ids=str)
def test_video_display_rotation_is_applied(tmp_path, rotation):
    frames = [_scene(t, 32, 64) for t in range(4)]
    path = _write_video(tmp_path / "rotated.mp4", frames, rotation=rotation)
    expected = [np.ascontiguousarray(ROTATIONS[rotation](f)) for f in frames]
    with open_frames(video=path, resolution=-1) as source:
        assert isinstance(source._reader, video_readers.PyAVReader)
        assert source.source_size == expected[0].shape[:2] == source.size
        for t in range(4):
            assert _mean_diff(source.get(t), expected[t]) < 6
            others = [
                _mean_diff(source.get(t), g(frames[t]))
                for g in ROTATIONS.values()
                if g(frames[t]).shape == expected[t].shape and g is not ROTATIONS[rotation]
            ]
            assert all(d > 20 for d in others)  # it is this orientation, not a look-alike


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_the_opencv_fallback_applies_the_same_rotation(tmp_path, degrees, monkeypatch):
    frames = [_scene(t, 32, 64) for t in range(3)]
    path = _write_video(tmp_path / "rotated.mp4", frames, rotation=(degrees, False, False))
    with VideoFrames(path, resolution=-1) as by_pyav:
        pyav_frames = [by_pyav.get(t) for t in range(3)]
    monkeypatch.setattr(video_readers, "PyAVReader", _refuse)
    with VideoFrames(path, resolution=-1) as by_opencv:
        assert isinstance(by_opencv._reader, video_readers.OpenCVReader)
        assert len(by_opencv) == 3
        for t in range(3):
            assert _mean_diff(by_opencv.get(t), pyav_frames[t]) < 2


def _refuse(path):
    raise ValueError(f"{path}: pretend PyAV cannot open this")


def test_a_rotation_known_only_as_a_rotate_tag_is_applied():
    """Older FFmpeg (<= 4) reported the rotation as the stream's "rotate" tag (clockwise)."""

    class Frame:  # a decoded frame without side data, as older PyAV gave
        side_data = ()
        rotation = 0

    class Stream:
        metadata = {"rotate": "90"}

    matrix = video_readers._display_matrix(Frame(), Stream())
    image = _scene(0, 32, 64)
    assert np.array_equal(video_readers.apply_display_matrix(image, matrix), np.rot90(image, -1))
    Frame.rotation = 90  # newer PyAV: the angle, counter-clockwise
    matrix = video_readers._display_matrix(Frame(), type("S", (), {"metadata": {}})())
    assert np.array_equal(video_readers.apply_display_matrix(image, matrix), np.rot90(image, 1))


def _opencv_clip(path: Path, frames: list[np.ndarray], fourcc: str) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _read_all(reader) -> list[np.ndarray]:
    frames = []
    while (frame := reader.read()) is not None:
        frames.append(frame)
    reader.release()
    return frames


@pytest.mark.parametrize("kind", ["h264.mp4", "mp4v.mp4", "mjpg.avi", "h264.mkv"])
def test_pyav_and_opencv_decode_a_common_clip_alike(tmp_path, kind):
    frames = [_scene(t, 48, 64) for t in range(8)]
    codec, suffix = kind.split(".")
    path = tmp_path / f"clip.{suffix}"
    if codec == "h264":
        _write_video(path, frames)
    else:
        _opencv_clip(path, frames, codec.upper())
    by_pyav = _read_all(video_readers.PyAVReader(path))
    by_opencv = _read_all(video_readers.OpenCVReader(path))
    assert len(by_pyav) == len(by_opencv) == 8
    for a, b in zip(by_pyav, by_opencv, strict=True):
        assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape == (48, 64, 3)
        assert _mean_diff(a, b) < 2
    for t, frame in enumerate(by_pyav):  # and both are the clip, in BGR
        assert _mean_diff(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), frames[t]) < 8


# --- variable frame rate ---------------------------------------------------------------------

VFR_FRAMES = 310  # above VideoFrames' eager limit (300): the lazily decoded path


def _vfr_scene(t: int) -> np.ndarray:
    frame = _scene(t, 48, 64)
    frame[:6] = 40 + 30 * (t % 7)  # a band that tells neighbouring frames apart
    return frame


@pytest.fixture(scope="module", params=["mkv", "mp4"])
def vfr_clip(request, tmp_path_factory):
    """25 fps with a 1 s pause after frame 100 and a last frame that stays 3 s (in Matroska)."""
    pts = [40 * t + (1000 if t > 100 else 0) for t in range(VFR_FRAMES)]
    path = tmp_path_factory.mktemp("vfr") / f"vfr.{request.param}"
    frames = [_vfr_scene(t) for t in range(VFR_FRAMES)]
    return _write_video(path, frames, rate=25, pts=pts, last_duration=3000)


def test_variable_frame_rate_clip_has_its_true_length(vfr_clip):
    with av.open(str(vfr_clip)) as container:  # the clip is the kind the issue describes
        stream = container.streams.video[0]
        by_duration = container.duration / 1e6 * float(stream.base_rate)
    assert by_duration > VFR_FRAMES + 90  # duration x nominal rate (25) overstates the length
    with open_frames(video=vfr_clip, resolution=-1) as source:
        assert len(source) == VFR_FRAMES and len(source.names) == VFR_FRAMES
        assert source._decoded < VFR_FRAMES  # long: decoded lazily, the count came first
        last = source.get(VFR_FRAMES - 1)
        assert _mean_diff(last, _vfr_scene(VFR_FRAMES - 1)) < 6
        assert _mean_diff(last, _vfr_scene(VFR_FRAMES - 2)) > 10
        assert _mean_diff(source.get(101), _vfr_scene(101)) < 6  # after the pause
        with pytest.raises(IndexError):
            source.get(VFR_FRAMES)
        assert len(source) == VFR_FRAMES  # reaching the end changed nothing


def test_variable_frame_rate_clip_through_the_opencv_fallback(vfr_clip, monkeypatch):
    monkeypatch.setattr(video_readers, "PyAVReader", _refuse)
    capture = cv2.VideoCapture(str(vfr_clip))
    opencv_says = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    capture.release()
    with open_frames(video=vfr_clip, resolution=-1) as source:
        assert isinstance(source._reader, video_readers.OpenCVReader)
        assert len(source) == VFR_FRAMES, f"OpenCV's own count: {opencv_says}"
        assert _mean_diff(source.get(VFR_FRAMES - 1), _vfr_scene(VFR_FRAMES - 1)) < 6


def test_variable_frame_rate_clip_through_the_headless_command(vfr_clip, tmp_path, weights):
    masks = tmp_path / "masks"
    mask = np.zeros((48, 64), np.uint8)
    mask[24:48, 10:20] = 1
    write_index_mask(masks / "00300.png", mask)
    out = tmp_path / "out"
    argv = ["--video", str(vfr_clip), "--masks", str(masks), "--output", str(out), "--start",
            "300", *_common(weights)]  # fmt: skip
    assert headless_main(argv) == 0
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == [f"{t:05d}.png" for t in range(300, VFR_FRAMES)]  # one per real frame
    assert read_index_mask(out / f"{VFR_FRAMES - 1:05d}.png").shape == (48, 64)


# --- frame rate ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["mp4", "mkv"])
@pytest.mark.parametrize("rate", [10, 30])
def test_videos_expose_their_frame_rate(tmp_path, suffix, rate):
    path = _write_video(tmp_path / f"clip.{suffix}", [_scene(t, 32, 48) for t in range(5)], rate)
    with open_frames(video=path, resolution=-1) as source:
        assert source.fps == pytest.approx(rate)
        assert FrameRange(source, 1, 4).fps == pytest.approx(rate)


def test_opencv_fallback_exposes_the_frame_rate(tmp_path, monkeypatch):
    path = _opencv_clip(tmp_path / "clip.avi", [_scene(t, 32, 48) for t in range(5)], "MJPG")
    monkeypatch.setattr(video_readers, "PyAVReader", _refuse)
    with open_frames(video=path, resolution=-1) as source:
        assert isinstance(source._reader, video_readers.OpenCVReader)
        assert source.fps == pytest.approx(10)


def test_image_folders_and_arrays_have_no_frame_rate(tmp_path):
    folder = _exif_frames(tmp_path / "frames", 1)
    images = open_frames(images=str(folder))
    arrays = ArrayFrames(np.stack([_scene(t) for t in range(3)]))
    for source in (images, arrays, FrameRange(images, 1), FrameRange(arrays, 0, 2)):
        assert source.fps is None


def test_a_reused_video_cache_keeps_the_frame_rate(tmp_path):
    path = _write_video(tmp_path / "clip.mkv", [_scene(t, 32, 48) for t in range(5)], 12)
    VideoFrames(path, resolution=-1, cache_dir=tmp_path / "cache").close()
    with VideoFrames(path, resolution=-1, cache_dir=tmp_path / "cache") as again:
        assert again._reader is not None and len(again) == 5
        assert again.fps == pytest.approx(12)


# --- the output folder is the frames folder --------------------------------------------------


def _plain_frames(folder: Path, ext: str, count: int = 5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(count):
        Image.fromarray(_scene(t, 48, 64)).save(folder / f"{t:05d}.{ext}")
    return folder


@pytest.mark.parametrize("ext", ["jpg", "png", "bmp", "tif"])
@pytest.mark.parametrize("spelling", ["same", "dot", "relative"])
def test_an_output_folder_that_is_the_frames_folder_is_refused(
    tmp_path, ext, spelling, monkeypatch
):
    folder = _plain_frames(tmp_path / "my frames", ext)
    source = open_frames(images=str(folder))
    monkeypatch.chdir(tmp_path)
    output = {"same": folder, "dot": folder / ".", "relative": Path("my frames")}[spelling]
    with pytest.raises(ValueError, match="is the frames folder") as info:
        check_frames_not_overwritten(output, source)
    assert str(info.value).startswith(f"{output}: ")
    check_frames_not_overwritten(tmp_path / "elsewhere", source)  # any other folder is fine
    check_frames_not_overwritten(folder / "masks", source)


def test_a_video_never_clashes_with_its_output_folder(tmp_path):
    path = _write_video(tmp_path / "clip.mp4", [_scene(t, 32, 48) for t in range(3)])
    with open_frames(video=path) as source:
        check_frames_not_overwritten(tmp_path, source)


def test_headless_refuses_the_frames_folder_as_output_every_run(tmp_path, weights, capsys):
    folder = _plain_frames(tmp_path / "frames", "jpg", 10)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    masks = tmp_path / "masks"
    write_index_mask(masks / "00005.png", np.eye(48, 64, dtype=np.uint8))
    argv = ["--images", str(folder), "--masks", str(masks), "--output", str(folder),
            *_common(weights)]  # fmt: skip
    for _ in range(2):
        assert headless_main(argv) == 2
        err = capsys.readouterr().err
        assert f"{folder}: is the frames folder" in err and "Traceback" not in err
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written


def test_the_gui_opening_path_refuses_the_frames_folder_as_output(tmp_path, weights):
    folder = _plain_frames(tmp_path / "frames", "jpg")
    opts = _gui_options(weights, folder, images=str(folder))
    with pytest.raises(ValueError, match=f"^{folder}: is the frames folder"):
        open_project(opts, torch.device("cpu"))
    assert sorted(p.suffix for p in folder.iterdir()) == [".jpg"] * 5


@pytest.mark.parametrize("project_file", [".mivos_project.json", ".mivos_session.json"])
def test_masks_saved_among_the_frames_are_not_listed_as_frames(tmp_path, project_file, caplog):
    """What an earlier version left when --output was the frames folder: never read back."""
    folder = _plain_frames(tmp_path / "frames", "jpg")
    for t in range(5):
        write_index_mask(folder / f"{t:05d}.png", np.full((48, 64), t % 2, np.uint8))
    (folder / project_file).write_text("{}")
    with caplog.at_level(logging.WARNING, logger="inference_core.frames"):
        source = ImageFolderFrames(folder, resolution=-1)
    assert [p.name for p in source.files] == [f"{t:05d}.jpg" for t in range(5)]
    assert source.names == [f"{t:05d}" for t in range(5)]
    assert _mean_diff(source.get(4), _scene(4, 48, 64)) < 4
    (line,) = [r.getMessage() for r in caplog.records]
    assert str(folder) in line and "5 PNG files" in line


def test_without_a_project_file_every_image_is_a_frame(tmp_path):
    """A person's own folder may mix formats: only a folder we saved into is filtered."""
    folder = _plain_frames(tmp_path / "frames", "jpg", 2)
    _plain_frames(folder, "png", 2)
    assert ImageFolderFrames(folder).names == ["00000.jpg", "00000.png", "00001.jpg", "00001.png"]
    only_png = _plain_frames(tmp_path / "png frames", "png", 3)
    (only_png / ".mivos_project.json").write_text("{}")
    assert len(ImageFolderFrames(only_png)) == 3  # PNG frames with no other-format twin stay


def test_a_frame_read_error_names_the_file(tmp_path):
    folder = _exif_frames(tmp_path / "frames", 6)
    (folder / "00001.jpg").write_bytes(b"not a jpeg")
    source = ImageFolderFrames(folder)
    with pytest.raises(FrameReadError, match=r"00001\.jpg: is not a readable image"):
        source.get(1)
