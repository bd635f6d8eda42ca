"""Test helper: a tiny generated synthetic set plus the prepared index (lists, labels.json, index.json).

Written here (not via ``wsfcn.data.prepare``) so the dataset tests only depend on the index contract.
"""

from __future__ import annotations

import json
from pathlib import Path

from wsfcn.data.io import labels_from_mask, read_mask
from wsfcn.data.synthetic import generate_synthetic


def make_prepared_synthetic(root: Path, *, num_train: int = 24, num_val: int = 8, size: int = 64) -> Path:
    """Generate into ``root/synthetic/raw`` and index it; returns the prepared folder ``root/synthetic``."""
    folder = root / "synthetic"
    generate_synthetic(
        folder / "raw", num_train=num_train, num_val=num_val, image_size=size, seed=0, workers=1
    )
    voc = folder / "raw" / "VOCdevkit" / "VOC2012"
    (folder / "lists").mkdir(parents=True, exist_ok=True)
    images, masks, labels = {}, {}, {}
    for split in ("train", "val"):
        ids = (voc / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()
        (folder / "lists" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for i in ids:
            images[i] = f"raw/VOCdevkit/VOC2012/JPEGImages/{i}.jpg"
            masks[i] = f"raw/VOCdevkit/VOC2012/SegmentationClass/{i}.png"
            labels[i] = labels_from_mask(read_mask(folder / masks[i]))
    (folder / "lists" / "train_aug.txt").write_text((folder / "lists" / "train.txt").read_text())
    (folder / "labels.json").write_text(json.dumps(labels))
    index = {"dataset": "synthetic", "num_classes": 9, "images": images, "masks": masks}
    (folder / "index.json").write_text(json.dumps(index))
    return folder
