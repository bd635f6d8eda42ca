"""Throughput of the training loader (method §6.2 augmentation): images/s by image size and workers.

Generates two small synthetic sets in a temporary folder (VOC-sized 375x500 JPEGs and 96 px
images), indexes them as the prepare stage would, and times full epochs of ``build_loader``
(worker start-up included, as in training). Run: ``python benchmarks/bench_loader.py``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from wsfcn.config import DataParams
from wsfcn.data.datasets import build_loader
from wsfcn.data.io import labels_from_mask, read_mask
from wsfcn.data.synthetic import generate_synthetic


def make_set(root: Path, size: int | tuple[int, int], count: int) -> None:
    """Generate ``count`` training images into ``root/raw`` and write lists/labels/index into ``root``."""
    generate_synthetic(root / "raw", num_train=count, num_val=0, image_size=size, seed=0)
    ids = (root / "raw/VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt").read_text().split()
    images = {i: f"raw/VOCdevkit/VOC2012/JPEGImages/{i}.jpg" for i in ids}
    masks = {i: f"raw/VOCdevkit/VOC2012/SegmentationClass/{i}.png" for i in ids}
    labels = {i: labels_from_mask(read_mask(root / masks[i])) for i in ids}
    (root / "lists").mkdir(exist_ok=True)
    (root / "lists/train.txt").write_text("".join(f"{i}\n" for i in ids))
    (root / "labels.json").write_text(json.dumps(labels))
    index = {"dataset": "synthetic", "num_classes": 9, "images": images, "masks": masks}
    (root / "index.json").write_text(json.dumps(index))


def images_per_second(data: DataParams, *, batch_size: int, workers: int, epochs: int) -> float:
    loader = build_loader(data, "train", batch_size=batch_size, train=True, seed=0, num_workers=workers)
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += batch["image"].shape[0]
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the number of images")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    cases = [  # (label, image size, images, crop, batch)
        ("375x500 JPEG, crop 321", (375, 500), 128, 321, 16),
        ("96 px synthetic, crop 96", 96, 512, 96, 32),
    ]
    print(f"| images | workers | images/s |  ({args.epochs} epochs each, worker start-up included)")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, size, count, crop, batch in cases:
            root = Path(tmp) / f"s{crop}" / "synthetic"
            make_set(root, size, max(batch, round(count * args.scale)))
            data = DataParams(name="synthetic", root=str(root.parent), crop_size=crop)
            for workers in (0, 2):
                rate = images_per_second(data, batch_size=batch, workers=workers, epochs=args.epochs)
                print(f"| {label} | {workers} | {rate:.0f} |")


if __name__ == "__main__":
    main()
