"""VGG16 backbone in the DeepLab layout (method §2.2; supported by the baseline, not in the paper).

Conv layers with biases and no BN. pool1-3 are 3×3/s2/p1, pool4 is 3×3/s1, conv5_x use dilation 2,
then fc6 (3×3 conv 512→1024) → ReLU → Dropout2d(0.5) → fc7 (1×1 conv 1024→1024) → ReLU.
Layer names (``conv1_1`` … ``conv5_3``, ``fc6``, ``fc7``) equal the caffe-converted DeepLab init
``vgg16_20M.pth``. The WS-FCN repo gives conv4_1 stride 2 (output stride 16, the default here); the
baseline repo keeps it at 1 (output stride 8). conv1_1 and conv1_2 are frozen.
Parameters: 20,483,904.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsfcn.model.backbones.base import Backbone, BackboneFeatures


class VGG16(Backbone):
    """low = ReLU(conv3_3) (256 ch, stride 4); deep = ReLU(fc7) (1024 ch, stride ``output_stride``).

    Args:
        output_stride: 16 (WS-FCN repo: conv4_1 has stride 2) or 8 (baseline repo).
        fc6_dilation: dilation (and padding) of fc6; 1 in both official repos.
    """

    low_channels = 256
    deep_channels = 1024
    output_stride = 16

    def __init__(self, output_stride: int = 16, fc6_dilation: int = 1) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"VGG16 output_stride must be 8 or 16, got {output_stride!r}")
        self.output_stride = output_stride
        conv4_stride = 2 if output_stride == 16 else 1
        self.conv1_1 = nn.Conv2d(3, 64, 3, padding=1)
        self.conv1_2 = nn.Conv2d(64, 64, 3, padding=1)
        self.pool1 = nn.MaxPool2d(3, 2, padding=1)
        self.conv2_1 = nn.Conv2d(64, 128, 3, padding=1)
        self.conv2_2 = nn.Conv2d(128, 128, 3, padding=1)
        self.pool2 = nn.MaxPool2d(3, 2, padding=1)
        self.conv3_1 = nn.Conv2d(128, 256, 3, padding=1)
        self.conv3_2 = nn.Conv2d(256, 256, 3, padding=1)
        self.conv3_3 = nn.Conv2d(256, 256, 3, padding=1)
        self.pool3 = nn.MaxPool2d(3, 2, padding=1)
        self.conv4_1 = nn.Conv2d(256, 512, 3, conv4_stride, padding=1)
        self.conv4_2 = nn.Conv2d(512, 512, 3, padding=1)
        self.conv4_3 = nn.Conv2d(512, 512, 3, padding=1)
        self.pool4 = nn.MaxPool2d(3, 1, padding=1)
        self.conv5_1 = nn.Conv2d(512, 512, 3, padding=2, dilation=2)
        self.conv5_2 = nn.Conv2d(512, 512, 3, padding=2, dilation=2)
        self.conv5_3 = nn.Conv2d(512, 512, 3, padding=2, dilation=2)
        self.fc6 = nn.Conv2d(512, 1024, 3, padding=fc6_dilation, dilation=fc6_dilation)
        self.drop6 = nn.Dropout2d(0.5)
        self.fc7 = nn.Conv2d(1024, 1024, 1)

    def frozen_modules(self) -> list[nn.Module]:
        """conv1_1 and conv1_2 (official ``_fix_params``)."""
        return [self.conv1_1, self.conv1_2]

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        """(B, 3, H, W) -> low (B, 256, H/4, W/4), deep (B, 1024, H/s, W/s) (ceil for odd sizes)."""
        x = self.pool1(F.relu(self.conv1_2(F.relu(self.conv1_1(x)))))
        x = self.pool2(F.relu(self.conv2_2(F.relu(self.conv2_1(x)))))
        for conv in (self.conv3_1, self.conv3_2, self.conv3_3):
            x = F.relu(conv(x))
        low = x
        x = self.pool3(x)
        for conv in (self.conv4_1, self.conv4_2, self.conv4_3):
            x = F.relu(conv(x))
        x = self.pool4(x)
        for conv in (self.conv5_1, self.conv5_2, self.conv5_3):
            x = F.relu(conv(x))
        x = self.drop6(F.relu(self.fc6(x)))
        deep = F.relu(self.fc7(x))
        return BackboneFeatures(low, deep)
