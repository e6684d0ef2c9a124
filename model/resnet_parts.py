"""ResNet-50 stages, named as the checkpoints expect (torchvision's Bottleneck layout)."""

from __future__ import annotations

import torch
from torch import nn

from model.fused_ops import conv_bn_add, conv_bn_relu

EXPANSION = 4


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv): 1x1 -> 3x3 -> 1x1 (x4), + shortcut.

    The attribute names (conv1..3, bn1..3, downsample, relu) are torchvision's, which the
    checkpoints use. Its forward fuses each ReLU and the residual add into the convolution
    once batch norm is folded (model/fused_ops.py); the numbers are those of torchvision's block.
    """

    expansion = EXPANSION

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)  # fmt: skip
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = conv_bn_relu(self.conv1, self.bn1, x)
        out = conv_bn_relu(self.conv2, self.bn2, out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return conv_bn_add(self.conv3, self.bn3, out, shortcut, relu=True)


def bottleneck_stage(
    inplanes: int,
    planes: int,
    blocks: int,
    stride: int = 1,
    dilation: int = 1,
    first_dilation: int | None = None,
) -> nn.Sequential:
    """A torchvision-style ResNet-50 stage (v1.5: stride on the 3x3 conv), bias-free convs.

    `first_dilation` is the dilation of block 0 (torchvision's "previous dilation" rule);
    the remaining blocks use `dilation`.
    """
    out = planes * EXPANSION
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
        )
    first = dilation if first_dilation is None else first_dilation
    layers = [Bottleneck(inplanes, planes, stride, downsample, dilation=first)]
    layers += [Bottleneck(out, planes, dilation=dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)
