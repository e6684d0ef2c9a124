"""Bad input to the headless command: one line naming the file, never a traceback (table-driven).

Each case builds a real input on disk; the command either succeeds (inputs it can convert
sensibly, with a warning where something was changed) or exits 2 with one `error:` line.
"""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from model.build import FUSION, PROPAGATION, S2M
from tests.shared_assets import REPO
from util.mask_io import write_index_mask

H, W, T = 32, 48, 3


def _frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (T, H, W, 3), dtype=np.uint8)


def _mask(value: int = 1, size=(H, W)) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    mask[size[0] // 4 : size[0] // 2, size[1] // 4 : size[1] // 2] = value
    return mask


def _video(path, frames) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for frame in frames:
        writer.write(frame[..., ::-1].copy())
    writer.release()
    return str(path)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_input_weights")
    torch.manual_seed(0)
    torch.save(PROPAGATION.factory().state_dict(), folder / "stcn.pth")
    torch.save(FUSION.factory().state_dict(), folder / "fusion_stcn.pth")
    torch.save(S2M.factory().state_dict(), folder / "s2m.pth")
    return folder


def _images(folder, frames, mode=None, sizes=None):
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        image = Image.fromarray(frame)
        if sizes:
            image = image.resize(sizes[t])
        if mode == "L":
            image = image.convert("L")
        elif mode == "RGBA":
            image = image.convert("RGBA")
        elif mode == "P":
            image = image.convert("P")
        elif mode == "I;16":
            image = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
        image.save(folder / f"{t:05d}.png")
    return str(folder)


def _case(name, tmp, weights):
    """(source args, masks dir, extra args, expected: 'ok' | text the error must contain)."""
    frames = _frames()
    masks = tmp / "masks"
    write_index_mask(masks / "00000.png", _mask())
    prop = weights / "stcn.pth"
    extra = []
    if name == "missing_path":
        return ["--video", str(tmp / "nope.mp4")], masks, extra, "nope.mp4"
    if name == "not_a_video":
        (tmp / "notes.mp4").write_text("hello")
        return ["--video", str(tmp / "notes.mp4")], masks, extra, "notes.mp4"
    if name == "zero_frames":
        return ["--video", _video(tmp / "empty.mp4", [])], masks, extra, "empty.mp4"
    if name == "truncated_video":
        path = tmp / "cut.mp4"
        _video(path, np.repeat(frames, 10, axis=0))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return ["--video", str(path)], masks, extra, "cut.mp4"
    if name == "empty_folder":
        (tmp / "nothing").mkdir()
        return ["--images", str(tmp / "nothing")], masks, extra, "nothing"
    if name == "only_non_images":
        (tmp / "docs").mkdir()
        (tmp / "docs" / "a.txt").write_text("x")
        return ["--images", str(tmp / "docs")], masks, extra, "contains no images"
    if name in ("grayscale", "rgba", "palette", "16bit"):
        mode = {"grayscale": "L", "rgba": "RGBA", "palette": "P", "16bit": "I;16"}[name]
        return ["--images", _images(tmp / name, frames, mode)], masks, extra, "ok"
    if name == "mixed_sizes":
        sizes = [(W, H), (W + 8, H + 4), (W, H)]
        return ["--images", _images(tmp / "mixed", frames, sizes=sizes)], masks, extra, "ok"
    if name == "non_ascii_path":
        return ["--images", _images(tmp / "vidéo à côté", frames)], masks, extra, "ok"
    if name == "mask_other_size":
        write_index_mask(masks / "00000.png", _mask(size=(H * 2, W * 2)))
        return ["--images", _images(tmp / "f", frames)], masks, extra, "ok"
    if name == "too_many_ids":
        write_index_mask(masks / "00000.png", _mask(3))
        return ["--images", _images(tmp / "f", frames)], masks, ["--num_objects", "2"], "00000.png"
    if name == "fewer_masks_than_frames":
        return ["--images", _images(tmp / "f", frames)], masks, extra, "ok"
    checkpoint = tmp / "stcn.pth"
    if name == "truncated_checkpoint":
        checkpoint.write_bytes(prop.read_bytes()[:100_000])
    elif name == "html_checkpoint":
        checkpoint.write_text("<!DOCTYPE html><html><body>Quota exceeded</body></html>")
    elif name == "wrong_model_checkpoint":
        checkpoint = weights / "s2m.pth"
    elif name == "output_is_a_file":
        (tmp / "out").write_text("a file, not a folder")
        return ["--images", _images(tmp / "f", frames)], masks, extra, "out"
    else:
        raise AssertionError(name)
    args = ["--images", _images(tmp / "f", frames), "--prop_model", str(checkpoint)]
    return args, masks, extra, checkpoint.name


CASES = [
    "missing_path", "not_a_video", "zero_frames", "truncated_video", "empty_folder",
    "only_non_images", "grayscale", "rgba", "palette", "16bit", "mixed_sizes", "non_ascii_path",
    "mask_other_size", "too_many_ids", "fewer_masks_than_frames", "truncated_checkpoint",
    "html_checkpoint", "wrong_model_checkpoint", "output_is_a_file",
]  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name, tmp_path, weights):
    source, masks, extra, expected = _case(name, tmp_path, weights)
    cmd = [
        sys.executable, "-m", "inference_core", "--masks", str(masks), "--output",
        str(tmp_path / "out"), "--device", "cpu", "--prop_model", str(weights / "stcn.pth"),
        "--fusion_model", str(weights / "fusion_stcn.pth"), *source, *extra,
    ]  # fmt: skip
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in run.stderr, run.stderr
    if expected == "ok":
        assert run.returncode == 0, run.stderr
        written = sorted((tmp_path / "out").glob("*.png"))
        assert len(written) == T
        assert all(Image.open(p).size == Image.open(written[0]).size for p in written)
    elif name == "truncated_video":
        # Half a file: either the readable frames are processed, or one line names the file.
        assert run.returncode == 0 or (run.returncode == 2 and expected in run.stderr)
    else:
        assert run.returncode == 2, run.stderr
        errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and expected in errors[0], run.stderr
    if name in ("mask_other_size", "mixed_sizes"):
        assert "WARNING" in run.stderr and ("00000.png" in run.stderr or "00001.png" in run.stderr)
