"""Index-mask PNG reading/writing, the DAVIS palette and natural sort, on real files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from util.mask_io import MaskReadError, list_mask_files, read_index_mask, write_index_mask
from util.natural_sort import natural_key
from util.palette import DAVIS_PALETTE, palette_bytes


def test_palette_is_the_davis_one_and_read_only():
    assert DAVIS_PALETTE.shape == (256, 3) and DAVIS_PALETTE.dtype == np.uint8
    known = {
        0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128),
        5: (128, 0, 128), 7: (128, 128, 128), 8: (64, 0, 0), 255: (224, 224, 192),
    }  # fmt: skip
    for index, colour in known.items():
        assert tuple(DAVIS_PALETTE[index].tolist()) == colour
    assert len({tuple(c) for c in DAVIS_PALETTE.tolist()}) == 256
    with pytest.raises(ValueError):
        DAVIS_PALETTE[0, 0] = 1
    raw = palette_bytes()
    assert len(raw) == 768 and raw[3:6] == bytes([128, 0, 0])


def test_write_then_read_round_trips_every_id(tmp_path):
    mask = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "vidéo clip" / "00001.png"  # parent created, non-ASCII and a space
    write_index_mask(path, mask)
    with Image.open(path) as image:
        assert image.mode == "P"
        assert image.getpalette()[: 3 * 256] == DAVIS_PALETTE.flatten().tolist()
    assert np.array_equal(read_index_mask(path), mask)
    assert [p.name for p in path.parent.iterdir()] == ["00001.png"]  # no temp file left


def test_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "m.png"
    write_index_mask(path, np.ones((4, 4), np.uint8))
    write_index_mask(path, np.full((4, 4), 3, np.int64))
    assert (read_index_mask(path) == 3).all()
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "m.png"
    write_index_mask(path, np.full((4, 4), 2, np.uint8))

    def half_written(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        write_index_mask(path, np.full((4, 4), 5, np.uint8))
    monkeypatch.undo()
    assert (read_index_mask(path) == 2).all()
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]


@pytest.mark.parametrize(
    "bad", [np.full((2, 2), 256), np.full((2, 2), -1), np.zeros((2, 2, 3), np.uint8)]
)
def test_write_rejects_what_a_palette_png_cannot_hold(tmp_path, bad):
    with pytest.raises(ValueError):
        write_index_mask(tmp_path / "m.png", bad)
    assert not list(tmp_path.iterdir())


def test_rgb_davis_colours_map_to_ids(tmp_path):
    ids = np.array([[0, 1, 2], [3, 8, 255]], np.uint8)
    Image.fromarray(DAVIS_PALETTE[ids]).save(tmp_path / "rgb.png")
    assert np.array_equal(read_index_mask(tmp_path / "rgb.png"), ids)
    odd = DAVIS_PALETTE[ids].copy()
    odd[0, 0] = (1, 2, 3)
    Image.fromarray(odd).save(tmp_path / "odd.png")
    with pytest.raises(MaskReadError, match=r"odd\.png.*\(1, 2, 3\)"):
        read_index_mask(tmp_path / "odd.png")


def test_rgba_transparent_pixels_are_background(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 255  # white, not a palette colour...
    rgba[0, 0] = (*DAVIS_PALETTE[2], 255)  # ...except one opaque object pixel
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    assert read_index_mask(tmp_path / "a.png").tolist() == [[2, 0], [0, 0]]


def test_binary_grayscale_and_16_bit_masks(tmp_path):
    binary = np.zeros((4, 4), np.uint8)
    binary[1:3, 1:3] = 255
    Image.fromarray(binary, mode="L").save(tmp_path / "bin.png")
    assert np.array_equal(read_index_mask(tmp_path / "bin.png"), binary // 255)
    ids = np.array([[0, 2], [5, 255]], np.uint8)  # 255 beside other ids is an id, not binary
    Image.fromarray(ids, mode="L").save(tmp_path / "gray.png")
    assert np.array_equal(read_index_mask(tmp_path / "gray.png"), ids)
    Image.fromarray(ids.astype(np.uint16)).save(tmp_path / "ids16.png")
    assert np.array_equal(read_index_mask(tmp_path / "ids16.png"), ids)
    Image.fromarray(ids.astype(np.uint16) * 300).save(tmp_path / "big.png")
    with pytest.raises(MaskReadError, match=r"big\.png.*0\.\.255"):
        read_index_mask(tmp_path / "big.png")


def test_resize_is_nearest_neighbour(tmp_path):
    mask = np.zeros((10, 10), np.uint8)
    mask[:5] = 1
    mask[5:, 5:] = 7
    write_index_mask(tmp_path / "m.png", mask)
    big = read_index_mask(tmp_path / "m.png", size=(33, 47))
    assert big.shape == (33, 47) and big.dtype == np.uint8
    assert set(np.unique(big).tolist()) == {0, 1, 7}  # no blended ids like 3 or 4
    assert read_index_mask(tmp_path / "m.png", size=(10, 10)).tolist() == mask.tolist()


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(MaskReadError, match=r"none\.png.*not found"):
        read_index_mask(tmp_path / "none.png")
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    with pytest.raises(MaskReadError, match=r"^.*junk\.png: "):
        read_index_mask(tmp_path / "junk.png")
    write_index_mask(tmp_path / "ok.png", np.ones((32, 32), np.uint8))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(MaskReadError, match=r"cut\.png"):
        read_index_mask(tmp_path / "cut.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(MaskReadError, match=r"dir\.png"):
        read_index_mask(tmp_path / "dir.png")


def test_listing_is_natural_and_skips_hidden(tmp_path):
    for name in ["10.png", "2.png", "1.PNG", ".hidden.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "3.png").mkdir()
    assert [p.name for p in list_mask_files(tmp_path)] == ["1.PNG", "2.png", "10.png"]


def test_natural_key():
    names = ["f10", "F2", "f1", "f01", "x²", "²", "a", "A"]
    assert sorted(names, key=natural_key) == ["A", "a", "f01", "f1", "F2", "f10", "x²", "²"]
    assert sorted(reversed(names), key=natural_key) == sorted(names, key=natural_key)
