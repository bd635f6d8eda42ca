"""FCA: Flexible Context Aggregation = MCLM + SRM (paper §III-B, Eq. 1-6; method §3.1, §10.1-4).

``form="code"`` (default) is the authors' module, which produced the released checkpoint and the
paper's parameter counts:

* MCLM: four branches ``fca1..fca4`` with k = 1/3/5/7 and dilation 1/12/24/36 (output stride 8;
  1/6/12/18 at 16). Each branch is the sum of two bias-free strip-conv paths, (k×1 → 1×k) and
  (1×k → k×1), with no BN/ReLU (Eq. 1). One CBAM channel attention ``ca`` (shared two-layer MLP,
  ratio 1, no bias) is shared by all branches: ``F_i' = ca(F_i) ⊙ F_i`` (Eq. 2-3).
* An image-pooling branch ``global_avg_pool`` (not in the paper). Five maps → concat (5·out) →
  1×1 conv ``conv1`` → frozen-stats BN ``bn1``, no ReLU (the code's Eq. 4).
* SRM ``sa``: ``M_s = σ(conv3×3([mean_c F, max_c F]))``, ``F_h = M_s ⊙ F + F`` (Eq. 5-6).
* Dropout(0.5).

The official branch BN (``fcaN.bn``) is never used in forward and is NOT built here (the paper's
143.52 M excludes it; drop ``fca.fcaN.bn.*`` when converting the released checkpoint). Otherwise the
state-dict keys equal the official ``fca.*`` keys. At 4096 → 256: 37,159,954 parameters (srm=False:
37,159,936).

``form="paper"`` follows the equations literally: no dilation, no image pooling, one channel attention
per branch made of a single bias-free 1×1 conv applied to the GAP and the GMP vector (Eq. 2, shared
between the two vectors as in CBAM), and E = 3×3 conv (no bias) → BN → ReLU on the concatenated four
branches (Eq. 4). Choices the paper leaves open are taken from the code: bias-free
convs, kaiming init, frozen-stats BNs (method §2.3 treats all context BNs so; keeping it makes the form
switch change only the equations), SRM kernel 3, and the output Dropout(0.5) (set ``dropout=0`` to
drop it). At 4096 → 256: 38,273,554 parameters.

``mclm=False`` replaces the MCLM (strip-conv branches + channel attention) by the baseline ASPP's
branches (1×1 and three atrous 3×3, each conv → frozen BN → ReLU) and keeps the rest of the chosen
form, so ``fca`` with ``mclm=False, srm=True`` is "baseline + SRM" (not a paper row). With
``mclm=False, srm=False`` (code form) the parameter count equals ASPP's; it differs from ``aspp``
only by the missing ReLU after ``bn1``. Table I rows: baseline = ``context=aspp``; +MCLM =
``fca`` with ``srm=False``; +MCLM+SRM = ``fca``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from wsfcn.model.context.aspp import ImagePooling, aspp_branches, atrous_dilations
from wsfcn.model.layers import Dropout, FrozenStatsBatchNorm2d, conv_bn_relu, init_kaiming_

KERNELS = (1, 3, 5, 7)


class StripConvBranch(nn.Module):
    """One MCLM branch (official ``GCN_Module``): (k×1 → 1×k) + (1×k → k×1), dilated, bias-free.

    (B, Cin, h, w) → (B, Cout, h, w).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__()
        k, d = kernel_size, dilation
        pad = d * (k - 1) // 2
        self.conv1_1 = nn.Conv2d(in_channels, out_channels, (k, 1), padding=(pad, 0), dilation=d, bias=False)
        self.conv1_2 = nn.Conv2d(out_channels, out_channels, (1, k), padding=(0, pad), dilation=d, bias=False)
        self.conv2_1 = nn.Conv2d(in_channels, out_channels, (1, k), padding=(0, pad), dilation=d, bias=False)
        self.conv2_2 = nn.Conv2d(out_channels, out_channels, (k, 1), padding=(pad, 0), dilation=d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1_2(self.conv1_1(x)) + self.conv2_2(self.conv2_1(x))


class ChannelAttention(nn.Module):
    """σ(f(GAP(x)) + f(GMP(x))) with one bias-free ``f`` applied to both pooled vectors (Eq. 2).

    ``two_layer=True`` (code): f = 1×1 conv → ReLU → 1×1 conv (CBAM, ratio 1), keys ``sharedMLP.0/2``.
    ``two_layer=False`` (paper): f = a single 1×1 conv, key ``sharedMLP.0``.
    Returns the attention map (B, C, 1, 1); the caller multiplies.
    """

    def __init__(self, channels: int, *, two_layer: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, channels, 1, bias=False)]
        if two_layer:
            layers += [nn.ReLU(), nn.Conv2d(channels, channels, 1, bias=False)]
        self.sharedMLP = nn.Sequential(*layers)  # noqa: N815 - official key name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.sharedMLP(x.mean(dim=(2, 3), keepdim=True))
        mx = self.sharedMLP(x.amax(dim=(2, 3), keepdim=True))
        return torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """SRM map (Eq. 5): σ(conv3×3([mean_c x, max_c x])), (B, C, h, w) → (B, 1, h, w); 18 params."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(stats))


class FCAContext(nn.Module):
    """Flexible context aggregation (MCLM + SRM).

    Args:
        in_channels: deep-feature channels (4096 for ResNet-38).
        out_channels: output channels, also each branch's width (256).
        mclm: strip-conv branches + channel attention; False uses ASPP's branches (see module doc).
        srm: apply the spatial recalibration module.
        form: ``"code"`` (authors' code) or ``"paper"`` (Eq. 1-6).
        output_stride: backbone stride; selects the code form's dilations (and mclm=False's).
        dilations: explicit dilations of the k = 3/5/7 branches, overriding ``output_stride``.
        dropout: dropout probability on the output.

    Shapes: (B, in_channels, h, w) → (B, out_channels, h, w).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        mclm: bool = True,
        srm: bool = True,
        form: Literal["code", "paper"] = "code",
        output_stride: int = 8,
        dilations: tuple[int, int, int] | None = None,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if form not in ("code", "paper"):
            raise ValueError(f"FCAContext: form must be 'code' or 'paper', got {form!r}")
        self.form, self.mclm, self.srm = form, mclm, srm
        atrous = tuple(dilations) if dilations is not None else atrous_dilations(output_stride)
        if len(atrous) != 3:
            raise ValueError(f"FCAContext: need three dilations (k = 3/5/7 branches), got {atrous}")
        if mclm:
            branch_dilations = (1, *atrous) if form == "code" else (1, 1, 1, 1)
            self.fca1, self.fca2, self.fca3, self.fca4 = (
                StripConvBranch(in_channels, out_channels, k, d)
                for k, d in zip(KERNELS, branch_dilations, strict=True)
            )
            if form == "code":
                self.ca = ChannelAttention(out_channels, two_layer=True)  # one module, shared by branches
            else:
                self.ca = nn.ModuleList(ChannelAttention(out_channels, two_layer=False) for _ in KERNELS)
        else:
            self.aspp1, self.aspp2, self.aspp3, self.aspp4 = aspp_branches(in_channels, out_channels, atrous)
        if form == "code":
            self.global_avg_pool = ImagePooling(in_channels, out_channels)
            self.conv1 = nn.Conv2d(5 * out_channels, out_channels, 1, bias=False)
            self.bn1 = FrozenStatsBatchNorm2d(out_channels)
        else:
            self.embed = conv_bn_relu(4 * out_channels, out_channels, 3, frozen_bn=True)
        self.sa = SpatialAttention(3) if srm else None
        self.dropout = Dropout(dropout)
        init_kaiming_(self)

    def _branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        if not self.mclm:
            return [self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x)]
        feats = [self.fca1(x), self.fca2(x), self.fca3(x), self.fca4(x)]
        if self.form == "code":
            return [self.ca(f) * f for f in feats]
        return [ca(f) * f for ca, f in zip(self.ca, feats, strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._branches(x)
        if self.form == "code":
            feats.append(self.global_avg_pool(x))
            x = self.bn1(self.conv1(torch.cat(feats, dim=1)))
        else:
            x = self.embed(torch.cat(feats, dim=1))
        if self.sa is not None:
            x = self.sa(x) * x + x
        return self.dropout(x)
