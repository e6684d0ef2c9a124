"""ResNet-50 stages built from torchvision's Bottleneck, named as the checkpoints expect."""

from __future__ import annotations

from torch import nn
from torchvision.models.resnet import Bottleneck


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
    out = planes * Bottleneck.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
        )
    first = dilation if first_dilation is None else first_dilation
    layers = [Bottleneck(inplanes, planes, stride, downsample, dilation=first)]
    layers += [Bottleneck(out, planes, dilation=dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)
