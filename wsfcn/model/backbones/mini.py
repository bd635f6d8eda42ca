"""MiniResNet: a small pre-activation ResNet for CPU runs on the 96×96 synthetic benchmark.

Not in the paper. It mirrors ResNet-38's interface at toy scale (method §2.1 layout): a stride-2
stem conv, pre-activation blocks, ``low`` = the raw output of the stride-4 block (64 ch) and
``deep`` = BN→ReLU of a dilated stride-8 stage (256 ch). It trains from scratch, so nothing is
frozen: ``freeze()`` is a no-op and its BNs use batch statistics in training.
Parameters: 619,792. Forward+backward of a 32×3×96×96 batch: about 0.12 s on 2 quiet CPU threads
(about 0.10 s in channels_last).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsfcn.model.backbones.base import Backbone, BackboneFeatures


class PreActBlock(nn.Module):
    """BN→ReLU → 3×3 conv (stride, dilation) → BN→ReLU → 3×3 conv (dilation), plus a shortcut.

    The shortcut is the raw input when shapes agree, else a strided 1×1 conv on the BN-ReLU'd input.
    """

    def __init__(
        self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv2 = nn.Conv2d(mid_channels, out_channels, 3, 1, dilation, dilation, bias=False)
        self.shortcut = None
        if in_channels != out_channels or stride != 1:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H/stride, W/stride)."""
        y = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(y)
        return shortcut + self.conv2(F.relu(self.bn2(self.conv1(y))))


class MiniResNet(Backbone):
    """low (B, 64, H/4, W/4) = raw block2 output; deep (B, 256, H/8, W/8) = ReLU(BN(block4 output))."""

    low_channels = 64
    deep_channels = 256
    output_stride = 8
    freeze_bn = False

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, padding=1, bias=False)  # stride 2
        self.block2 = PreActBlock(16, 32, 64, stride=2)  # stride 4 -> low
        self.block3 = PreActBlock(64, 64, 128, stride=2)  # stride 8
        self.block4 = PreActBlock(128, 128, 256, dilation=2)  # stride 8, dilated
        self.bn_out = nn.BatchNorm2d(256)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def frozen_modules(self) -> list[nn.Module]:
        """Nothing is frozen: the network trains from scratch."""
        return []

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        """(B, 3, H, W) -> low (B, 64, H/4, W/4), deep (B, 256, H/8, W/8) (ceil for odd sizes)."""
        low = self.block2(self.stem(x))
        deep = F.relu(self.bn_out(self.block4(self.block3(low))))
        return BackboneFeatures(low, deep)
