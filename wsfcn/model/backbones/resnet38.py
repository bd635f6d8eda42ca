"""WideResNet-38 backbone, output stride 8 (method §2.1; the paper's backbone for every number).

A pre-activation wide ResNet ("model A1" of Wu et al., ImageNet weights converted from mxnet).
Module names equal the official ones (``conv1a``, ``b2`` … ``b7``, ``bn7``; inside a block
``bn_branch2a``, ``conv_branch2a``, ``bn_branch2b1``, ``conv_branch2b1``, ``bn_branch2b2``,
``conv_branch2b2``, ``conv_branch1``) so the ImageNet file and the released WS-FCN checkpoint load
without renaming (under a ``backbone.`` prefix in the full model).

Parameters: 105,070,912; after :meth:`freeze` + ``train()`` 868,672 are frozen (conv1a, the b2
stage and every BN γ/β).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsfcn.model.backbones.base import Backbone, BackboneFeatures


class ResBlock(nn.Module):
    """Pre-activation basic block: BN→ReLU → 3×3 conv (stride, first_dilation) → BN→ReLU → 3×3 conv.

    The shortcut is the raw input when shapes agree, else a strided 1×1 conv on the BN-ReLU'd input.
    No conv has a bias.
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        stride: int = 1,
        first_dilation: int | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        first_dilation = dilation if first_dilation is None else first_dilation
        self.same_shape = in_channels == out_channels and stride == 1
        self.bn_branch2a = nn.BatchNorm2d(in_channels)
        self.conv_branch2a = nn.Conv2d(
            in_channels, mid_channels, 3, stride, padding=first_dilation, dilation=first_dilation, bias=False
        )
        self.bn_branch2b1 = nn.BatchNorm2d(mid_channels)
        self.conv_branch2b1 = nn.Conv2d(
            mid_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False
        )
        if not self.same_shape:
            self.conv_branch1 = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H/stride, W/stride)."""
        x_bn_relu = F.relu(self.bn_branch2a(x))
        shortcut = x if self.same_shape else self.conv_branch1(x_bn_relu)
        branch = self.conv_branch2a(x_bn_relu)
        branch = self.conv_branch2b1(F.relu(self.bn_branch2b1(branch)))
        return shortcut + branch


class ResBlockBot(nn.Module):
    """Pre-activation bottleneck (official ``ResBlock_bot``) with Dropout2d after the inner ReLUs.

    BN→ReLU → 1×1 in→out/4 (stride) → BN→ReLU→Dropout2d → 3×3 out/4→out/2 (dilation) →
    BN→ReLU→Dropout2d → 1×1 out/2→out, plus a 1×1 projection of the BN-ReLU'd input.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        quarter, half = out_channels // 4, out_channels // 2
        self.bn_branch2a = nn.BatchNorm2d(in_channels)
        self.conv_branch2a = nn.Conv2d(in_channels, quarter, 1, stride, bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(quarter)
        self.dropout_2b1 = nn.Dropout2d(dropout)
        self.conv_branch2b1 = nn.Conv2d(quarter, half, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn_branch2b2 = nn.BatchNorm2d(half)
        self.dropout_2b2 = nn.Dropout2d(dropout)
        self.conv_branch2b2 = nn.Conv2d(half, out_channels, 1, bias=False)
        self.conv_branch1 = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H/stride, W/stride)."""
        x_bn_relu = F.relu(self.bn_branch2a(x))
        shortcut = self.conv_branch1(x_bn_relu)
        branch = self.conv_branch2a(x_bn_relu)
        branch = self.conv_branch2b1(self.dropout_2b1(F.relu(self.bn_branch2b1(branch))))
        branch = self.conv_branch2b2(self.dropout_2b2(F.relu(self.bn_branch2b2(branch))))
        return shortcut + branch


class ResNet38(Backbone):
    """WideResNet-38: low = raw ``b3_2`` output (256 ch, stride 4); deep = ReLU(bn7) (4096 ch, stride 8).

    Stages b5 (dilation 2, its first conv undilated) and b6/b7 (dilation 4, Dropout2d 0.3/0.5)
    keep stride 8. Default PyTorch initialisation; the method always loads ImageNet weights.
    """

    low_channels = 256
    deep_channels = 4096
    output_stride = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv1a = nn.Conv2d(3, 64, 3, padding=1, bias=False)

        self.b2 = ResBlock(64, 128, 128, stride=2)
        self.b2_1 = ResBlock(128, 128, 128)
        self.b2_2 = ResBlock(128, 128, 128)

        self.b3 = ResBlock(128, 256, 256, stride=2)
        self.b3_1 = ResBlock(256, 256, 256)
        self.b3_2 = ResBlock(256, 256, 256)

        self.b4 = ResBlock(256, 512, 512, stride=2)
        self.b4_1 = ResBlock(512, 512, 512)
        self.b4_2 = ResBlock(512, 512, 512)
        self.b4_3 = ResBlock(512, 512, 512)
        self.b4_4 = ResBlock(512, 512, 512)
        self.b4_5 = ResBlock(512, 512, 512)

        self.b5 = ResBlock(512, 512, 1024, stride=1, first_dilation=1, dilation=2)
        self.b5_1 = ResBlock(1024, 512, 1024, dilation=2)
        self.b5_2 = ResBlock(1024, 512, 1024, dilation=2)

        self.b6 = ResBlockBot(1024, 2048, stride=1, dilation=4, dropout=0.3)
        self.b7 = ResBlockBot(2048, 4096, dilation=4, dropout=0.5)
        self.bn7 = nn.BatchNorm2d(4096)

    def frozen_modules(self) -> list[nn.Module]:
        """conv1a and the whole b2 stage (official ``_fix_params``); BNs are frozen by ``freeze``."""
        return [self.conv1a, self.b2, self.b2_1, self.b2_2]

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        """(B, 3, H, W) -> low (B, 256, ⌈H/4⌉, ⌈W/4⌉), deep (B, 4096, ⌈H/8⌉, ⌈W/8⌉)."""
        x = self.conv1a(x)
        for block in (self.b2, self.b2_1, self.b2_2, self.b3, self.b3_1, self.b3_2):
            x = block(x)
        low = x
        for block in (self.b4, self.b4_1, self.b4_2, self.b4_3, self.b4_4, self.b4_5):
            x = block(x)
        for block in (self.b5, self.b5_1, self.b5_2, self.b6, self.b7):
            x = block(x)
        deep = F.relu(self.bn7(x))
        return BackboneFeatures(low, deep)
