"""Non-local: an embedded-Gaussian self-attention block, a Table II context alternative.

The block runs on the backbone's deep features with inner width in/2 (Wang et al., CVPR 2018):
θ, φ, g are bias-free 1×1 convs in → in/2, ``y_i = Σ_j softmax_j(θ_i·φ_j) g_j``, and a bias-free
1×1 conv W (in/2 → in) is added back: ``z = W(y) + x``. Then 1×1 conv in → out (no bias) → BN → ReLU
→ Dropout(0.5) replaces ASPP.

Parameter count and where it comes from: the official repo's ``non_local.py`` has inner width in/16
and gives 111.61 M, which does not match Table II. The Table II total of 140.97 M needs this module
to hold 34,599,956..34,609,955 parameters. The official file's layout (bias-free convs, no BN on W,
output conv1 → BN → ReLU → Dropout) is kept at inner width in/2 (its shape comments read "C/2"), giving
3·4096·2048 + 2048·4096 + 4096·256 + 512 = 34,603,520 parameters, i.e. a total of 140,968,564 → 140.97.
Adding a BN on W (+8,192) or biases on θ/φ/g and W (+10,240) would leave that range.

Other choices: kaiming init on every conv (as the official file, so W is not zero-initialised), and
frozen-stats BN (method §2.3). The official file normalises the softmax over the *query* index
(``Softmax(dim=1)`` on a (B, HW_q, HW_k) matrix); the default here is the standard softmax over keys.
``softmax_over="queries"`` reproduces the official variant.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from wsfcn.model.layers import Dropout, conv_bn_relu, init_kaiming_


class NonLocalContext(nn.Module):
    """Embedded-Gaussian non-local block followed by a 1×1 projection.

    Args:
        in_channels: deep-feature channels (4096 for ResNet-38); must be even.
        out_channels: output channels (256).
        reduction: inner width is ``in_channels // reduction`` (2 here, 16 in the official file).
        softmax_over: normalise the affinity over ``"keys"`` (standard) or ``"queries"`` (official file).
        dropout: dropout probability on the output.

    Shapes: (B, in_channels, h, w) → (B, out_channels, h, w). Memory is O((h·w)²) per image.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        reduction: int = 2,
        softmax_over: Literal["keys", "queries"] = "keys",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if in_channels % reduction != 0:
            raise ValueError(f"NonLocalContext: in_channels={in_channels} not divisible by {reduction}")
        if softmax_over not in ("keys", "queries"):
            raise ValueError(
                f"NonLocalContext: softmax_over must be 'keys' or 'queries', got {softmax_over!r}"
            )
        inner = in_channels // reduction
        self.softmax_dim = -1 if softmax_over == "keys" else 1
        self.conv_theta = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.conv_phi = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.conv_g = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.conv_mask = nn.Conv2d(inner, in_channels, 1, bias=False)
        self.project = conv_bn_relu(in_channels, out_channels, 1, frozen_bn=True)
        self.dropout = Dropout(dropout)
        init_kaiming_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        theta = self.conv_theta(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        phi = self.conv_phi(x).flatten(2)  # (B, C', HW)
        g = self.conv_g(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        affinity = torch.softmax(theta @ phi, dim=self.softmax_dim)  # (B, HW_query, HW_key)
        y = (affinity @ g).transpose(1, 2).reshape(b, -1, h, w)
        z = self.conv_mask(y) + x
        return self.dropout(self.project(z))
