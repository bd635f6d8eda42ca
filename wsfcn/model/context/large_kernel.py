"""Large Conv: a single k×k conv, a Table II context alternative (method §11 reconstruction).

7×7 conv in → out (no bias) → BN → ReLU → Dropout(0.5) in place of ASPP. At 4096 → 256:
51,380,736 parameters, which gives the Table II total of 157.75 M. As for every context module the
BN has frozen running statistics (method §2.3) and the ASPP's output dropout is kept.
"""

from __future__ import annotations

import torch
from torch import nn

from wsfcn.model.layers import Dropout, conv_bn_relu, init_kaiming_


class LargeKernelContext(nn.Module):
    """One large-kernel conv block.

    Args:
        in_channels: deep-feature channels (4096 for ResNet-38).
        out_channels: output channels (256).
        kernel_size: odd kernel size (7 in Table II).
        dropout: dropout probability on the output.

    Shapes: (B, in_channels, h, w) → (B, out_channels, h, w).
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, kernel_size: int = 7, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, out_channels, kernel_size, frozen_bn=True)
        self.dropout = Dropout(dropout)
        init_kaiming_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.conv(x))
