"""Table II fusion alternatives: Summation, Multiplication, Concatenation (method §11 reconstruction).

Each is SF2 (code form by default) WITHOUT the AlignModule — the high map is upsampled bilinearly
with align_corners=True — and with the two streams meeting by ``L2 + H2``, ``L2 ⊙ H2`` or
``Cat(L2, H2)``. For concatenation both E3 blocks take 2·out channels. At 256 channels: sum / mul
4,724,736 parameters (Table II 140.85 M = SF2's 140.92 M minus the 70,144 of the AlignModule), concat
5,904,384 (142.03 M). The SF2 code is reused (``SF2Fusion`` with ``align=False`` and another operator),
so the keys are ``fusion.sf2.*``. ``form="paper"`` works for sum and mul; concat raises ValueError.
"""

from __future__ import annotations

from typing import Literal

from wsfcn.model.fusion.sf2 import FusionOp, SF2Fusion


class _UnalignedFusion(SF2Fusion):
    """SF2 without alignment; subclasses choose ``fusion_op``."""

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        out_channels: int,
        *,
        form: Literal["code", "paper"] = "code",
    ) -> None:
        super().__init__(low_channels, high_channels, out_channels, form=form, align=False)


class SumFusion(_UnalignedFusion):
    """``P = L2 + H2``. low (B, Cl, H4, W4), high (B, Ch, h, w) → (deep, shallow) (B, out, H4, W4)."""

    fusion_op: FusionOp = "sum"


class MulFusion(_UnalignedFusion):
    """``P = L2 ⊙ H2`` (= SF2 without alignment). Shapes as :class:`SumFusion`."""

    fusion_op: FusionOp = "mul"


class ConcatFusion(_UnalignedFusion):
    """``P = Cat(L2, H2)``, E3 takes 2·out channels; code form only. Shapes as :class:`SumFusion`."""

    fusion_op: FusionOp = "concat"
