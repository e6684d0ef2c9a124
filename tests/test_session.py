"""The session's round semantics (inference.md 4-8) on tiny frames with random weights."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from inference_core.config import InferenceConfig
from inference_core.frames import ArrayFrames
from inference_core.observer import RoundObserver
from inference_core.session import Session
from model.build import load_networks

H0, W0 = 50, 70  # odd size: padded to 64 x 80


class Recorder(RoundObserver):
    def __init__(self):
        self.memory, self.fusions = [], []

    def memory_written(self, t):
        self.memory.append(t)

    def fused(self, details):
        self.fusions.append((details.tc, details.tr, details.ti, details.dist.flatten().tolist()))


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return load_networks(None, None, None, "cpu")


def _frames(num_frames: int) -> ArrayFrames:
    rng = np.random.default_rng(0)
    return ArrayFrames(rng.integers(0, 256, (num_frames, H0, W0, 3), dtype=np.uint8))


def _blob_prob(session: Session, seed: int) -> torch.Tensor:
    """A (K+1,1,H,W) distribution where each object owns a random rectangle."""
    rng = np.random.default_rng(seed)
    h, w = session.padded_size
    labels = np.zeros((h, w), np.int64)
    for k in range(1, session.num_objects + 1):
        y, x = rng.integers(0, h - 16), rng.integers(0, w - 16)
        labels[y : y + 16, x : x + 16] = k
    onehot = np.eye(session.num_objects + 1, dtype=np.float32)[labels].transpose(2, 0, 1)
    return torch.from_numpy(onehot).unsqueeze(1)


def _session(
    nets, num_frames=10, num_objects=2, mem_freq=5, reinteraction="append"
) -> tuple[Session, Recorder]:
    rec = Recorder()
    cfg = InferenceConfig(mem_freq=mem_freq, prob_dtype="float32", reinteraction=reinteraction)
    return Session(nets, _frames(num_frames), num_objects, cfg, observer=rec), rec


def _run(session, t, prob):
    session.commit(t, prob)
    return list(session.propagate(t))


def test_first_round_covers_the_whole_video_both_ways(nets):
    session, rec = _session(nets)
    order = _run(session, 3, _blob_prob(session, 0))
    assert order == [4, 5, 6, 7, 8, 9, 2, 1, 0]
    assert rec.fusions == []
    assert all(session.results.has_prob(t) for t in range(10))


def test_second_round_stops_at_the_nearest_interacted_frames_and_fuses_between(nets):
    session, rec = _session(nets, num_frames=12)
    _run(session, 2, _blob_prob(session, 0))
    before = {t: session.results.prob(t) for t in range(12)}
    rec.fusions.clear()
    order = _run(session, 7, _blob_prob(session, 1))
    assert order == [8, 9, 10, 11, 6, 5, 4, 3]
    # fusion only between the two interacted frames, with n_c = |tc-ti|/5, n_r = |tr-ti|/5
    assert [(tc, tr, ti) for tc, tr, ti, _ in rec.fusions] == [(2, 7, t) for t in (6, 5, 4, 3)]
    assert rec.fusions[-1][3] == pytest.approx([0.2, 0.8])
    for t in (0, 1):  # beyond the earlier interaction: untouched
        assert np.array_equal(session.results.prob(t), before[t])
    for t in (3, 8):
        assert not np.allclose(session.results.prob(t), before[t])


def test_memory_holds_interacted_frames_and_every_mem_freq_th_frame(nets):
    session, rec = _session(nets, num_frames=13, mem_freq=5)
    _run(session, 0, _blob_prob(session, 0))
    # range 1..12: writes at 5 and 10; the pass's last frame (12) is never written
    assert rec.memory == [0, 5, 10]
    session2, rec2 = _session(nets, num_frames=11, mem_freq=5)
    _run(session2, 0, _blob_prob(session2, 0))
    assert rec2.memory == [0, 5]  # 10 is the last frame of the range
    session3, rec3 = _session(nets, num_frames=9, mem_freq=2)
    _run(session3, 4, _blob_prob(session3, 0))
    assert rec3.memory == [4, 6, 2]  # forward 5..8, backward 3..0; a pass end is never written


def test_reinteracting_a_frame_keeps_both_entries_in_certain_memory(nets):
    session, rec = _session(nets, num_frames=6)
    _run(session, 2, _blob_prob(session, 0))
    _run(session, 2, _blob_prob(session, 1))
    assert session.interacted == [2, 2]
    assert session._certain_keys.shape[2] == 2


def test_replace_rule_keeps_one_certain_entry_per_frame_holding_the_newest_mask(nets):
    session, _ = _session(nets, num_frames=6, reinteraction="replace")
    _run(session, 2, _blob_prob(session, 0))
    _run(session, 4, _blob_prob(session, 1))
    newest = _blob_prob(session, 2)
    _run(session, 2, newest)
    assert session.interacted == [2, 4, 2]
    assert session.memory_report()["certain_entries"] == 2
    # the slot of frame 2 holds the value of its newest mask, not the first one
    with torch.inference_mode():
        feats = session.features(2)
        value = session.nets.prop.encode_value(session.image(2), feats.f16, newest[1:])
    assert torch.allclose(session._certain_values[:, :, 0], value[:, :, 0], atol=1e-6)
    assert torch.allclose(session._certain_keys[:, :, 0], feats.k16, atol=1e-6)


def test_replace_and_append_agree_until_a_frame_is_interacted_again(nets):
    results = []
    for rule in ("replace", "append"):
        session, _ = _session(nets, num_frames=6, reinteraction=rule)
        _run(session, 1, _blob_prob(session, 0))
        _run(session, 4, _blob_prob(session, 1))
        results.append([session.results.prob(t) for t in range(6)])
    for a, b in zip(*results, strict=True):
        assert np.array_equal(a, b)


def test_adjacent_interacted_frames_leave_nothing_to_propagate(nets):
    session, _ = _session(nets, num_frames=6)
    _run(session, 2, _blob_prob(session, 0))
    assert _run(session, 3, _blob_prob(session, 1)) == [4, 5]
    assert _run(session, 5, _blob_prob(session, 2)) == [4]


def test_difference_maps_are_measured_against_the_previous_result(nets):
    session, _ = _session(nets, num_frames=6)
    _run(session, 0, _blob_prob(session, 0))
    old = torch.from_numpy(session.results.prob(4)).unsqueeze(1)
    new = _blob_prob(session, 5)
    session.commit(4, new)
    assert torch.allclose(session._pos_diff, (new - old).clamp(0, 1))
    assert torch.allclose(session._neg_diff, (old - new).clamp(0, 1))


def test_multi_object_results_are_distributions(nets):
    session, _ = _session(nets, num_frames=5, num_objects=4)
    _run(session, 2, _blob_prob(session, 0))
    for t in range(5):
        prob = session.results.prob(t)
        assert prob.shape == (5, 64, 80)
        assert np.allclose(prob.sum(0), 1, atol=1e-4)
        assert session.results.mask(t).shape == (H0, W0)
        assert np.array_equal(session.results.padded_mask(t), prob.argmax(0))


def test_interacted_frame_keeps_exactly_the_given_mask(nets):
    session, _ = _session(nets, num_frames=5)
    prob = _blob_prob(session, 3)
    _run(session, 1, prob)
    assert np.array_equal(session.results.prob(1), prob[:, 0].numpy())


def test_cancel_stops_within_one_frame_and_keeps_finished_frames(nets):
    session, _ = _session(nets, num_frames=10)
    session.commit(5, _blob_prob(session, 0))
    cancel = threading.Event()
    done = []
    for t in session.propagate(5, cancel):
        done.append(t)
        if len(done) == 2:
            cancel.set()
    assert done == [6, 7]
    assert [t for t in range(10) if session.results.has_prob(t)] == [5, 6, 7]
    kept = session.results.prob(6)
    # a new propagation from the same round continues from that consistent state
    assert list(session.propagate(5)) == [6, 7, 8, 9, 4, 3, 2, 1, 0]
    assert np.allclose(session.results.prob(6), kept, atol=1e-6)


def test_update_mask_only_is_a_preview_until_the_next_round(nets):
    session, _ = _session(nets, num_frames=6)
    _run(session, 0, _blob_prob(session, 0))
    prob_before = session.results.prob(3)
    preview = _blob_prob(session, 9)
    session.update_mask_only(3, preview)
    assert np.array_equal(session.results.padded_mask(3), preview[:, 0].argmax(0).numpy())
    assert np.array_equal(session.results.prob(3), prob_before)
    # a round elsewhere ends with every index mask equal to its soft result again
    session.commit(0, _blob_prob(session, 1))
    list(session.propagate(0))
    assert np.array_equal(session.results.padded_mask(3), session.results.prob(3).argmax(0))


def test_propagate_requires_a_commit(nets):
    session, _ = _session(nets, num_frames=4)
    with pytest.raises(RuntimeError, match="commit"):
        list(session.propagate(1))
