"""Training-time forward passes that return the loss, wrapping the inference networks.

DistributedDataParallel only synchronises gradients of what runs through its forward(), so each
stage's whole computation lives in one nn.Module whose `net` attribute is the inference network
(saved as-is in the official format).

Shapes: B samples, K = 2 objects, S = crop size; f16 = features at 1/16 resolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from model.fusion_net import FusionNet
from model.s2m import S2MNetwork
from model.stcn import KeyFeatures, PropagationNetwork
from training.losses import BootstrappedCE, class_target, wbg_logits


def batched_read(mem_k: torch.Tensor, mem_v: torch.Tensor, q_k: torch.Tensor) -> torch.Tensor:
    """Full-softmax memory read for a batch (training uses no top-k).

    mem_k (B,Ck,T,h,w), mem_v (B,K,Cv,T,h,w), q_k (B,Ck,h,w) -> (B*K,Cv,h,w).
    """
    b, ck = mem_k.shape[:2]
    _, num_objects, cv, _, h, w = mem_v.shape
    mk = mem_k.flatten(2)  # B, Ck, N
    qk = q_k.flatten(2)  # B, Ck, M
    # ||qk||^2 is constant per query column, so it drops out of the softmax over memory.
    affinity = (2 * mk.transpose(1, 2) @ qk - mk.pow(2).sum(1).unsqueeze(2)) / math.sqrt(ck)
    weights = torch.softmax(affinity, dim=1)  # B, N, M
    out = mem_v.flatten(3) @ weights.unsqueeze(1)  # B, K, Cv, M
    return out.reshape(b * num_objects, cv, h, w)


class PropagationTrainModel(nn.Module):
    """Encode frame 0 with its GT, segment frame 1, memorise its prediction, segment frame 2."""

    def __init__(self, net: PropagationNetwork, loss: BootstrappedCE) -> None:
        super().__init__()
        self.net = net
        self.loss = loss

    def _value(self, feats: KeyFeatures, t: int, rgb: torch.Tensor, masks: torch.Tensor):
        """Values of frame t for both objects, each with the other as its 'others' map.

        rgb (B,3,3,S,S), masks (B,K,S,S) -> (B,K,512,1,h,w).
        """
        b, num_objects = masks.shape[:2]
        image = rgb[:, t].repeat_interleave(num_objects, 0)
        f16 = feats.f16[:, t].repeat_interleave(num_objects, 0)
        others = masks.sum(1, keepdim=True) - masks
        value = self.net.value_encoder(
            image, f16, masks.flatten(0, 1).unsqueeze(1), others.flatten(0, 1).unsqueeze(1)
        )
        return value.view(b, num_objects, *value.shape[1:]).unsqueeze(3)

    def _segment(self, feats: KeyFeatures, t: int, mem_k, mem_v, present) -> torch.Tensor:
        """Probabilities (B,K,S,S) of frame t, zeroed for absent objects."""
        num_objects = mem_v.shape[1]
        mem_out = batched_read(mem_k, mem_v, feats.k16[:, t])
        rep = lambda x: x[:, t].repeat_interleave(num_objects, 0)  # noqa: E731
        logits = self.net.decoder(mem_out, rep(feats.f16_thin), rep(feats.f8), rep(feats.f4))
        prob = torch.sigmoid(logits).view(-1, num_objects, *logits.shape[-2:])
        return prob * present[:, :, None, None].to(prob.dtype)

    def forward(self, rgb, masks, present, it: int) -> tuple[torch.Tensor, torch.Tensor]:
        """rgb (B,3,3,S,S), masks (B,3,K,S,S), present (B,K) -> (loss, frame-2 probabilities)."""
        b, t_count = rgb.shape[:2]
        flat = self.net.encode_key(rgb.flatten(0, 1))
        # (B*3, ...) -> (B, 3, ...) for every feature map.
        feats = KeyFeatures(*(f.view(b, t_count, *f.shape[1:]) for f in flat))
        gt0 = masks[:, 0] * present[:, :, None, None].to(masks.dtype)
        values = [self._value(feats, 0, rgb, gt0)]
        keys = feats.k16.transpose(1, 2)  # B, Ck, 3, h, w
        loss = rgb.new_zeros(())
        prob = gt0
        for t in (1, 2):
            prob = self._segment(feats, t, keys[:, :, :t], torch.cat(values, 3), present)
            target = class_target(masks[:, t], present)
            loss = loss + self.loss(wbg_logits(prob, present), target, it)
            if t == 1:
                values.append(self._value(feats, 1, rgb, prob))
        return loss, prob


class S2MTrainModel(nn.Module):
    """[image, previous mask, positive, negative scribbles] -> bootstrapped CE on wbg logits."""

    def __init__(self, net: S2MNetwork, loss: BootstrappedCE) -> None:
        super().__init__()
        self.net = net
        self.loss = loss

    def forward(self, rgb, prev, pos, neg, gt, it: int) -> tuple[torch.Tensor, torch.Tensor]:
        """rgb (B,3,S,S), prev/pos/neg (B,1,S,S), gt (B,S,S) -> (loss, probabilities (B,1,S,S))."""
        prob = torch.sigmoid(self.net(torch.cat([rgb, prev, pos, neg], dim=1)))
        return self.loss(wbg_logits(prob), gt.long(), it), prob


class FusionTrainModel(nn.Module):
    """Fuse two propagations of up to two objects; attention maps come precomputed (no grad)."""

    def __init__(self, net: FusionNet, loss: BootstrappedCE) -> None:
        super().__init__()
        self.net = net
        self.loss = loss

    def forward(self, rgb, seg1, seg2, attn, dist, masks, present, it: int):
        """rgb (B,3,S,S), seg1/seg2 (B,K,S,S), attn (B,K,2,S,S), dist (B,2), masks (B,K,S,S).

        Returns (loss, fused probabilities (B,K,S,S)).
        """
        b, num_objects = seg1.shape[:2]
        logits = self.net(
            rgb.repeat_interleave(num_objects, 0),
            seg1.flatten(0, 1).unsqueeze(1),
            seg2.flatten(0, 1).unsqueeze(1),
            attn.flatten(0, 1),
            dist.repeat_interleave(num_objects, 0),
        )
        prob = torch.sigmoid(logits).view(b, num_objects, *logits.shape[-2:])
        prob = prob * present[:, :, None, None].to(prob.dtype)
        loss = self.loss(wbg_logits(prob, present), class_target(masks, present), it)
        return loss, prob
