"""STCN propagation network (networks.md A): key/value encoders, memory read, decoder.

Inputs are ImageNet-normalised RGB frames padded to multiples of 16. f16/f8/f4 are features at
1/16, 1/8, 1/4 of that size. K is the number of objects.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import BiasedBasicBlock, FeatureFusionBlock, ResBlock
from model.fused_ops import conv_add, conv_bn_relu
from model.memory_read import difference_attention, read_memory
from model.precision import compute_dtype, in_layout_of
from model.resnet_parts import bottleneck_stage

KEY_DIM = 64
VALUE_DIM = 512


class KeyFeatures(NamedTuple):
    """Everything the key encoder yields for one frame; depends only on the image, so cacheable."""

    k16: torch.Tensor  # (B, 64, h, w) key
    f16_thin: torch.Tensor  # (B, 512, h, w) query value fed to the decoder
    f16: torch.Tensor  # (B, 1024, h, w) fused into the value encoder
    f8: torch.Tensor  # (B, 512, 2h, 2w) decoder skip
    f4: torch.Tensor  # (B, 256, 4h, 4w) decoder skip


class KeyEncoder(nn.Module):
    """ResNet-50 up to conv4_x; layer1 is named res2 in the checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.res2 = bottleneck_stage(64, 64, 3)
        self.layer2 = bottleneck_stage(256, 128, 4, stride=2)
        self.layer3 = bottleneck_stage(512, 256, 6, stride=2)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """image (B,3,H,W) -> (f16, f8, f4)."""
        x = self.maxpool(conv_bn_relu(self.conv1, self.bn1, image))
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return f16, f8, f4


class ValueEncoder(nn.Module):
    """ResNet-18 to conv4_x on [image, mask, others] (biased convs), fused with the key f16."""

    # Stays bf16 in the fast mode (model/int8.py): its values are stored in memory and read by
    # every later frame, so rounding here persists (int8 here alone took mask agreement with
    # fp32 from 99.6 to 99.2 % on tests/test_speed_modes.py's clip), while it runs only once per
    # memory frame and int8 would save little.
    int8_exempt = True

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(5, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BiasedBasicBlock(64, 64), BiasedBasicBlock(64, 64))
        self.layer2 = nn.Sequential(BiasedBasicBlock(64, 128, 2), BiasedBasicBlock(128, 128))
        self.layer3 = nn.Sequential(BiasedBasicBlock(128, 256, 2), BiasedBasicBlock(256, 256))
        self.fuser = FeatureFusionBlock(1024 + 256, VALUE_DIM)

    def forward(
        self, image: torch.Tensor, key_f16: torch.Tensor, mask: torch.Tensor, others: torch.Tensor
    ) -> torch.Tensor:
        """image (K,3,H,W), masks (K,1,H,W) batched over objects, key_f16 (K,1024,h,w) or
        (1,1024,h,w) when all K share one frame's -> (K,512,h,w)."""
        x = torch.cat([image, mask, others], dim=1)
        x = self.maxpool(conv_bn_relu(self.conv1, self.bn1, x))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fuser(x, key_f16)


class KeyProjection(nn.Module):
    def __init__(self, in_channels: int, key_dim: int) -> None:
        super().__init__()
        self.key_proj = nn.Conv2d(in_channels, key_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.key_proj(x)


class UpsampleBlock(nn.Module):
    """out_conv(skip_conv(skip) + bilinear x2 (up))."""

    def __init__(self, skip_channels: int, up_channels: int, out_channels: int) -> None:
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_channels, up_channels, 3, padding=1)
        self.out_conv = ResBlock(up_channels, out_channels)

    def forward(self, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        if up.shape[0] == skip.shape[0]:
            # skip_conv(skip) + up in one fused pass
            return self.out_conv(conv_add(self.skip_conv, skip, self._upsample(up, skip), False))
        return self.with_skip(self.skip_conv(skip), up)

    def with_skip(self, skip_out: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        """forward with skip_conv(skip) already computed (1 or up's batch): shared by several
        objects, it is added into each fresh upsampled map in place."""
        return self.out_conv(self._upsample(up, skip_out).add_(skip_out))

    @staticmethod
    def _upsample(up: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(up, scale_factor=2, mode="bilinear", align_corners=False)
        return up.to(like.dtype)


class Decoder(nn.Module):
    # Every layer is a 3x3 convolution: with Winograd on (CPU fp32) NCHW saves the layout
    # conversions around each NNPACK call (480p, 1 object: 0.49 vs 0.58 s, bench/bench_speed.py).
    nchw_with_winograd = True

    def __init__(self) -> None:
        super().__init__()
        self.compress = ResBlock(1024, 512)
        self.up_16_8 = UpsampleBlock(512, 512, 256)
        self.up_8_4 = UpsampleBlock(256, 256, 256)
        self.pred = nn.Conv2d(256, 1, 3, padding=1)

    def forward(
        self, mem_out: torch.Tensor, f16_thin: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor
    ) -> torch.Tensor:
        """mem_out (K,512,h,w) per object, f16_thin (1,512,h,w) and skips f8, f4 (1,C,..) shared
        by all objects -> float32 logits (K,1,H,W).

        The original decodes cat([mem_out, f16_thin]) (1024 channels); the query half of the
        first convolutions is computed once for all K objects (ResBlock.forward_split), and the
        skip convolutions run once on the (1,C,...) skips and broadcast: all K objects in one
        batched call, no per-object work that does not depend on the object.
        """
        weight = self.compress.conv2.weight
        mem_out, f16_thin = in_layout_of(mem_out, weight), in_layout_of(f16_thin, weight)
        x = self.compress.forward_split(mem_out, f16_thin)
        x = self.up_16_8(in_layout_of(f8, weight), x)
        f4 = in_layout_of(f4, weight)
        if x.shape[0] == 1 or f4.shape[0] != 1 or torch.is_grad_enabled():
            return self._predict(self.up_8_4(f4, x))
        # K objects at inference: the 1/4 stage (its largest maps) runs one object at a time
        # after its shared skip convolution. One object's maps (26 MB at 480p) come back from
        # the allocator's free memory at every frame, while K objects' (80 MB for 3) are over
        # glibc's 32 MB mmap limit and were mapped and page-faulted in afresh, ~4 times per
        # frame (bench/bench_speed.py: 3 objects / 1 object per frame). Per object the same
        # operations, so the same numbers as the batched stage (NNPACK, which runs objects one
        # at a time anyway, included).
        skip_out = self.up_8_4.skip_conv(f4)
        return torch.cat([self._predict(self.up_8_4.with_skip(skip_out, x[i : i + 1]))
                          for i in range(x.shape[0])])  # fmt: skip

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """up_8_4's output (K,256,H/4,W/4) -> float32 logits (K,1,H,W)."""
        # x is not used again: its ReLU in place spares a fresh copy of the largest map,
        # unless autograd needs the original
        x = F.relu(x) if torch.is_grad_enabled() else x.relu_()
        x = self.pred(x).float()  # upsampled in float32 in every precision mode
        return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


def others_channel(masks: torch.Tensor) -> torch.Tensor:
    """For each object, the summed probability of all other objects: (K,1,H,W) -> (K,1,H,W)."""
    if masks.shape[0] == 1:
        return torch.zeros_like(masks)
    return masks.sum(dim=0, keepdim=True) - masks


class PropagationNetwork(nn.Module):
    """STCN at inference time. Construction never downloads anything; load weights separately."""

    def __init__(self, top_k: int = 20) -> None:
        super().__init__()
        self.top_k = top_k
        self.key_encoder = KeyEncoder()
        self.value_encoder = ValueEncoder()
        self.key_proj = KeyProjection(1024, KEY_DIM)
        self.key_comp = nn.Conv2d(1024, VALUE_DIM, 3, padding=1)
        self.decoder = Decoder()

    def encode_key(self, image: torch.Tensor) -> KeyFeatures:
        """image (B,3,H,W), normalised and padded -> features in the network's dtype."""
        f16, f8, f4 = self.key_encoder(image.to(compute_dtype(self)))
        return KeyFeatures(self.key_proj(f16), self.key_comp(f16), f16, f8, f4)

    def encode_value(
        self, image: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor
    ) -> torch.Tensor:
        """image (1,3,H,W), key_f16 (1,1024,h,w), masks (K,1,H,W) float32 probabilities
        -> values (K,512,1,h,w) in the network's dtype. All K objects in one batched call."""
        num_objects = masks.shape[0]
        dtype = compute_dtype(self)
        value = self.value_encoder(
            image.to(dtype).expand(num_objects, -1, -1, -1),
            key_f16.to(dtype),  # (1,...): its half of the fusion block runs once for all K
            masks.to(dtype),
            others_channel(masks.float()).to(dtype),
        )
        return value.unsqueeze(2)

    def segment(
        self, mem_k: torch.Tensor, mem_v: torch.Tensor, query: KeyFeatures, top_k: int | None = None
    ) -> torch.Tensor:
        """Read memory for a query frame and decode: mem_k (1,64,T,h,w), mem_v (K,512,T,h,w).

        Returns per-object float32 probabilities (K,1,H,W) in [0, 1], before aggregation.
        The affinity and its top-k softmax are float32 in every precision mode.
        """
        mem_out = read_memory(mem_k.float(), query.k16.float(), mem_v, top_k or self.top_k)
        dtype = compute_dtype(self)
        logits = self.decoder(mem_out.to(dtype), query.f16_thin, query.f8, query.f4)
        return torch.sigmoid(logits)

    def get_attention(
        self,
        mem_k: torch.Tensor,
        pos_diff: torch.Tensor,
        neg_diff: torch.Tensor,
        query_k16: torch.Tensor,
    ) -> torch.Tensor:
        """Difference maps of the interacted frame aligned to the query: (K+1,2,H,W) float32."""
        return difference_attention(mem_k.float(), query_k16.float(), pos_diff, neg_diff)
