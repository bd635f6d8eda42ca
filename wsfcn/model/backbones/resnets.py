"""ResNet-50 / ResNet-101 backbones, output stride 16 (method §2.2; baseline option, not in the paper).

torchvision's bottleneck ResNet (stride on the 3×3 conv) with parameter names identical to
torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1`` … ``layer1.0.downsample.0``), so the
torchvision ImageNet files (``resnet50-19c8e357.pth``, ``resnet101-5d3b4d8f.pth``) load after
dropping ``fc.*``. As in the baseline code, layer4 has stride 1 and no dilation (output stride 16).
conv1/bn1 and every BN are frozen. Parameters: 23,508,032 (R50) and 42,500,160 (R101).
"""

from __future__ import annotations

import torch
from torch import nn

from wsfcn.model.backbones.base import Backbone, BackboneFeatures


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride) → 1×1 (×4 channels), post-activation, with an optional projection."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, 4·planes, H/stride, W/stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetBackbone(Backbone):
    """Bottleneck ResNet: low = layer1 output (256 ch, stride 4); deep = layer4 (2048 ch, stride 16)."""

    low_channels = 256
    deep_channels = 2048
    output_stride = 16

    def __init__(self, layers: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.in_channels = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self.layer1 = self._make_layer(64, layers[0], stride=1)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=1)  # stride forced to 1, no dilation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out_channels = planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or self.in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(self.in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        layers = [Bottleneck(self.in_channels, planes, stride, downsample)]
        self.in_channels = out_channels
        layers += [Bottleneck(out_channels, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def frozen_modules(self) -> list[nn.Module]:
        """conv1 and bn1 (baseline ``_fix_params``); the other BNs are frozen by ``freeze``."""
        return [self.conv1, self.bn1]

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        """(B, 3, H, W) -> low (B, 256, H/4, W/4), deep (B, 2048, H/16, W/16) (ceil for odd sizes)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        low = self.layer1(x)
        deep = self.layer4(self.layer3(self.layer2(low)))
        return BackboneFeatures(low, deep)


class ResNet50(ResNetBackbone):
    """ResNet-50 (blocks 3-4-6-3)."""

    def __init__(self) -> None:
        super().__init__((3, 4, 6, 3))


class ResNet101(ResNetBackbone):
    """ResNet-101 (blocks 3-4-23-3)."""

    def __init__(self) -> None:
        super().__init__((3, 4, 23, 3))
