"""Difference-aware fusion network (networks.md B): merges the previous and current round."""

from __future__ import annotations

import torch
from torch import nn

from model.fused_ops import conv_add, conv_relu
from model.precision import compute_dtype


def _conv3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class FusionNet(nn.Module):
    """9-channel input at full resolution -> one logit map per object (caller applies sigmoid)."""

    def __init__(self) -> None:
        super().__init__()
        # Sequential indices (conv, relu, conv) reproduce the checkpoint names conv2.0 / conv2.2.
        self.conv1 = nn.Sequential(_conv3(9, 32), nn.ReLU())
        self.conv2 = nn.Sequential(_conv3(32, 32), nn.ReLU(), _conv3(32, 32))
        self.conv3 = nn.Sequential(_conv3(32, 32), nn.ReLU(), _conv3(32, 32))
        self.final_conv = _conv3(32, 1)

    def forward(
        self,
        image: torch.Tensor,
        prev_prob: torch.Tensor,
        curr_prob: torch.Tensor,
        attention: torch.Tensor,
        dist: torch.Tensor,
    ) -> torch.Tensor:
        """image (B,3,H,W); prev/curr prob (B,1,H,W); attention (B,2,H,W); dist (B,2) = [n_c, n_r].

        Returns float32 logits (B,1,H,W); computed in the weights' dtype. All B objects in one
        batched call.
        """
        b, _, h, w = image.shape
        dtype = compute_dtype(self)
        dist_map = dist.view(-1, 2, 1, 1).expand(b, 2, h, w)
        parts = [image, prev_prob, curr_prob, attention, dist_map]
        x = torch.cat([p.to(dtype) for p in parts], dim=1)
        x = conv_relu(self.conv1[0], x)
        # relu(x + conv2(x)) with conv2 = (conv, relu, conv): ReLUs and adds fused into the convs
        for block in (self.conv2, self.conv3):
            x = conv_add(block[2], conv_relu(block[0], x), x, relu=True)
        return self.final_conv(x).float()
