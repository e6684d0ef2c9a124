"""Long videos stay bounded: frame caches, memory-mapped results, the optional memory cap."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames, ImageFolderFrames
from inference_core.memory_bank import MemoryBank
from inference_core.result_storage import ResultArrays
from inference_core.results import ResultStore
from inference_core.session import Session
from model.build import load_networks
from tests.project_helpers import project_for, propagate_masks


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return load_networks(None, None, None, "cpu")


def _first_mask(h, w):
    mask = np.zeros((h, w), np.uint8)
    mask[8:24, 10:30] = 1
    return mask


def test_a_long_video_results_are_memory_mapped(tmp_path):
    # 400 frames at 480p with 2 objects (~1.2 GB) are just over the default 1 GiB RAM budget;
    # the files are sparse, but stay small in case a CI disk is not.
    store = ResultStore(400, (480, 864), 2, (5, 5, 0, 0), storage_dir=None)
    assert isinstance(store.storage.labels, np.memmap)
    assert store.storage.memory_mapped
    prob = np.full((3, 480, 864), 1 / 3, np.float32)
    store.set_prob(399, prob)
    assert np.allclose(store.prob(399), prob, atol=1e-3) and store.has_prob(399)
    assert not store.has_prob(0)
    explicit = ResultStore(400, (480, 864), 2, (5, 5, 0, 0), storage_dir=tmp_path / "res")
    assert explicit.storage.memory_mapped
    assert (tmp_path / "res" / "probs.npy").stat().st_size >= 400 * 3 * 480 * 864 * 2
    assert (tmp_path / "res" / "labels.npy").stat().st_size >= 400 * 480 * 864
    explicit.set_prob(3, prob)
    assert explicit.padded_mask(3).shape == (480, 864)
    short = ResultStore(10, (64, 96), 1, (0, 0, 0, 0))
    assert not short.storage.memory_mapped and not isinstance(short.storage.labels, np.memmap)
    explicit.storage.close()  # a folder the caller named stays: it is the caller's
    assert (tmp_path / "res" / "probs.npy").is_file()
    store.storage.close()


def test_spilled_results_in_a_temporary_folder_are_removed_even_without_close():
    # Spilled results of a dropped session (e.g. the GUI reopening another video) must not stay
    # in /tmp: at 480p they take ~0.5 GB of disk per 1,000 frames actually written.
    spilled = ResultArrays(4, 2, (32, 48), np.dtype(np.float16), ram_budget=0)
    folder = Path(spilled.labels.filename).parent
    assert folder.is_dir() and folder.name.startswith("mivos-results-")
    del spilled
    gc.collect()
    assert not folder.exists()
    closed = ResultArrays(4, 2, (32, 48), np.dtype(np.float16), ram_budget=0)
    folder = Path(closed.labels.filename).parent
    closed.close()
    assert not folder.exists()
    closed.close()  # idempotent


def test_memory_mapped_results_equal_ram_results(nets, tmp_path):
    frames = ArrayFrames(np.random.default_rng(0).integers(0, 255, (6, 32, 48, 3), np.uint8))
    outputs = []
    for storage in (None, tmp_path / "mapped"):
        budget = 1 << 30 if storage is None else 0  # 0: always memory-mapped
        cfg = InferenceConfig(prob_dtype="float32", result_ram_budget=budget)
        session = Session(nets, frames, 1, cfg, storage_dir=storage)
        propagate_masks(session, {0: _first_mask(32, 48)})
        assert session.results.storage.memory_mapped == (storage is not None)
        outputs.append(np.stack([session.results.prob(t) for t in range(6)]))
    assert np.array_equal(*outputs)


def test_frame_and_feature_caches_stay_bounded_during_propagation(nets, tmp_path):
    rng = np.random.default_rng(1)
    for t in range(40):
        Image.fromarray(rng.integers(0, 255, (32, 48, 3), np.uint8)).save(tmp_path / f"{t}.png")
    frames = ImageFolderFrames(tmp_path, resolution=-1, cache_size=3)
    session = Session(nets, frames, 1, InferenceConfig(feature_cache=2, image_cache=2))
    sizes = []
    project = project_for(session)
    project.import_mask(0, _first_mask(32, 48), _first_mask(32, 48))
    project.propagate(
        on_frame=lambda *_: sizes.append(
            (len(frames._cache), len(session._features), len(session._images))
        )
    )
    assert len(sizes) == 39
    assert max(s[0] for s in sizes) <= 3
    assert max(s[1] for s in sizes) <= 2 and max(s[2] for s in sizes) <= 2


def test_outputs_are_identical_with_caches_on_and_off(nets):
    frames = ArrayFrames(np.random.default_rng(2).integers(0, 255, (8, 32, 48, 3), np.uint8))
    outputs = []
    for cache in (1, 16):
        cfg = InferenceConfig(prob_dtype="float32", feature_cache=cache, image_cache=cache)
        session = Session(nets, frames, 2, cfg)
        mask = _first_mask(32, 48)
        mask[2:6, 2:6] = 2
        other = np.zeros_like(mask)
        other[10:20, 20:40] = 2
        propagate_masks(session, {1: mask, 6: other})
        outputs.append(np.stack([session.results.prob(t) for t in range(8)]))
    assert np.array_equal(*outputs)


def test_the_optional_cap_keeps_the_newest_pass_frames():
    keys = torch.zeros(1, 2, 1, 1, 1)
    values = torch.zeros(1, 3, 1, 1, 1)
    bank = MemoryBank(keys, values, extra=2, rolling=True)
    for i in range(1, 6):
        bank.add(torch.full((1, 2, 1, 1), float(i)), torch.full((1, 3, 1, 1, 1), float(i)))
        assert bank.keys.shape[2] <= 3
    assert bank.keys[0, 0, :, 0, 0].tolist() == [0.0, 4.0, 5.0]  # certain entry, then newest
    strict = MemoryBank(keys, values, extra=1)
    strict.add(torch.ones(1, 2, 1, 1), torch.ones(1, 3, 1, 1, 1))
    with pytest.raises(RuntimeError, match="full"):
        strict.add(torch.ones(1, 2, 1, 1), torch.ones(1, 3, 1, 1, 1))


def test_a_capped_session_propagates_a_long_pass(nets):
    frames = ArrayFrames(np.random.default_rng(3).integers(0, 255, (24, 32, 48, 3), np.uint8))
    cfg = InferenceConfig(mem_freq=2, max_pass_memory=3)
    session = Session(nets, frames, 1, cfg)
    assert len(propagate_masks(session, {0: _first_mask(32, 48)})) == 23
