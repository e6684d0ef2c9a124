"""Behaviour of the networks and their pure helpers on small inputs with random weights."""

from __future__ import annotations

import copy

import pytest
import torch

from model.aggregate import aggregate_sbg, aggregate_wbg
from model.build import prefers_channels_last
from model.fusion_net import FusionNet
from model.memory_read import difference_attention, l2_affinity, memory_affinity
from model.s2m import S2MNetwork
from model.stcn import PropagationNetwork, others_channel
from util.tensor_util import pad_amounts, pad_divide_by, unpad

H, W = 64, 96  # padded size; h, w = 4, 6 at 1/16


@pytest.fixture(scope="module")
def prop():
    torch.manual_seed(0)
    return PropagationNetwork().eval()


@pytest.fixture(scope="module")
def frames():
    torch.manual_seed(1)
    return torch.randn(3, 3, H, W)


def test_encode_key_shapes(prop, frames):
    with torch.inference_mode():
        feats = prop.encode_key(frames[:1])
    assert feats.k16.shape == (1, 64, 4, 6)
    assert feats.f16_thin.shape == (1, 512, 4, 6)
    assert feats.f16.shape == (1, 1024, 4, 6)
    assert feats.f8.shape == (1, 512, 8, 12)
    assert feats.f4.shape == (1, 256, 16, 24)


def test_objects_are_segmented_independently_but_in_one_batch(prop, frames):
    masks = torch.rand(3, 1, H, W)
    with torch.inference_mode():
        mem = prop.encode_key(frames[:1])
        query = prop.encode_key(frames[1:2])
        values = prop.encode_value(frames[:1], mem.f16, masks)
        together = prop.segment(mem.k16.unsqueeze(2), values, query)
        alone = [prop.segment(mem.k16.unsqueeze(2), values[i : i + 1], query) for i in range(3)]
    assert values.shape == (3, 512, 1, 4, 6)
    assert together.shape == (3, 1, H, W)
    assert torch.allclose(together, torch.cat(alone), atol=1e-5)
    assert ((together >= 0) & (together <= 1)).all()


def test_value_depends_on_the_other_objects(prop, frames):
    masks = torch.rand(2, 1, H, W)
    changed = masks.clone()
    changed[1] = 1 - changed[1]
    with torch.inference_mode():
        f16 = prop.encode_key(frames[:1]).f16
        a = prop.encode_value(frames[:1], f16, masks)
        b = prop.encode_value(frames[:1], f16, changed)
    # object 0's own mask is unchanged, so only its "others" input differs
    assert not torch.allclose(a[0], b[0])


def test_others_channel():
    masks = torch.tensor([0.2, 0.3, 0.5]).view(3, 1, 1, 1)
    assert torch.allclose(others_channel(masks).flatten(), torch.tensor([0.8, 0.7, 0.5]))
    assert torch.count_nonzero(others_channel(masks[:1])) == 0


def test_affinity_is_negative_scaled_distance():
    mk = torch.randn(1, 64, 2, 3, 4)
    qk = torch.randn(1, 64, 3, 4)
    aff = l2_affinity(mk, qk)
    m = mk.flatten(2)[0].T  # N, C
    q = qk.flatten(2)[0].T  # M, C
    expected = -torch.cdist(m, q).pow(2) / 8
    assert aff.shape == (1, 24, 12)
    assert torch.allclose(aff[0], expected, atol=1e-4)


def test_topk_read_keeps_k_entries_per_column_summing_to_one():
    mk = torch.randn(1, 64, 3, 4, 5)
    qk = torch.randn(1, 64, 4, 5)
    aff = memory_affinity(mk, qk, top_k=20)
    assert (torch.count_nonzero(aff[0], dim=0) == 20).all()
    assert torch.allclose(aff.sum(1), torch.ones(1, 20))
    # the kept entries are the 20 nearest memory keys of each query position
    dense = l2_affinity(mk, qk)[0]
    kept = aff[0] > 0
    for j in range(20):
        assert dense[kept[:, j], j].min() >= dense[~kept[:, j], j].max()


def test_topk_larger_than_memory_uses_all_entries():
    aff = memory_affinity(torch.randn(1, 64, 1, 2, 2), torch.randn(1, 64, 2, 2), top_k=20)
    assert torch.allclose(aff.sum(1), torch.ones(1, 4))


def test_attention_of_no_difference_is_zero_and_is_linear():
    mk = torch.randn(1, 64, 1, 4, 6)
    qk = torch.randn(1, 64, 4, 6)
    zero = torch.zeros(2, 1, H, W)
    d = torch.rand(2, 1, H, W)
    attn0 = difference_attention(mk, qk, zero, zero)
    attn = difference_attention(mk, qk, d, 2 * d)
    assert attn0.shape == (2, 2, H, W) and torch.count_nonzero(attn0) == 0
    assert torch.allclose(attn[:, 1], 2 * attn[:, 0], atol=1e-6)
    # a full softmax is a convex combination: a uniform difference stays uniform
    ones = difference_attention(mk, qk, torch.ones(1, 1, H, W), zero[:1])
    assert torch.allclose(ones[:, 0], torch.ones(1, H, W), atol=1e-5)


def test_fusion_net_shapes_and_distance_input_matters():
    torch.manual_seed(0)
    net = FusionNet().eval()
    img = torch.randn(2, 3, 32, 48)
    p = torch.rand(2, 1, 32, 48)
    attn = torch.rand(2, 2, 32, 48)
    with torch.inference_mode():
        a = net(img, p, p, attn, torch.tensor([[0.2, 0.8]]))
        b = net(img, p, p, attn, torch.tensor([[0.8, 0.2]]))
    assert a.shape == (2, 1, 32, 48)
    assert not torch.allclose(a, b)


def test_s2m_output_is_a_logit_map_at_input_size():
    torch.manual_seed(0)
    net = S2MNetwork().eval()
    with torch.inference_mode():
        out = net(torch.randn(1, 6, 64, 80))
    assert out.shape == (1, 1, 64, 80)


def test_aggregation_is_a_distribution_with_background_first():
    p = torch.rand(3, 1, 8, 8)
    for agg in (aggregate_wbg, aggregate_sbg):
        out = agg(p, keep_bg=True)
        assert out.shape == (4, 1, 8, 8)
        assert torch.allclose(out.sum(0), torch.ones(1, 8, 8), atol=1e-5)
        assert agg(p, keep_bg=False).shape == (3, 1, 8, 8)
    hard = aggregate_wbg(p, hard=True)
    assert torch.equal(hard.argmax(0), aggregate_wbg(p).argmax(0))
    assert (hard.max(0).values > 0.99).float().mean() > 0.95
    # with sbg, no object above 0.5 means the background wins
    low = torch.full((2, 1, 2, 2), 0.3)
    assert (aggregate_sbg(low).argmax(0) == 0).all()


@pytest.mark.parametrize(("h", "w"), [(237, 315), (480, 854), (64, 96), (1, 17)])
def test_pad_then_unpad_round_trips(h, w):
    x = torch.randn(2, 3, h, w)
    padded, pad = pad_divide_by(x, 16)
    assert padded.shape[-2] % 16 == 0 and padded.shape[-1] % 16 == 0
    left, right, top, bottom = pad
    assert right >= left and bottom >= top and right - left <= 1 and bottom - top <= 1
    assert torch.equal(unpad(padded, pad), x)


def test_pad_amounts_match_the_original_convention():
    assert pad_amounts(237, 315) == (2, 3, 1, 2)
    assert pad_amounts(480, 854) == (5, 5, 0, 0)


def test_channels_last_layout_computes_the_same_numbers(prop, frames):
    """The CUDA path stores weights channels-last; the networks must not depend on the layout."""
    assert prefers_channels_last("cuda") and not prefers_channels_last("cpu")
    nhwc = copy.deepcopy(prop).to(memory_format=torch.channels_last)
    assert nhwc.key_encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    masks = torch.rand(2, 1, H, W)
    with torch.inference_mode():
        ref, got = prop.encode_key(frames[:1]), nhwc.encode_key(frames[:1])
        for a, b in zip(ref, got, strict=True):
            assert torch.allclose(a, b, atol=1e-4)
        mem_v = nhwc.encode_value(frames[:1], got.f16, masks)
        assert torch.allclose(mem_v, prop.encode_value(frames[:1], ref.f16, masks), atol=1e-4)
        query = prop.encode_key(frames[1:2])
        mem_k = ref.k16.unsqueeze(2)
        out_ref = prop.segment(mem_k, mem_v, query, 20)
        out_got = nhwc.segment(mem_k, mem_v, nhwc.encode_key(frames[1:2]), 20)
    assert torch.allclose(out_ref, out_got, atol=1e-4)
