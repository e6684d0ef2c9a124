"""Index-mask PNG reading/writing and the DAVIS palette."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from util.mask_io import MaskReadError, list_mask_files, read_index_mask, write_index_mask
from util.natural_sort import natural_key
from util.palette import DAVIS_PALETTE


def test_palette_is_the_davis_one_and_read_only():
    assert DAVIS_PALETTE.shape == (256, 3)
    assert DAVIS_PALETTE[:5].tolist() == [
        [0, 0, 0],
        [128, 0, 0],
        [0, 128, 0],
        [128, 128, 0],
        [0, 0, 128],
    ]
    assert len({tuple(c) for c in DAVIS_PALETTE.tolist()}) == 256
    with pytest.raises(ValueError):
        DAVIS_PALETTE[0, 0] = 1


def test_write_then_read_round_trips_every_id(tmp_path):
    mask = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "vidéo clip" / "00001.png"
    write_index_mask(path, mask)
    with Image.open(path) as image:
        assert image.mode == "P"
        assert image.getpalette()[3:6] == [128, 0, 0]
    assert np.array_equal(read_index_mask(path), mask)
    assert [p.name for p in path.parent.iterdir()] == ["00001.png"]  # no temp file left


def test_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "m.png"
    write_index_mask(path, np.ones((4, 4), np.uint8))
    write_index_mask(path, np.full((4, 4), 3, np.uint8))
    assert (read_index_mask(path) == 3).all()


def test_rgb_davis_colours_map_to_ids(tmp_path):
    ids = np.array([[0, 1], [2, 3]], np.uint8)
    Image.fromarray(DAVIS_PALETTE[ids]).save(tmp_path / "rgb.png")
    assert np.array_equal(read_index_mask(tmp_path / "rgb.png"), ids)
    odd = DAVIS_PALETTE[ids].copy()
    odd[0, 0] = (1, 2, 3)
    Image.fromarray(odd).save(tmp_path / "odd.png")
    with pytest.raises(MaskReadError, match=r"odd\.png.*\(1, 2, 3\)"):
        read_index_mask(tmp_path / "odd.png")


def test_binary_and_grayscale_masks(tmp_path):
    binary = np.zeros((4, 4), np.uint8)
    binary[1:3, 1:3] = 255
    Image.fromarray(binary, mode="L").save(tmp_path / "bin.png")
    assert read_index_mask(tmp_path / "bin.png").max() == 1
    ids = np.array([[0, 2], [5, 1]], np.uint8)
    Image.fromarray(ids, mode="L").save(tmp_path / "gray.png")
    assert np.array_equal(read_index_mask(tmp_path / "gray.png"), ids)
    Image.fromarray(ids.astype(np.uint16) * 300).save(tmp_path / "big.png")
    with pytest.raises(MaskReadError, match="ids must be <= 255"):
        read_index_mask(tmp_path / "big.png")


def test_resize_is_nearest_neighbour(tmp_path):
    mask = np.zeros((10, 10), np.uint8)
    mask[:5] = 1
    mask[5:, 5:] = 7
    write_index_mask(tmp_path / "m.png", mask)
    big = read_index_mask(tmp_path / "m.png", size=(33, 47))
    assert big.shape == (33, 47)
    assert set(np.unique(big).tolist()) == {0, 1, 7}


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(MaskReadError, match="not found"):
        read_index_mask(tmp_path / "none.png")
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    with pytest.raises(MaskReadError, match="junk.png"):
        read_index_mask(tmp_path / "junk.png")


def test_listing_is_natural_and_skips_hidden(tmp_path):
    for name in ["10.png", "2.png", "1.png", ".hidden.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_mask_files(tmp_path)] == ["1.png", "2.png", "10.png"]
    assert sorted(["f10", "F2", "f1"], key=natural_key) == ["f1", "F2", "f10"]
