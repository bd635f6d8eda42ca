"""The interface every backbone implements (method §2).

A backbone maps a normalised image batch to two feature maps: ``low`` (stride 4, the input of
the fusion module) and ``deep`` (stride 8 or 16, the input of the context module). Parameters
the method keeps fixed (e.g. ResNet-38's conv1a, the b2 stage and every BN) are frozen by
:meth:`Backbone.freeze`, and frozen BNs stay in eval mode across ``model.train()``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class BackboneFeatures(NamedTuple):
    """low: (B, low_channels, H/4, W/4); deep: (B, deep_channels, H/s, W/s) with s = output_stride."""

    low: torch.Tensor
    deep: torch.Tensor


class Backbone(nn.Module):
    """Base class. Subclasses set the three class attributes and implement ``forward``."""

    low_channels: int
    deep_channels: int
    output_stride: int
    #: Whether :meth:`freeze` also freezes every BN (pretrained backbones). A backbone trained
    #: from scratch sets this to False so its randomly initialised BNs train normally.
    freeze_bn: bool = True

    def __init__(self) -> None:
        super().__init__()
        self._frozen_bn: list[nn.Module] = []

    def frozen_modules(self) -> list[nn.Module]:
        """Modules (convs, BNs) whose parameters never train. Override per architecture."""
        return []

    def freeze(self) -> None:
        """Set ``requires_grad=False`` on ``frozen_modules()`` and every BN; keep BN stats fixed.

        Idempotent. BNs are only frozen when the class attribute ``freeze_bn`` is True.
        """
        for module in self.frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)
        bns = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self._frozen_bn = bns if self.freeze_bn else []
        for bn in self._frozen_bn:
            for p in bn.parameters():
                p.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        for bn in self._frozen_bn:
            bn.eval()
        return self

    def forward(self, x: torch.Tensor) -> BackboneFeatures:  # pragma: no cover - abstract
        raise NotImplementedError
