"""The f-BRS click network (clicks_fbrs.md §2): distance maps -> rgb_conv -> DeepLabV3+ -> head.

ResNet-50 v1s (deep 3-conv stem, stride on the 3x3 conv), dilated to output stride 8, with a
DeepLabV3+ decoder of width 128. Module names reproduce the official state dict exactly
(`feature_extractor.aspp.concurent...` really is spelled that way). Stride suffixes: c1 is at
1/4 of the input, c4 at 1/8. The 160-channel decoder input `F` (ASPP output upsampled to c1
size, concatenated with the projected skip) is where f-BRS-B inserts its scale and bias.

Precision (model/precision.py, model/fbrs/load.py): the backbone computes in the dtype of its
weights (bfloat16 in the CPU fast mode) and the two heads in theirs (float32 in every mode, see
load.py); the public methods cast their inputs and return float32, so callers never see bf16.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from model.precision import compute_dtype
from model.resnet_parts import bottleneck_stage

DEEPLAB_CH = 128
SKIP_CH = 32
FEATURE_CH = DEEPLAB_CH + SKIP_CH  # the f-BRS-B insertion tensor's channels (160)
ASPP_RATES = (12, 24, 36)
DEFAULT_ASPP_DROPOUT = 0.2


def _resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    # Every resize of this network uses align_corners=True (clicks_fbrs.md notation).
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel // 2)
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=pad, dilation=dilation, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class ResNetV1s(nn.Module):
    """ResNet-50 v1s, dilated: layer3/layer4 keep stride 1 and dilate 2/4 instead."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 128, 3, padding=1, bias=False),
        )
        self.bn1 = nn.BatchNorm2d(128)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = bottleneck_stage(128, 64, 3)
        self.layer2 = bottleneck_stage(256, 128, 4, stride=2)
        # Dilation replaces the last two strides; each stage's first block keeps the previous rate.
        self.layer3 = bottleneck_stage(512, 256, 6, dilation=2, first_dilation=1)
        self.layer4 = bottleneck_stage(1024, 512, 3, dilation=4, first_dilation=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,3,H,W) -> (c1 (B,256,H/4,W/4), c4 (B,2048,H/8,W/8)), sizes rounded up."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        return c1, self.layer4(self.layer3(self.layer2(c1)))


class _ImagePooling(nn.Module):
    """ASPP's global-context branch; `gap` holds the pooling, conv, BN and ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), *_conv_bn_relu(in_ch, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _resize(self.gap(x), x.shape[-2:])


class ASPP(nn.Module):
    """Five parallel branches on c4 (1x1, three dilated 3x3, image pooling), projected to 128."""

    def __init__(self, in_ch: int = 2048, out_ch: int = DEEPLAB_CH, dropout: float = 0.2) -> None:
        super().__init__()
        branches: list[nn.Module] = [_conv_bn_relu(in_ch, out_ch)]
        branches += [_conv_bn_relu(in_ch, out_ch, 3, rate) for rate in ASPP_RATES]
        branches.append(_ImagePooling(in_ch, out_ch))
        self.concurent = nn.ModuleList(branches)
        self.project = nn.Sequential(*_conv_bn_relu(5 * out_ch, out_ch), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.concurent], dim=1))


class SeparableConv(nn.Module):
    """Depthwise 3x3 -> pointwise 1x1 -> BN -> ReLU, all convs bias-free (`body.{0,1,2}`)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _SkipProject(nn.Module):
    def __init__(self, in_ch: int = 256, out_ch: int = SKIP_CH) -> None:
        super().__init__()
        self.skip_project = _conv_bn_relu(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip_project(x)


class _DecoderBlock(nn.Module):
    def __init__(self, in_ch: int = FEATURE_CH, mid_ch: int = DEEPLAB_CH) -> None:
        super().__init__()
        self.block = nn.Sequential(
            SeparableConv(in_ch, mid_ch),
            SeparableConv(mid_ch, mid_ch),
            nn.Conv2d(mid_ch, mid_ch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _OutputHead(nn.Module):
    def __init__(self, in_ch: int = DEEPLAB_CH, mid_ch: int = 64) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            SeparableConv(in_ch, mid_ch), SeparableConv(mid_ch, mid_ch), nn.Conv2d(mid_ch, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DeepLabV3Plus(nn.Module):
    """Backbone + ASPP + skip projection; `head` is the decoder block after the 160-ch concat."""

    def __init__(self, aspp_dropout: float = DEFAULT_ASPP_DROPOUT) -> None:
        super().__init__()
        # Registration order gives the official state-dict order.
        self.backbone = ResNetV1s()
        self.head = _DecoderBlock()
        self.skip_project = _SkipProject()
        self.aspp = ASPP(dropout=aspp_dropout)


class Internals(NamedTuple):
    """Intermediate tensors of one forward pass (for parity checks and diagnostics)."""

    rgb: torch.Tensor  # (B,3,H,W) rgb_conv output
    c4: torch.Tensor  # (B,2048,H/8,W/8) layer4 output
    features: torch.Tensor  # (B,160,H/4,W/4) the f-BRS-B insertion tensor F
    logits_f4: torch.Tensor  # (B,1,H/4,W/4) before the final upsample
    logits: torch.Tensor  # (B,1,H,W)


class FBRSNetwork(nn.Module):
    """The DistMapsModel of f-BRS: early fusion of two click maps with the image."""

    def __init__(self, aspp_dropout: float = DEFAULT_ASPP_DROPOUT) -> None:
        super().__init__()
        self.rgb_conv = nn.Sequential(
            nn.Conv2d(5, 8, 1),
            nn.LeakyReLU(0.2),
            nn.BatchNorm2d(8),
            nn.Conv2d(8, 3, 1),
        )
        self.feature_extractor = DeepLabV3Plus(aspp_dropout)
        self.head = _OutputHead()

    def _features(self, image: torch.Tensor, click_maps: torch.Tensor):
        dtype = compute_dtype(self.rgb_conv)
        x = torch.cat([image.to(dtype), click_maps.to(dtype)], dim=1)
        if x.device.type == "cpu":
            # oneDNN runs NHWC convolutions without a layout reorder around every layer: 1.4x
            # faster for this backbone in fp32 too (bench/bench_click.py), same numbers up to
            # float rounding (parity green).
            x = x.contiguous(memory_format=torch.channels_last)
        rgb = self.rgb_conv(x)
        fe = self.feature_extractor
        c1, c4 = fe.backbone(rgb)
        context = _resize(fe.aspp(c4), c1.shape[-2:])
        return rgb, c4, torch.cat([context, fe.skip_project(c1)], dim=1)

    def features(self, image: torch.Tensor, click_maps: torch.Tensor) -> torch.Tensor:
        """image (B,3,H,W) normalised, click_maps (B,2,H,W) tanh features, any float dtype
        -> F (B,160,H/4,W/4) float32 (computed in the backbone's dtype)."""
        return self._features(image, click_maps)[2].float()

    def head_dtype(self) -> torch.dtype:
        """The dtype the decoder and output heads (what BRS differentiates) compute in."""
        return compute_dtype(self.head)

    def head_logits(self, features: torch.Tensor) -> torch.Tensor:
        """F (B,160,h,w) -> logits (B,1,h,w) float32 at stride 4 (decoder block, output head)."""
        x = features.to(self.head_dtype())
        return self.head(self.feature_extractor.head(x)).float()

    def logits_from_features(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """F -> logits (B,1,*size) float32, upsampled with align_corners=True."""
        return _resize(self.head_logits(features), size)

    def forward(self, image: torch.Tensor, click_maps: torch.Tensor) -> torch.Tensor:
        """image (B,3,H,W), click_maps (B,2,H,W) -> logits (B,1,H,W)."""
        return self.logits_from_features(self.features(image, click_maps), image.shape[-2:])

    def internals(self, image: torch.Tensor, click_maps: torch.Tensor) -> Internals:
        """The forward pass keeping its intermediate tensors."""
        rgb, c4, feats = self._features(image, click_maps)
        logits_f4 = self.head_logits(feats)
        size = image.shape[-2:]
        return Internals(
            rgb.float(), c4.float(), feats.float(), logits_f4, _resize(logits_f4, size)
        )
