"""Data: the embedded synthetic benchmark, VOC/COCO preparation, datasets and loaders (METHOD §6.2, §8)."""

from wsfcn.data.classes import CLASS_NAMES, IGNORE_INDEX, num_classes, voc_palette
from wsfcn.data.datasets import SegmentationDataset, build_dataset, build_loader
from wsfcn.data.synthetic import generate_synthetic

__all__ = [
    "CLASS_NAMES",
    "IGNORE_INDEX",
    "SegmentationDataset",
    "build_dataset",
    "build_loader",
    "generate_synthetic",
    "num_classes",
    "voc_palette",
]
