"""Backbone registry (method §2): config name -> class, and the one builder that instantiates it."""

from __future__ import annotations

from typing import Any

from wsfcn.model.backbones.base import Backbone, BackboneFeatures
from wsfcn.model.backbones.mini import MiniResNet
from wsfcn.model.backbones.resnet38 import ResNet38
from wsfcn.model.backbones.resnets import ResNet50, ResNet101, ResNetBackbone
from wsfcn.model.backbones.vgg16 import VGG16

BACKBONES: dict[str, type[Backbone]] = {
    "resnet38": ResNet38,
    "resnet50": ResNet50,
    "resnet101": ResNet101,
    "vgg16": VGG16,
    "mini": MiniResNet,
}


def build_backbone(name: str, *, freeze: bool = True, **options: Any) -> Backbone:
    """Instantiate backbone ``name`` (options go to its constructor, e.g. ``output_stride`` for vgg16).

    With ``freeze`` (default) the method's fixed layers and BNs are frozen right away (method §2.3);
    call ``.train()`` / ``.eval()`` as usual afterwards, frozen BNs stay in eval mode.
    """
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; choose from {sorted(BACKBONES)}")
    backbone = BACKBONES[name](**options)
    if freeze:
        backbone.freeze()
    return backbone


__all__ = [
    "BACKBONES",
    "VGG16",
    "Backbone",
    "BackboneFeatures",
    "MiniResNet",
    "ResNet38",
    "ResNet50",
    "ResNet101",
    "ResNetBackbone",
    "build_backbone",
]
