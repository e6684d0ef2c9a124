"""3x3 convolutions to few outputs as one product and shifted sums (model/narrow_conv.py), and
the decoder's 1/4-resolution stage one object at a time (model/stcn.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model.build import FUSION, PROPAGATION, load_network
from model.narrow_conv import NarrowConv2d, eligible, narrow_conv3x3, tap_matrix, use_narrow_convs
from model.precision import Precision
from model.stcn import Decoder

FP32 = Precision("fp32")


def _reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The convolution in float64, independent of the code under test."""
    b = None if bias is None else bias.double()
    return F.conv2d(x.double(), weight.double(), b, padding=1)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize(
    ("n", "c", "h", "w", "o"),
    [(1, 256, 13, 17, 1), (3, 32, 9, 11, 2), (2, 8, 1, 5, 4), (1, 16, 2, 2, 3)],
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_product_and_shifts_equal_the_convolution(layout, n, c, h, w, o, with_bias):
    g = torch.Generator().manual_seed(n * 100 + c + o)
    x = torch.randn(n, c, h, w, generator=g).contiguous(memory_format=layout)
    weight = torch.randn(o, c, 3, 3, generator=g) / (3 * c**0.5)
    bias = torch.randn(o, generator=g) if with_bias else None
    got = narrow_conv3x3(x, tap_matrix(weight), bias)
    assert got.shape == (n, o, h, w) and got.dtype == torch.float32
    assert float((got.double() - _reference(x, weight, bias)).abs().max()) < 1e-5


def test_tap_matrix_rows_are_taps_then_outputs():
    weight = torch.arange(2 * 3 * 9, dtype=torch.float32).view(2, 3, 3, 3)
    taps = tap_matrix(weight)
    assert taps.shape == (18, 3)
    for ky in range(3):
        for kx in range(3):
            for o in range(2):
                assert torch.equal(taps[(3 * ky + kx) * 2 + o], weight[o, :, ky, kx])


def test_only_plain_3x3_layers_to_few_outputs_are_eligible():
    assert eligible(nn.Conv2d(256, 1, 3, padding=1))
    assert eligible(nn.Conv2d(32, 4, 3, padding=1))
    assert not eligible(nn.Conv2d(32, 5, 3, padding=1))  # wider: oneDNN vectorises outputs
    assert not eligible(nn.Conv2d(32, 1, 3, padding=2, dilation=2))
    assert not eligible(nn.Conv2d(32, 1, 3, padding=1, stride=2))
    assert not eligible(nn.Conv2d(32, 1, 1))
    assert not eligible(nn.Conv2d(32, 1, 3, padding=0))


def test_a_narrow_layer_keeps_autograd_and_bf16_on_the_plain_convolution():
    conv = nn.Conv2d(8, 1, 3, padding=1)
    plain = nn.Conv2d(8, 1, 3, padding=1)
    plain.load_state_dict(conv.state_dict())
    assert use_narrow_convs(nn.Sequential(conv)) == 1 and type(conv) is NarrowConv2d
    x = torch.randn(2, 8, 6, 7, requires_grad=True)
    conv(x).square().sum().backward()
    grad = x.grad.clone()
    x.grad = None
    plain(x).square().sum().backward()
    assert torch.allclose(grad, x.grad, atol=1e-5)  # gradients flow as through nn.Conv2d
    conv.to(torch.bfloat16)
    with torch.inference_mode():
        xb = torch.randn(1, 8, 6, 7).bfloat16()
        assert conv(xb).dtype == torch.bfloat16  # oneDNN's bf16 kernel, not the float32 path


def test_fp32_networks_get_narrow_layers_and_keep_their_state_dict_names(synthetic_checkpoints):
    prop = load_network(PROPAGATION, synthetic_checkpoints["stcn"], precision=FP32)
    fusion = load_network(FUSION, synthetic_checkpoints["fusion_stcn"], precision=FP32)
    assert type(prop.decoder.pred) is NarrowConv2d
    assert type(fusion.final_conv) is NarrowConv2d
    assert "decoder.pred.weight" in prop.state_dict()
    narrow = [m for m in prop.modules() if isinstance(m, NarrowConv2d)]
    assert narrow == [prop.decoder.pred]  # every other 3x3 layer has many outputs


@pytest.mark.parametrize("num_objects", [2, 3])
def test_the_decoder_per_object_quarter_stage_equals_the_batched_one(num_objects):
    torch.manual_seed(3)
    decoder = Decoder().eval().requires_grad_(False)
    g = torch.Generator().manual_seed(num_objects)
    mem_out = torch.randn(num_objects, 512, 4, 6, generator=g)
    f16 = torch.randn(1, 512, 4, 6, generator=g)
    f8 = torch.randn(1, 512, 8, 12, generator=g)
    f4 = torch.randn(1, 256, 16, 24, generator=g)
    inputs = [t.clone() for t in (mem_out, f16, f8, f4)]
    with torch.inference_mode():
        per_object = decoder(mem_out, f16, f8, f4)  # inference: the 1/4 stage object by object
    with torch.no_grad(), torch.enable_grad():
        batched = decoder(mem_out, f16, f8, f4)  # autograd on: the plain batched stage
    assert per_object.shape == (num_objects, 1, 64, 96)
    assert float((per_object - batched).abs().max()) < 1e-5
    # the in-place ReLU before the prediction acts on the decoder's own map, not on its inputs
    for before, after in zip(inputs, (mem_out, f16, f8, f4), strict=True):
        assert torch.equal(before, after)
