"""The baseline's fusion of deep and shallow features (1-stage-wseg ``SoftMaxAE``; method §4).

Deep path: ``fc8_skip`` (1×1 low → 48, no bias, BN, ReLU) on the low-level map; the context output is
upsampled bilinearly (align_corners=True) to stride 4 and concatenated first (high + 48 channels);
``fc8_x`` (3×3 → out, no bias, BN, ReLU) gives **deep**.

Shallow path, GCI (global cue injection) on (low, deep):

1. ``fc_deep``: 1×1 deep → 2·out + BN + ReLU, global max over space, split into (γ, β);
2. ``fc_skip``: 1×1 low → out + BN(affine=False);
3. ReLU(s·(γ+1) + β), then ``fc_cls``: 1×1 out → out + BN + ReLU gives **shallow**.

Ordinary (train-mode) BNs, kaiming-normal init. At 256/256/256: fc8_skip 12,384; fc8_x 700,928;
GCI 263,680 parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsfcn.model.layers import conv_bn_relu, init_kaiming_


class GCI(nn.Module):
    """Global cue injection: AdaIN-style modulation of the low map by the deep map's global maxima.

    Shapes: low (B, Cl, H, W), deep (B, C, H', W') → (B, C, H, W).
    """

    def __init__(self, low_channels: int, channels: int) -> None:
        super().__init__()
        self.fc_deep = conv_bn_relu(channels, 2 * channels, 1)
        self.fc_skip = nn.Sequential(
            nn.Conv2d(low_channels, channels, 1, bias=False), nn.BatchNorm2d(channels, affine=False)
        )
        self.fc_cls = conv_bn_relu(channels, channels, 1)

    def forward(self, low: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        attrs = self.fc_deep(deep).amax(dim=(2, 3))  # (B, 2C)
        gamma, beta = attrs.view(attrs.shape[0], 2, -1).unbind(1)  # (B, C) each
        s = self.fc_skip(low)
        s = F.relu(s * (gamma[:, :, None, None] + 1) + beta[:, :, None, None])
        return self.fc_cls(s)


class BaselineFusion(nn.Module):
    """Skip connection + GCI.

    Args:
        low_channels: channels of the low-level map (conv3: 256).
        high_channels: channels of the context output (256).
        out_channels: channels of both outputs (256).
        skip_channels: width of ``fc8_skip`` (48).

    Shapes: low (B, Cl, H4, W4), high (B, Ch, h, w) → (deep, shallow), both (B, out, H4, W4).
    """

    def __init__(
        self, low_channels: int, high_channels: int, out_channels: int, *, skip_channels: int = 48
    ) -> None:
        super().__init__()
        self.fc8_skip = conv_bn_relu(low_channels, skip_channels, 1)
        self.fc8_x = conv_bn_relu(high_channels + skip_channels, out_channels, 3)
        self.gci = GCI(low_channels, out_channels)
        init_kaiming_(self)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.fc8_skip(low)
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=True)
        deep = self.fc8_x(torch.cat([high, skip], dim=1))
        return deep, self.gci(low, deep)
