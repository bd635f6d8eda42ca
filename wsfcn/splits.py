"""The datasets' split names: the lists ``prepare`` writes and the default (train, val) pair."""

from __future__ import annotations

# The lists ``prepare`` writes for each dataset, and the (train, val) pair used when
# ``data.train_split`` / ``data.val_split`` are ``auto`` (VOC's ``test`` exists only with test images).
DATASET_SPLITS: dict[str, tuple[str, ...]] = {
    "synthetic": ("train_aug", "train", "val"),
    "voc": ("train_aug", "train", "val", "test"),
    "coco": ("train", "val"),
    "folder": ("train", "val"),
}
DEFAULT_SPLITS: dict[str, tuple[str, str]] = {
    "synthetic": ("train_aug", "val"),
    "voc": ("train_aug", "val"),
    "coco": ("train", "val"),
    "folder": ("train", "val"),
}
AUTO_SPLIT = "auto"
