"""Convolution with its ReLU and residual add in one pass (oneDNN post-ops), for inference.

After batch norm is folded (model/fold_bn.py) most convolutions are followed by a ReLU and/or a
residual add: separately these are extra passes over the activations (~10 % of a frame in bf16,
bench/bench_speed.py). oneDNN applies them inside the convolution ("post-ops"); PyTorch exposes
that as torch.ops.mkldnn._convolution_pointwise. The helpers below use it when it is valid (CPU,
no autograd, matching dtypes and shapes, batch norm already folded) and otherwise compute the
same thing op by op, so training and other devices are unaffected. fp32 results are identical
to the unfused ops; bf16 ones round once instead of twice. A layer with a kernel of its own
(NNPACK's Winograd, model/winograd.py; int8, model/int8.py) applies them in its `convolve`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

_POINTWISE = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)


def _fusable(conv: nn.Module, x: torch.Tensor, *others: torch.Tensor) -> bool:
    """Whether oneDNN can run conv (+ post-ops) on x here, exactly as the plain ops would."""
    if _POINTWISE is None or not isinstance(conv, nn.Conv2d) or x.device.type != "cpu":
        return False
    if torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad):
        return False
    if not torch.backends.mkldnn.is_available() or conv.padding_mode != "zeros":
        return False
    if isinstance(conv.padding, str) or x.dtype not in (torch.float32, torch.bfloat16):
        return False
    if conv.weight.dtype != x.dtype or x.dim() != 4:
        return False
    # oneDNN's bf16 post-ops exist only for channels-last data ("Unsupported datatype for
    # add_relu: BFloat16" otherwise)
    if x.dtype == torch.bfloat16 and not x.is_contiguous(memory_format=torch.channels_last):
        return False
    return all(o.dtype == x.dtype and o.shape[0] == x.shape[0] for o in others)


def conv_then_ops(
    conv: nn.Conv2d,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    relu: bool = False,
    add: torch.Tensor | None = None,
) -> torch.Tensor:
    """conv's own convolution of x with `weight`/`bias` (PyTorch's choice of kernel), then
    + `add`, then ReLU when `relu`, op by op: where a layer with a kernel of its own
    (Winograd, int8) cannot take a call."""
    y = conv._conv_forward(x, weight, bias)
    if add is not None:
        y = y + add
    return torch.relu(y) if relu else y


def _own_kernel(conv: nn.Module, x: torch.Tensor) -> bool:
    """Whether conv runs this call with a kernel of its own (model/winograd.py's NNPACK,
    model/int8.py's int8), which applies the ReLU and residual add itself (its convolve)."""
    own_kernel = getattr(conv, "own_kernel", None)
    return own_kernel is not None and own_kernel(x)


def _args(conv: nn.Conv2d) -> tuple:
    return (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)


def conv_bn_relu(conv: nn.Module, bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """relu(bn(conv(x))); one fused pass when bn is folded away (nn.Identity)."""
    if isinstance(bn, nn.Identity) and _own_kernel(conv, x):
        return conv.convolve(x, conv.weight, conv.bias, relu=True)
    if isinstance(bn, nn.Identity) and _fusable(conv, x):
        return _POINTWISE(x, conv.weight, conv.bias, *_args(conv), "relu", [], "")
    return F.relu(bn(conv(x)))


# Stands for "no batch norm" (a conv without one, or one folded away); shared, not made per call.
_NO_BN = nn.Identity()


def conv_relu(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """relu(conv(x)) in one pass where possible."""
    return conv_bn_relu(conv, _NO_BN, x)


def conv_add(conv: nn.Module, x: torch.Tensor, other: torch.Tensor, relu: bool) -> torch.Tensor:
    """conv(x) + other (then ReLU when `relu`) in one pass where possible."""
    return conv_bn_add(conv, _NO_BN, x, other, relu)


def conv_bn_add(
    conv: nn.Module, bn: nn.Module, x: torch.Tensor, other: torch.Tensor, relu: bool
) -> torch.Tensor:
    """bn(conv(x)) + other, then ReLU when `relu`; one pass when bn is folded and `other` has
    conv's output shape (a broadcast `other` takes the plain path)."""
    if isinstance(bn, nn.Identity) and _own_kernel(conv, x) and other.dim() == 4:
        if tuple(other.shape) == _output_shape(conv, x):
            return conv.convolve(x, conv.weight, conv.bias, relu=relu, add=other)
    if isinstance(bn, nn.Identity) and _fusable(conv, x, other):
        out_shape = _output_shape(conv, x)
        if tuple(other.shape) == out_shape:
            unary = "relu" if relu else None
            return _POINTWISE.binary(x, other, conv.weight, conv.bias, *_args(conv), "add", None,
                                     unary, [], "")  # fmt: skip
    y = bn(conv(x)) + other
    return F.relu(y) if relu else y


def _output_shape(conv: nn.Conv2d, x: torch.Tensor) -> tuple[int, ...]:
    size = []
    for i, n in enumerate(x.shape[-2:]):
        k = conv.dilation[i] * (conv.kernel_size[i] - 1) + 1
        size.append((n + 2 * conv.padding[i] - k) // conv.stride[i] + 1)
    return (x.shape[0], conv.out_channels, *size)


def conv_keep_layout(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """conv(x), the output in x's memory format: an NCHW input to a 1x1 convolution (after a
    Winograd layer, model/winograd.py, whose output is NCHW) is one matrix product per batch
    item, (O, C) @ (C, H*W), where the plain call would first convert the whole input to the
    channels-last layout of the weights (32 ms for S2M's 256-channel 1/4 map at 480p, against
    ~1 ms for the product). Equal to conv(x) up to float summation order."""
    if not (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding in ((0, 0), "valid")
        and conv.groups == 1
        and x.dim() == 4
        and x.is_contiguous()
        and x.dtype == conv.weight.dtype
        and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad))
    ):
        return conv(x)
    n, c, h, w = x.shape
    y = torch.matmul(conv.weight.reshape(conv.out_channels, c), x.reshape(n, c, h * w))
    if conv.bias is not None:
        y += conv.bias.view(1, -1, 1)
    return y.view(n, conv.out_channels, h, w)


# Entries kept per layer: its own weight and the decoder's two split parts (model/blocks.py);
# the fourth slot lets a changed weight replace its stale entry without evicting a live one.
PER_WEIGHT_ENTRIES = 4
_Prepared = TypeVar("_Prepared")


def per_weight(
    conv: nn.Module, slot: str, weight: torch.Tensor, make: Callable[[torch.Tensor], _Prepared]
) -> _Prepared:
    """make(weight), cached on `conv` under `slot` per weight tensor (its own and the decoder's
    split parts) until the tensor changes: what a layer with a kernel of its own prepares from
    a weight once (int8 packing, Winograd's kernel transform)."""
    # Keyed by the tensor object (kept alive by the entry, so its id is not reused) and, for a
    # tensor that tracks it, its version (an in-place load changes the weight, not its id).
    version = -1 if weight.is_inference() else weight._version
    key = (id(weight), version)
    cache = conv.__dict__.setdefault(slot, {})
    if key not in cache:
        while len(cache) >= PER_WEIGHT_ENTRIES:  # stale entries of a changed weight
            del cache[next(iter(cache))]
        cache[key] = (weight, make(weight))
    return cache[key][1]
