"""PPM: PSPNet's pyramid pooling module, a Table II context alternative (method §11 reconstruction).

For each bin size b ∈ {1, 2, 3, 6}: AdaptiveAvgPool(b) → 1×1 conv in → in/4 (no bias) → BN → ReLU →
bilinear upsampling (align_corners=True) to the input size. The four pooled maps are concatenated
with the input (2·in channels) → 3×3 conv → out (no bias) → BN → ReLU → Dropout(0.5).

At 4096 → 256: 35,660,288 parameters, which gives the Table II total of 142.03 M when it replaces ASPP.
Choices not fixed by the paper: BNs use frozen running statistics like every context module of the
official code (method §2.3; also makes the 1×1-bin branch valid at batch size 1), and the output
Dropout(0.5) of the ASPP it replaces is kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsfcn.model.layers import Dropout, conv_bn_relu, init_kaiming_


class PPMContext(nn.Module):
    """Pyramid pooling module.

    Args:
        in_channels: deep-feature channels (4096 for ResNet-38); must be divisible by ``len(bins)``.
        out_channels: output channels (256).
        bins: pooled grid sizes.
        dropout: dropout probability on the output.

    Shapes: (B, in_channels, h, w) → (B, out_channels, h, w).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        bins: tuple[int, ...] = (1, 2, 3, 6),
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if in_channels % len(bins) != 0:
            raise ValueError(f"PPMContext: in_channels={in_channels} not divisible by {len(bins)} bins")
        reduced = in_channels // len(bins)
        self.bins = tuple(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), conv_bn_relu(in_channels, reduced, 1, frozen_bn=True))
            for b in self.bins
        )
        self.bottleneck = conv_bn_relu(in_channels + reduced * len(bins), out_channels, 3, frozen_bn=True)
        self.dropout = Dropout(dropout)
        init_kaiming_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(s(x), size=size, mode="bilinear", align_corners=True) for s in self.stages]
        return self.dropout(self.bottleneck(torch.cat([x, *pooled], dim=1)))
