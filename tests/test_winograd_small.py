"""Winograd F(4x4, 3x3) with a cached kernel transform for small maps (model/winograd_small.py)
and its place in WinogradConv2d's choice of kernel (model/winograd.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model.fused_ops import conv_keep_layout
from model.winograd import (
    NNPACK,
    SMALL_MAP,
    WinogradConv2d,
    nnpack_ready,
    reads_nchw,
    small_map_pays_off,
    use_winograd_convs,
)
from model.winograd_small import small_map_conv3x3, transform_kernel


@pytest.mark.parametrize(
    ("batch", "size", "rate"),
    [
        (1, (7, 9), 1),
        (2, (13, 11), 2),
        (1, (30, 54), 6),
        (3, (1, 1), 1),
        (1, (5, 3), 3),
        (1, (16, 8), 1),
    ],
)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_small_map_convolution_equals_the_direct_one(batch, size, rate, layout):
    """In float64 the transforms are exact up to rounding: any map size (tiles cut off at the
    edge), dilation, batch, layout, with bias, residual add and ReLU."""
    gen = torch.Generator().manual_seed(rate * 10 + batch)
    x = torch.randn(batch, 5, *size, dtype=torch.float64, generator=gen)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(4, 5, 3, 3, dtype=torch.float64, generator=gen)
    bias = torch.randn(4, dtype=torch.float64, generator=gen)
    add = torch.randn(batch, 4, *size, dtype=torch.float64, generator=gen)
    plain = F.conv2d(x, weight, bias, padding=rate, dilation=rate)
    u = transform_kernel(weight)
    got = small_map_conv3x3(x, u, bias, rate)
    fused = small_map_conv3x3(x, u, bias, rate, relu=True, add=add)
    no_bias = small_map_conv3x3(x, u, None, rate)
    assert u.shape == (36, 5, 4)
    assert (got - plain).abs().max() < 1e-10
    assert (fused - torch.relu(plain + add)).abs().max() < 1e-10
    assert (no_bias - (plain - bias.view(1, -1, 1, 1))).abs().max() < 1e-10
    # the output comes back in the input's layout (NCHW stays NCHW); a 1x1 map is both
    if size != (1, 1):
        assert got.is_contiguous(memory_format=torch.channels_last) == (layout == "channels_last")
        assert got.is_contiguous() == (layout == "nchw")


def test_small_map_float32_rounding_is_within_parity_tolerance():
    """fp32 at a real 1/16 map (S2M's layer4 at 480p, dilation 2): relative error ~1e-5."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 256, 30, 54, generator=gen).relu()
    weight = torch.randn(256, 256, 3, 3, generator=gen) / 48
    want = F.conv2d(x.double(), weight.double(), padding=2, dilation=2)
    got = small_map_conv3x3(x, transform_kernel(weight), None, 2)
    assert got.dtype == torch.float32
    assert ((got.double() - want).abs().max() / want.abs().max()) < 5e-5


def test_the_rule_picks_small_maps_of_wide_layers_only():
    assert small_map_pays_off(1, 256, 256, 30, 54, 1)  # 1/16 of 480p
    assert small_map_pays_off(3, 512, 512, 30, 54, 2)  # 3 objects, S2M's dilated layer4
    assert not small_map_pays_off(4, 256, 256, 30, 54, 1)  # 6480 pixels: NNPACK's range
    assert not small_map_pays_off(1, 256, 256, 120, 216, 1)  # 1/4: the tile transforms dominate
    assert not small_map_pays_off(1, 128, 128, 30, 54, 1)  # narrow: no gain
    assert not small_map_pays_off(1, 1024, 512, 30, 54, 1)  # 4x of a 2M-weight kernel kept
    assert not small_map_pays_off(1, 256, 256, 30, 54, 6)  # rate 6: tiles cover 2.1x the map
    assert not small_map_pays_off(1, 256, 256, 8, 12, 1)  # 96 pixels: oneDNN's fixed cost wins
    assert small_map_pays_off(3, 256, 256, 8, 12, 1)  # 288 pixels with the batch


def test_a_winograd_layer_caches_its_transformed_kernel_until_the_weight_changes():
    if not nnpack_ready():
        pytest.skip("Winograd layers are only made where NNPACK exists (fp32's mode)")
    torch.manual_seed(1)
    conv = nn.Conv2d(256, 256, 3, padding=2, dilation=2).eval()
    use_winograd_convs(conv)
    assert type(conv) is WinogradConv2d
    x = torch.randn(1, 256, 30, 54).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert conv.kernel_for_input(x) == SMALL_MAP
        first = conv(x)
        kernel = conv._small_map_kernel(conv.weight)
        again = conv(x)
        assert conv._small_map_kernel(conv.weight) is kernel  # not transformed per call
        assert torch.equal(first, again)
        conv.weight.mul_(2)  # an in-place change (e.g. a state_dict load) is seen
        doubled = conv(x)
        direct = F.conv2d(x, conv.weight, conv.bias, padding=2, dilation=2)
    assert conv._small_map_kernel(conv.weight) is not kernel
    assert (doubled - direct).abs().max() / direct.abs().max() < 5e-5
    assert first.is_contiguous(memory_format=torch.channels_last)


def test_only_an_nnpack_layer_asks_its_caller_for_nchw_input():
    if not nnpack_ready():
        pytest.skip("this PyTorch build has no NNPACK")
    conv = nn.Conv2d(304, 256, 3, padding=1).eval()
    use_winograd_convs(conv)
    with torch.inference_mode():
        big = torch.zeros(1, 48, 120, 216)  # S2M's classifier input at 1/4 of 480p
        small = torch.zeros(1, 48, 30, 54)
        assert conv.kernel_for(304, 120, 216, big.device, big.dtype) == NNPACK
        assert reads_nchw(conv, 304, big)
        assert not reads_nchw(conv, 304, small)  # small map kernel: reads any layout
        assert not reads_nchw(nn.Conv2d(304, 256, 3, padding=1), 304, big)  # a plain conv
        assert not reads_nchw(conv, 304, big.bfloat16())


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_a_1x1_convolution_keeps_its_input_layout(layout):
    """After an NNPACK layer (NCHW output) S2M's last 1x1 convolution is a matrix product
    instead of a conversion of the whole map to the weights' channels-last layout."""
    torch.manual_seed(2)
    conv = nn.Conv2d(64, 3, 1).eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 64, 20, 30)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        want = F.conv2d(x.contiguous(), conv.weight.contiguous(), conv.bias)
        got = conv_keep_layout(conv, x)
    assert (got - want).abs().max() < 1e-5
    assert (
        got.is_contiguous()
        if layout == "nchw"
        else got.is_contiguous(memory_format=torch.channels_last)
    )


@pytest.mark.skipif(not nnpack_ready(), reason="NNPACK is not built into this PyTorch")
def test_dilated_layers_keep_channels_last_weights_and_still_compute_the_convolution():
    torch.manual_seed(4)
    net = nn.Sequential(
        nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=6, dilation=6)
    )
    net = net.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    want_weights = [m.weight.clone() for m in net]
    assert use_winograd_convs(net) == 2
    plain, dilated = net
    assert plain.weight.is_contiguous()  # NCHW: what NNPACK reads
    assert dilated.weight.is_contiguous(memory_format=torch.channels_last)
    assert not dilated.weight.is_contiguous()  # oneDNN's layout, no copy per call
    x = torch.randn(1, 16, 20, 24).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for conv, weight in zip(net, want_weights, strict=True):
            got = conv(x)
            want = F.conv2d(x, weight, conv.bias, padding=conv.padding, dilation=conv.dilation)
            assert float((got - want).abs().max()) < 1e-4
