"""Building blocks of the STCN value encoder and decoder (networks.md A.3-A.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.fused_ops import conv_add, conv_bn_add, conv_bn_relu, conv_relu
from model.winograd import convolve_like


class ResBlock(nn.Module):
    """Pre-activation residual block without BN: x' = shortcut(x) + conv2(relu(conv1(relu(x))))."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # Only a block that changes width has a (3x3) projection shortcut, as in the checkpoint.
        if in_channels != out_channels:
            self.downsample = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        else:
            self.downsample = None
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = conv_relu(self.conv1, F.relu(x))
        if self.downsample is not None:
            x = self.downsample(x)
        return conv_add(self.conv2, h, x, relu=False)  # x + conv2(h)

    def forward_split(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """forward(cat([a, b.expand(K)], dim=1)) for a (K,Ca,h,w) and b (1,Cb,h,w) shared by all
        K items, without computing b's part K times (b with K items: the plain path).

        ReLU acts per channel and a convolution over concatenated channels is the sum of
        convolutions over each part, so conv(relu(cat[a, b])) = conv_a(relu(a)) + conv_b(relu(b)):
        the same numbers up to float summation order. Needs a width-changing block.
        """
        if self.downsample is None:
            raise ValueError("forward_split needs a block with a projection shortcut")
        split = a.shape[1]
        if a.shape[0] == 1 or b.shape[0] != 1:  # nothing shared: the plain path
            return self.forward(torch.cat([a, b.expand(a.shape[0], -1, -1, -1)], dim=1))
        ra, rb = F.relu(a), F.relu(b)
        conv1 = _conv_parts(self.conv1, split)
        down = _conv_parts(self.downsample, split)
        c1, ds = self.conv1, self.downsample
        h = convolve_like(c1, ra, conv1[0], None) + convolve_like(c1, rb, conv1[1], conv1[2])
        x = convolve_like(ds, a, down[0], None) + convolve_like(ds, b, down[1], down[2])
        return conv_add(self.conv2, F.relu(h), x, relu=False)


def _conv_parts(conv: nn.Conv2d, split: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """conv's weight split at input channel `split` (each part contiguous in the weight's own
    memory format) and its bias; cached on the module until the weight changes."""
    w = conv.weight
    key = (w.data_ptr(), w.dtype, w.device, w._version, split)
    cached = getattr(conv, "_split_parts", None)
    if cached is None or cached[0] != key:
        nhwc = w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
        fmt = torch.channels_last if nhwc else torch.contiguous_format
        parts = (
            w[:, :split].contiguous(memory_format=fmt),
            w[:, split:].contiguous(memory_format=fmt),
            conv.bias,
        )
        cached = (key, parts)
        conv._split_parts = cached
    return cached[1]


class _ChannelGate(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        # Index layout (flatten, linear, relu, linear) fixes the checkpoint names mlp.1 / mlp.3.
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, channels // reduction),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(avg + mx)[:, :, None, None]


class _SpatialConv(nn.Module):
    """Holds the 7x7 conv under the name `conv` (checkpoint key `spatial.conv`)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _SpatialGate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.spatial = _SpatialConv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """Channel gate then spatial gate (reduction 16, 7x7 spatial conv)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ChannelGate = _ChannelGate(channels)
        self.SpatialGate = _SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SpatialGate(self.ChannelGate(x))


class FeatureFusionBlock(nn.Module):
    """Fuses value features with the key encoder's f16: block2(x + CBAM(x)), x = block1(cat)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block1 = ResBlock(in_channels, out_channels)
        self.attention = CBAM(out_channels)
        self.block2 = ResBlock(out_channels, out_channels)

    def forward(self, value_f16: torch.Tensor, key_f16: torch.Tensor) -> torch.Tensor:
        """value_f16 (K,256,h,w), key_f16 (K,1024,h,w) or (1,1024,h,w) shared by the K objects
        -> (K,512,h,w). A shared key_f16 goes through block1's key half once for all objects
        (ResBlock.forward_split: 15 of the 43 GMAC a 480p value encoding costs per object)."""
        x = self.block1.forward_split(value_f16, key_f16)
        return self.block2(x + self.attention(x))


class BiasedBasicBlock(nn.Module):
    """ResNet-18 BasicBlock whose convs (and projection) all carry a bias, as in stcn.pth."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = conv_bn_relu(self.conv1, self.bn1, x)
        shortcut = x if self.downsample is None else self.downsample(x)
        return conv_bn_add(self.conv2, self.bn2, out, shortcut, relu=True)
