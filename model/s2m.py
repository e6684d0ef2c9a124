"""Scribble-to-mask network (networks.md C): DeepLabV3+ on ResNet-50, output stride 16.

Input (B,6,H,W) = [normalised RGB, previous binary mask, positive scribbles, negative scribbles].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.fused_ops import conv_bn_relu, conv_keep_layout
from model.precision import compute_dtype
from model.resnet_parts import bottleneck_stage
from model.winograd import reads_nchw


class ConvBNReLU(nn.Sequential):
    """conv, BN, ReLU (children 0, 1, 2: the checkpoint's names), then any `tail` modules.

    A Sequential so the names stay those of the original's nn.Sequential; its forward runs the
    conv with its ReLU in one pass once BN is folded (model/fused_ops.py).
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int = 1, dilation: int = 1, tail=()
    ) -> None:
        pad = dilation * (kernel // 2)
        conv = nn.Conv2d(in_ch, out_ch, kernel, padding=pad, dilation=dilation, bias=False)
        super().__init__(conv, nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True), *tail)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = conv_bn_relu(self[0], self[1], x)
        for module in list(self)[3:]:
            x = conv_keep_layout(module, x) if isinstance(module, nn.Conv2d) else module(x)
        return x


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 1, dilation: int = 1) -> list[nn.Module]:
    pad = dilation * (kernel // 2)
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=pad, dilation=dilation, bias=False)
    return [conv, nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]


class S2MBackbone(nn.Module):
    """ResNet-50 with a 6-channel first conv; layer4 trades its stride for dilation 2."""

    def __init__(self, in_channels: int = 6) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = bottleneck_stage(64, 64, 3)
        self.layer2 = bottleneck_stage(256, 128, 4, stride=2)
        self.layer3 = bottleneck_stage(512, 256, 6, stride=2)
        # Block 0 keeps dilation 1 and stride 1; blocks 1-2 use dilation 2 (output stride 16).
        self.layer4 = bottleneck_stage(1024, 512, 3, stride=1, dilation=2, first_dilation=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (low-level layer1 features at 1/4, layer4 features at 1/16)."""
        x = self.maxpool(conv_bn_relu(self.conv1, self.bn1, x))
        low = self.layer1(x)
        return low, self.layer4(self.layer3(self.layer2(low)))


class ASPPPooling(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), *_conv_bn_relu(in_ch, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        return F.interpolate(super().forward(x), size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    def __init__(self, in_ch: int, rates: tuple[int, int, int] = (6, 12, 18), out_ch: int = 256):
        super().__init__()
        branches = [ConvBNReLU(in_ch, out_ch)]
        branches += [ConvBNReLU(in_ch, out_ch, 3, r) for r in rates]
        branches.append(ASPPPooling(in_ch, out_ch))
        self.convs = nn.ModuleList(branches)
        self.project = ConvBNReLU(5 * out_ch, out_ch, tail=[nn.Dropout(0.1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


# F.interpolate(mode="bilinear", align_corners=False) writing into a given tensor
_UPSAMPLE_INTO = torch.ops.aten.upsample_bilinear2d.out


class DeepLabHeadV3Plus(nn.Module):
    def __init__(self, low_ch: int = 256, high_ch: int = 2048, num_classes: int = 1) -> None:
        super().__init__()
        self.project = ConvBNReLU(low_ch, 48)
        self.aspp = ASPP(high_ch)
        self.classifier = ConvBNReLU(304, 256, 3, tail=[nn.Conv2d(256, num_classes, 1)])

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        low, high = self.project(low), self.aspp(high)
        size = list(low.shape[-2:])
        if reads_nchw(self.classifier[0], low.shape[1] + high.shape[1], low):
            # the concatenation is built in the layout the classifier's Winograd reads (the
            # small 1/16 map converted before upsampling), and its output stays NCHW
            low, high = low.contiguous(), high.contiguous()
            if low.shape[0] == 1 and not torch.is_grad_enabled():
                # one object: its channel slices are contiguous, so the upsampling writes into
                # the classifier's input directly instead of into a copy that is concatenated
                x = low.new_empty((1, low.shape[1] + high.shape[1], *size))
                x[:, : low.shape[1]] = low
                _UPSAMPLE_INTO(high, size, False, None, None, out=x[:, low.shape[1] :])
                return self.classifier(x)
        high = F.interpolate(high, size=size, mode="bilinear", align_corners=False)
        return self.classifier(torch.cat([low, high], dim=1))


class S2MNetwork(nn.Module):
    """Returns one logit map per input at the input size; the caller applies sigmoid."""

    # Stays bf16 in the fast mode (model/int8.py): int8 took its mask agreement with fp32 from
    # 99.2 % (bf16) to 98.3 % (synthetic weights, tests/test_speed_modes.py's S2M check), and it
    # runs once per scribble, not per frame.
    int8_exempt = True

    def __init__(self) -> None:
        super().__init__()
        self.backbone = S2MBackbone()
        self.classifier = DeepLabHeadV3Plus()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B,6,H,W) -> float32 logits (B,1,H,W); computed in the weights' dtype."""
        low, high = self.backbone(x.to(compute_dtype(self)))
        logits = self.classifier(low, high).float()
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
