"""SF2: Semantically consistent Feature Fusion (paper §III-C, Eq. 7-8; method §3.3, §10.5).

E denotes 3×3 conv (with bias; kaiming-normal fan_in, bias 0) → BN → ReLU; L = low-level map,
H = aligned high-level map.

``form="code"`` (authors' ``SF2``, eight E blocks)::

    L1 = E1l(L); L2 = E2l(L1)        H1 = E1h(H); H2 = E2h(H1)
    P  = L2 ⊙ H2
    L' = E4l(E3l(P) + L1)            H' = E4h(E3h(P) + H1)

``form="paper"`` (Eq. 7-8, four E blocks): ``P = E1l(L) ⊙ E1h(H)``, ``L' = E4l(E1l(L) + P)``,
``H' = E4h(E1h(H) + P)``; the blocks keep the names of the code-form blocks they correspond to.

Official names: the suffix ``h`` is the LOW stream (``conv1h``..``conv4h``, ``bn1h``..) and ``v`` the HIGH
stream. ``SF2Fusion`` holds ``align`` (:class:`AlignModule`) and ``sf2`` (:class:`SF2Core`), so the released
checkpoint's ``align1.*`` / ``sf2.*`` keys map to ``fusion.align.*`` / ``fusion.sf2.*``. It returns
``(deep, shallow) = (H', L')``. At 256 channels: SF2 core 4,724,736, align 70,144 parameters.

:class:`SF2Core` also takes the fusion operator (``mul`` / ``sum`` / ``concat``), which the Table II
alternatives in ``simple.py`` reuse.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from wsfcn.model.fusion.align import AlignModule
from wsfcn.model.layers import init_kaiming_

FusionOp = Literal["mul", "sum", "concat"]


class SF2Core(nn.Module):
    """The two-stream fusion on same-resolution maps.

    Args:
        low_channels: channels of L.
        high_channels: channels of H.
        out_channels: width of every E block and of both outputs.
        form: ``"code"`` (8 E blocks) or ``"paper"`` (4 E blocks).
        op: how the two streams meet: ``"mul"`` (SF2), ``"sum"`` or ``"concat"`` (then E3 takes 2·out;
            code form only).

    Shapes: low (B, Cl, H, W), high (B, Ch, H, W) → (low_out, high_out), both (B, out, H, W).
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        out_channels: int,
        *,
        form: Literal["code", "paper"] = "code",
        op: FusionOp = "mul",
    ) -> None:
        super().__init__()
        if form not in ("code", "paper"):
            raise ValueError(f"SF2Core: form must be 'code' or 'paper', got {form!r}")
        if op not in ("mul", "sum", "concat"):
            raise ValueError(f"SF2Core: op must be 'mul', 'sum' or 'concat', got {op!r}")
        if op == "concat" and form == "paper":
            raise ValueError("SF2Core: op='concat' needs form='code' (the paper form adds P to a stream)")
        self.form, self.op = form, op
        fused = 2 * out_channels if op == "concat" else out_channels
        # input widths of each block, (low stream "h", high stream "v")
        widths = {
            "1": (low_channels, high_channels),
            "2": (out_channels, out_channels),
            "3": (fused, fused),
            "4": (out_channels, out_channels),
        }
        for i in ("1", "2", "3", "4") if form == "code" else ("1", "4"):
            for stream, cin in zip(("h", "v"), widths[i], strict=True):
                self.add_module(f"conv{i}{stream}", nn.Conv2d(cin, out_channels, 3, padding=1))
                self.add_module(f"bn{i}{stream}", nn.BatchNorm2d(out_channels))
        init_kaiming_(self)

    def _e(self, name: str, x: torch.Tensor) -> torch.Tensor:
        conv, bn = getattr(self, f"conv{name}"), getattr(self, f"bn{name}")
        return F.relu(bn(conv(x)))

    def _meet(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.op == "mul":
            return a * b
        if self.op == "sum":
            return a + b
        return torch.cat([a, b], dim=1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low1, high1 = self._e("1h", low), self._e("1v", high)
        if self.form == "paper":
            fused = self._meet(low1, high1)
            return self._e("4h", low1 + fused), self._e("4v", high1 + fused)
        fused = self._meet(self._e("2h", low1), self._e("2v", high1))
        low_out = self._e("4h", self._e("3h", fused) + low1)
        high_out = self._e("4v", self._e("3v", fused) + high1)
        return low_out, high_out


class SF2Fusion(nn.Module):
    """Alignment (or plain upsampling) of the high map, then :class:`SF2Core`.

    Args:
        low_channels: channels of the low-level map (conv3: 256).
        high_channels: channels of the context output (256).
        out_channels: channels of both outputs (256).
        form: ``"code"`` or ``"paper"``; applies to both the alignment and the fusion.
        align: use the AlignModule; False upsamples the high map bilinearly (align_corners=True).

    Shapes: low (B, Cl, H4, W4), high (B, Ch, h, w) → (deep, shallow), both (B, out, H4, W4).
    """

    fusion_op: FusionOp = "mul"

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        out_channels: int,
        *,
        form: Literal["code", "paper"] = "code",
        align: bool = True,
    ) -> None:
        super().__init__()
        self.align = AlignModule(low_channels, high_channels, form=form) if align else None
        self.sf2 = SF2Core(low_channels, high_channels, out_channels, form=form, op=self.fusion_op)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.align is not None:
            high = self.align(low, high)
        elif high.shape[-2:] != low.shape[-2:]:
            high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=True)
        shallow, deep = self.sf2(low, high)
        return deep, shallow
