"""Semantic alignment γ(·): flow-guided upsampling of the high-level map (paper Eq. 9-12; method §3.2).

``form="code"`` (authors' ``AlignModule(256, 128)``): ``down_h`` / ``down_l`` reduce the high / low maps
to ``reduced_channels`` (1×1, no bias); the reduced high map is upsampled bilinearly
(align_corners=False) to the low map's size; ``flow_make`` (3×3 conv 2·reduced → 2, no bias, no BN, no
activation, PyTorch default init) turns their concatenation into a flow. The un-reduced high map is
sampled by ``grid_sample`` (bilinear, zeros padding, align_corners=True) on a ``linspace(-1, 1)`` grid
over the output plus ``flow_x / W_out`` and ``flow_y / H_out``. At 256/256 → 128: 70,144 parameters.

``form="paper"``: ``offset = E(Cat(Up(F_h), F_l))`` (Eq. 11) with E = 3×3 conv (no bias) → BN → ReLU on
the un-reduced concatenation, and ``p_l = (p_h + offset) / s`` (Eq. 12) with offsets in output pixels.
Choices: Up(·) and the geometry of Eq. 12 use the align-corners convention (p_h = 0 and p_h = W_out−1
map onto the first and last input pixels, so s = (W_out−1)/(W_in−1), which is exactly 2 for 41 → 81);
in normalised coordinates an offset of one output pixel is 2/(W_out−1). Read literally, E's ReLU makes
offsets non-negative. The key is still ``flow_make`` (an ``nn.Sequential``: conv ``0``, BN ``1``).

With zero flow both forms equal bilinear upsampling with align_corners=True.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from wsfcn.model.layers import conv_bn_relu


def flow_warp(high: torch.Tensor, flow: torch.Tensor, *, unit: Literal["code", "paper"]) -> torch.Tensor:
    """Sample ``high`` (B, C, h, w) at the output grid shifted by ``flow`` (B, 2, H, W) → (B, C, H, W).

    ``unit="code"``: one flow unit is 1/W (x) and 1/H (y) in normalised coordinates (official).
    ``unit="paper"``: one flow unit is one output pixel, 2/(W−1) and 2/(H−1) normalised (Eq. 12).
    """
    _, _, out_h, out_w = flow.shape
    xs = torch.linspace(-1.0, 1.0, out_w, device=flow.device, dtype=flow.dtype)
    ys = torch.linspace(-1.0, 1.0, out_h, device=flow.device, dtype=flow.dtype)
    if unit == "code":
        sx, sy = 1.0 / out_w, 1.0 / out_h
    else:
        sx, sy = 2.0 / max(out_w - 1, 1), 2.0 / max(out_h - 1, 1)
    gx = xs.view(1, 1, out_w) + flow[:, 0] * sx
    gy = ys.view(1, out_h, 1) + flow[:, 1] * sy
    grid = torch.stack([gx, gy], dim=-1).to(high.dtype)  # (B, H, W, 2), (x, y) order
    return F.grid_sample(high, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


class AlignModule(nn.Module):
    """Semantically aligned upsampling of the high map to the low map's resolution.

    Args:
        low_channels: channels of the low-level map F_l.
        high_channels: channels of the high-level map F_h (also of the output).
        reduced_channels: width of ``down_h`` / ``down_l`` (code form; default high_channels // 2).
        form: ``"code"`` or ``"paper"`` (see module doc).

    Shapes: low (B, Cl, H, W), high (B, Ch, h, w) → (B, Ch, H, W).
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        reduced_channels: int | None = None,
        *,
        form: Literal["code", "paper"] = "code",
    ) -> None:
        super().__init__()
        if form not in ("code", "paper"):
            raise ValueError(f"AlignModule: form must be 'code' or 'paper', got {form!r}")
        self.form = form
        if form == "code":
            reduced = reduced_channels if reduced_channels is not None else max(1, high_channels // 2)
            self.down_h = nn.Conv2d(high_channels, reduced, 1, bias=False)
            self.down_l = nn.Conv2d(low_channels, reduced, 1, bias=False)
            self.flow_make = nn.Conv2d(2 * reduced, 2, 3, padding=1, bias=False)
        else:
            self.flow_make = conv_bn_relu(high_channels + low_channels, 2, 3)

    def flow(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """The offset field (B, 2, H, W): x then y."""
        size = low.shape[-2:]
        if self.form == "code":
            up = F.interpolate(self.down_h(high), size=size, mode="bilinear", align_corners=False)
            return self.flow_make(torch.cat([up, self.down_l(low)], dim=1))
        up = F.interpolate(high, size=size, mode="bilinear", align_corners=True)
        return self.flow_make(torch.cat([up, low], dim=1))

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return flow_warp(high, self.flow(low, high), unit=self.form)
