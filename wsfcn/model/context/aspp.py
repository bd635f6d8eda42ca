"""ASPP: the baseline's context module (1-stage-wseg, Table I row 1; method §4).

Five parallel branches on the backbone's deep features: a 1×1 conv, three 3×3 atrous convs
(dilations 12/24/36 at output stride 8, 6/12/18 at 16), each conv → BN → ReLU, and an image-pooling
branch (GAP → 1×1 conv → BN → ReLU → upsample). The five maps are concatenated (5·out channels) and
fused by 1×1 conv → BN → ReLU → Dropout(0.5). Every BN has frozen running statistics (method §2.3).
At 4096 → 256: 30,739,456 parameters.

:class:`AtrousBranch` and :class:`ImagePooling` are reused by FCA (its image-pooling branch, and the
``mclm=False`` variant).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsfcn.model.layers import Dropout, FrozenStatsBatchNorm2d, init_kaiming_

ASPP_DILATIONS: dict[int, tuple[int, int, int]] = {8: (12, 24, 36), 16: (6, 12, 18)}


def atrous_dilations(output_stride: int) -> tuple[int, int, int]:
    """The three 3×3 dilations of ASPP (and of FCA's k = 3/5/7 branches) for a backbone stride."""
    if output_stride not in ASPP_DILATIONS:
        raise ValueError(f"output_stride must be one of {sorted(ASPP_DILATIONS)}, got {output_stride}")
    return ASPP_DILATIONS[output_stride]


class AtrousBranch(nn.Module):
    """Conv (k×k, dilation d, no bias) → frozen-stats BN → ReLU. (B, Cin, h, w) → (B, Cout, h, w)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        padding = 0 if kernel_size == 1 else dilation * (kernel_size - 1) // 2
        self.atrous_conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False
        )
        self.bn = FrozenStatsBatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.atrous_conv(x)))


class ImagePooling(nn.Sequential):
    """GAP → 1×1 conv (no bias) → frozen-stats BN → ReLU, upsampled back to the input size.

    Keys ``1.weight`` (conv) and ``2.*`` (BN), as the official ``global_avg_pool``.
    (B, Cin, h, w) → (B, Cout, h, w), constant over space.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            FrozenStatsBatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        return F.interpolate(super().forward(x), size=size, mode="bilinear", align_corners=True)


def aspp_branches(in_channels: int, out_channels: int, dilations: tuple[int, int, int]) -> nn.ModuleList:
    """The four conv branches: 1×1, then 3×3 with each of ``dilations``."""
    return nn.ModuleList(
        [AtrousBranch(in_channels, out_channels, 1, 1)]
        + [AtrousBranch(in_channels, out_channels, 3, d) for d in dilations]
    )


class ASPPContext(nn.Module):
    """Atrous spatial pyramid pooling (DeepLab-v3+ form used by 1-stage-wseg).

    Args:
        in_channels: deep-feature channels (4096 for ResNet-38).
        out_channels: output channels, also each branch's width (256).
        output_stride: backbone stride, selects the default dilations (8 → 12/24/36, 16 → 6/12/18).
        dilations: explicit 3×3 dilations, overriding ``output_stride``.
        dropout: dropout probability on the output.

    Shapes: (B, in_channels, h, w) → (B, out_channels, h, w).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        output_stride: int = 8,
        dilations: tuple[int, int, int] | None = None,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        dilations = tuple(dilations) if dilations is not None else atrous_dilations(output_stride)
        if len(dilations) != 3:
            raise ValueError(f"ASPPContext: need three dilations, got {dilations}")
        branches = aspp_branches(in_channels, out_channels, dilations)
        # Attribute names follow the DeepLab / 1-stage-wseg ASPP (aspp1..aspp4, global_avg_pool, conv1, bn1).
        self.aspp1, self.aspp2, self.aspp3, self.aspp4 = branches
        self.global_avg_pool = ImagePooling(in_channels, out_channels)
        self.conv1 = nn.Conv2d(5 * out_channels, out_channels, 1, bias=False)
        self.bn1 = FrozenStatsBatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.dropout = Dropout(dropout)
        init_kaiming_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x), self.global_avg_pool(x)]
        x = self.relu(self.bn1(self.conv1(torch.cat(branches, dim=1))))
        return self.dropout(x)
