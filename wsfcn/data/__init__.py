"""Data: the embedded synthetic benchmark, VOC/COCO preparation, datasets and loaders (METHOD §6.2, §8).

Names are imported lazily, so ``wsfcn.data.io`` or ``wsfcn.data.classes`` (used by CRF worker
processes and the prepare stage) do not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CLASS_NAMES": "wsfcn.data.classes",
    "IGNORE_INDEX": "wsfcn.data.classes",
    "num_classes": "wsfcn.data.classes",
    "voc_palette": "wsfcn.data.classes",
    "SegmentationDataset": "wsfcn.data.datasets",
    "build_dataset": "wsfcn.data.datasets",
    "build_loader": "wsfcn.data.datasets",
    "generate_synthetic": "wsfcn.data.synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'wsfcn.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
