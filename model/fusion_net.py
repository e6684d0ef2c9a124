"""Difference-aware fusion network (networks.md B): merges the previous and current round."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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

        Returns logits (B,1,H,W).
        """
        b, _, h, w = image.shape
        dist_map = dist.view(-1, 2, 1, 1).expand(b, 2, h, w)
        x = torch.cat([image, prev_prob, curr_prob, attention, dist_map], dim=1)
        x = self.conv1(x)
        x = F.relu(x + self.conv2(x))
        x = F.relu(x + self.conv3(x))
        return self.final_conv(x)
