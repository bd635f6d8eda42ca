"""Fusion modules (Tables I and II): combine the low-level map with the context output.

Every module has the signature ``Cls(low_channels, high_channels, out_channels, *, options)`` and
``forward(low (B, Cl, H4, W4), high (B, Ch, h, w)) -> (deep, shallow)``, both (B, out, H4, W4).
``build_fusion`` selects one by its config name (``model.fusion``).
"""

from __future__ import annotations

from torch import nn

from wsfcn.model.context import keyword_options
from wsfcn.model.fusion.align import AlignModule
from wsfcn.model.fusion.baseline import GCI, BaselineFusion
from wsfcn.model.fusion.sf2 import SF2Core, SF2Fusion
from wsfcn.model.fusion.simple import ConcatFusion, MulFusion, SumFusion

FUSION_MODULES: dict[str, type[nn.Module]] = {
    "baseline": BaselineFusion,
    "sf2": SF2Fusion,
    "sum": SumFusion,
    "concat": ConcatFusion,
    "mul": MulFusion,
}


def build_fusion(
    name: str, low_channels: int, high_channels: int, out_channels: int, **options: object
) -> nn.Module:
    """Build the fusion module ``name`` (a key of ``FUSION_MODULES``).

    Raises:
        KeyError: unknown name (the message lists the valid ones).
        TypeError: an option the module does not take (the message lists the ones it does).
    """
    if name not in FUSION_MODULES:
        raise KeyError(f"unknown fusion module {name!r}; choose from {sorted(FUSION_MODULES)}")
    cls = FUSION_MODULES[name]
    unknown = sorted(set(options) - set(keyword_options(cls)))
    if unknown:
        raise TypeError(
            f"fusion {name!r} ({cls.__name__}) takes no option(s) {unknown}; it takes {keyword_options(cls)}"
        )
    return cls(low_channels, high_channels, out_channels, **options)


__all__ = [
    "FUSION_MODULES",
    "GCI",
    "AlignModule",
    "BaselineFusion",
    "ConcatFusion",
    "MulFusion",
    "SF2Core",
    "SF2Fusion",
    "SumFusion",
    "build_fusion",
]
