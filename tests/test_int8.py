"""The fast mode's int8 convolutions (model/int8.py): close to the float convolution, only
where they pay off, never in exempt networks, never under autograd, never stale.

Skipped where the CPU or PyTorch build has no int8 convolution (VNNI/AMX + oneDNN); the rule
and exemptions are checked everywhere.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import ResBlock
from model.build import load_networks
from model.fbrs.load import load_fbrs
from model.fused_ops import conv_add, conv_relu
from model.int8 import (
    Int8Conv2d,
    int8_ready,
    pays_off,
    quantize_activation,
    uint8_by_ops,
    uint8_of,
)
from model.precision import choose_precision, cpu_has_bf16

needs_int8 = pytest.mark.skipif(not int8_ready(), reason="no int8 convolution on this machine")


def _layer(cin: int = 64, cout: int = 96, k: int = 3, seed: int = 0) -> Int8Conv2d:
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, k, padding=k // 2).to(torch.bfloat16)
    conv = conv.to(memory_format=torch.channels_last).requires_grad_(False)
    conv.__class__ = Int8Conv2d
    return conv


def _input(cin: int = 64, h: int = 40, w: int = 48, seed: int = 1, relu: bool = True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, cin, h, w, generator=g)
    x = torch.relu(x) if relu else x
    return x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)


def _reference(conv: nn.Conv2d, x: torch.Tensor, weight=None) -> torch.Tensor:
    """The float32 convolution of the same (bf16-rounded) numbers."""
    weight = conv.weight if weight is None else weight
    return F.conv2d(x.float(), weight.float(), conv.bias.float(), padding=conv.padding)


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@needs_int8
@pytest.mark.parametrize("relu_input", [True, False])  # unsigned and signed activations
def test_int8_convolution_is_within_two_percent_of_float(relu_input):
    # 8 bits over a Gaussian's whole range: ~1 % relative error expected, not 0.1 %
    conv, x = _layer(), _input(relu=relu_input)
    assert conv.use_int8(x)
    with torch.inference_mode():
        y = conv(x)
    assert y.dtype == torch.bfloat16 and y.shape == (2, 96, 40, 48)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert _relative_error(y, _reference(conv, x)) < 0.02
    # and it is not simply the float path: int8 rounding shows
    with torch.inference_mode():
        assert not torch.equal(y, F.conv2d(x, conv.weight, conv.bias, padding=1))


@needs_int8
@pytest.mark.parametrize("relu", [False, True])
def test_int8_relu_and_residual_add_leave_the_callers_tensor_alone(relu):
    conv, x = _layer(), _input()
    other = _input(96, seed=2, relu=False)
    kept = other.clone()
    with torch.inference_mode():
        y = conv_add(conv, x, other, relu=relu)
        r = conv_relu(conv, x)
    expected = _reference(conv, x) + other.float()
    expected = torch.relu(expected) if relu else expected
    assert _relative_error(y, expected) < 0.01
    assert torch.equal(other, kept)  # oneDNN's sum post-op wrote into a copy
    assert _relative_error(r, torch.relu(_reference(conv, x))) < 0.01
    assert (r >= 0).all()


@needs_int8
def test_split_weights_are_packed_per_part_and_repacked_after_an_in_place_change():
    block = ResBlock(96, 64).to(torch.bfloat16, memory_format=torch.channels_last)
    block.requires_grad_(False)
    plain = ResBlock(96, 64).to(torch.bfloat16, memory_format=torch.channels_last)
    plain.load_state_dict(block.state_dict())
    for module in block.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = Int8Conv2d
    a, b = _input(64, seed=3), _input(32, seed=4)[:1]
    with torch.inference_mode():
        got = block.forward_split(a, b)
        want = plain(torch.cat([a, b.expand(2, -1, -1, -1)], 1).float().to(torch.bfloat16))
    assert _relative_error(got, want) < 0.02
    assert len(block.conv1._int8_packs) == 2  # the two split parts, each packed once
    # a changed weight (as load_state_dict copies in place) must not reuse the old packing
    conv, x = _layer(), _input()
    with torch.inference_mode():
        before = conv(x)
    with torch.no_grad():
        conv.weight.mul_(-1)
    with torch.inference_mode():
        after = conv(x)
    assert _relative_error(after, _reference(conv, x)) < 0.01
    assert not torch.allclose(before.float(), after.float())


@needs_int8
def test_autograd_and_float32_networks_take_the_plain_convolution():
    conv = _layer()
    x = _input().float().requires_grad_(True)
    conv32 = _layer()
    conv32.float()
    assert not conv32.use_int8(_input())  # an fp32 network: exactly fp32
    conv.weight.requires_grad_(True)
    with torch.enable_grad():
        assert not conv.use_int8(x.to(torch.bfloat16))
        y = conv(x.to(torch.bfloat16))
        y.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@needs_int8
def test_an_input_without_a_finite_range_takes_the_float_path():
    conv, x = _layer(), _input()
    x[1, 3, 5, 7] = float("nan")
    with torch.inference_mode():
        y = conv(x)
        want = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert torch.equal(torch.isnan(y), torch.isnan(want))  # NaN spreads as in bf16, no crash
    assert torch.equal(y[0], want[0])  # the float convolution, not a quantised one
    assert quantize_activation(x) is None


def test_int8_pays_off_only_for_3x3_layers_of_some_size():
    wide3 = nn.Conv2d(256, 256, 3, padding=1)
    assert pays_off(wide3, 120, 216)
    assert not pays_off(nn.Conv2d(1024, 256, 1), 30, 54)  # 1x1: measured 0.85-3.7x slower
    assert not pays_off(nn.Conv2d(256, 1, 3, padding=1), 120, 216)  # the 1-channel prediction
    assert not pays_off(nn.Conv2d(3, 64, 7, stride=2, padding=3), 480, 864)  # the image stem
    assert not pays_off(wide3, 4, 4)  # a tiny map: the quantisation pass costs more


@pytest.mark.parametrize("relu", [True, False])
def test_activation_quantisation_covers_the_range_and_keeps_zero(relu):
    x = _input(16, 20, 24, relu=relu)
    x[0, 0, 0, 0] = 0
    q, scale, zero_point = quantize_activation(x)
    assert q.dtype == torch.uint8 and q.is_contiguous(memory_format=torch.channels_last)
    back = scale * (q.float() - zero_point)
    assert (back - x.float()).abs().max() <= scale / 2 + 1e-6
    assert back[0, 0, 0, 0] == 0  # zero (ReLU outputs, padding) is exact
    assert q.max() == 255 or q.min() == 0  # the whole 8 bits are used
    by_ops = uint8_by_ops(x, scale, zero_point)
    assert (by_ops.int() - q.int()).abs().max() <= 1  # only half-way cases may differ


def test_the_uint8_view_holds_the_quantised_values_and_shares_their_memory():
    x = torch.linspace(-3, 5, 2 * 3 * 5 * 7).reshape(2, 3, 5, 7)
    q = torch.quantize_per_tensor(x, 8 / 255, 96, torch.quint8)
    view = uint8_of(q)
    assert view.dtype == torch.uint8 and view.shape == q.shape and view.stride() == q.stride()
    expected = torch.clamp(torch.round(x / (8 / 255)) + 96, 0, 255).to(torch.uint8)
    assert torch.equal(view, expected)
    assert view.data_ptr() == q.data_ptr()  # no copy


@pytest.mark.parametrize("step", [7, 1000])  # uneven steps, the last one partial
def test_quantisation_in_steps_gives_the_numbers_of_one_piece(step, monkeypatch):
    """Large inputs are converted in steps (no 80 MB float32 copy of 3 objects' maps): each
    element depends only on itself, scale and zero point, so the steps change nothing."""
    import model.int8 as int8  # noqa: PLC0415

    x = _input(16, 20, 24, relu=False)
    x = torch.cat([x, 2 * x, -x])  # a batch, as K objects
    whole, scale, zero_point = quantize_activation(x)
    monkeypatch.setattr(int8, "QUANTIZE_STEP", step)
    stepped, scale2, zero_point2 = quantize_activation(x)
    assert (scale2, zero_point2) == (scale, zero_point)
    assert torch.equal(stepped, whole)
    assert stepped.is_contiguous(memory_format=torch.channels_last)
    # and both are the element-wise rule (up to half-way cases), item by item
    by_ops = uint8_by_ops(x.contiguous(memory_format=torch.channels_last), scale, zero_point)
    assert (by_ops.int() - stepped.int()).abs().max() <= 1


def test_exempt_networks_keep_float_convolutions(synthetic_checkpoints, tmp_path):
    nets = load_networks(synthetic_checkpoints["stcn"], None, None, "cpu", fast=True)
    fast = choose_precision("cpu", fast=True)
    assert fast.int8 == (cpu_has_bf16() and int8_ready())
    assert nets.precision.int8 == fast.int8
    decoder = [m for m in nets.prop.decoder.modules() if isinstance(m, nn.Conv2d)]
    assert all(isinstance(m, Int8Conv2d) == fast.int8 for m in decoder)
    # the value encoder's output is stored in memory: it stays bf16 (model/stcn.py)
    assert not any(isinstance(m, Int8Conv2d) for m in nets.prop.value_encoder.modules())
    from tests.fbrs_helpers import write_he_checkpoint  # noqa: PLC0415

    fbrs = load_fbrs(write_he_checkpoint(tmp_path / "f.pth"), "cpu", fast=True)
    assert not any(isinstance(m, Int8Conv2d) for m in fbrs.modules())
    s2m = load_networks(None, None, synthetic_checkpoints["s2m"], "cpu", fast=True).s2m
    assert not any(isinstance(m, Int8Conv2d) for m in s2m.modules())
    fp32 = load_networks(synthetic_checkpoints["stcn"], None, None, "cpu", fast=False)
    assert not any(isinstance(m, Int8Conv2d) for m in fp32.prop.modules())
