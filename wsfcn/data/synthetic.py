"""Embedded synthetic WSSS benchmark: 8 shape classes on cluttered backgrounds, in VOC layout.

Used by tests, smoke runs and CI in place of PASCAL VOC (method §8.1 layout: JPEG images, palette
PNG class masks with a 255 band on object borders, ``ImageSets/Segmentation/<split>.txt``).
Design facts (object radius 0.18-0.38 of the side, >= 45% of each object visible, hue shared by
class pairs, background clutter) come from ``SYNTHETIC.md``. Drawing: ``synthetic_draw``.

Each image is a pure function of ``(seed, split, index)``, so the files are identical whether
they are generated in one process or in a pool.
"""

from __future__ import annotations

import os
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from wsfcn.data.classes import CLASS_NAMES, IGNORE_INDEX, voc_palette
from wsfcn.data.synthetic_draw import (
    CLASS_STYLES,
    DESIGNS,
    LONE_MAT_RATE,
    MAT_KINDS,
    OTHER_MAT_RATE,
    RADIUS_RANGE,
    background,
    paint_mat,
    paint_object,
    place_object,
)

SPLIT_CODES = {"train": 0, "val": 1}
MIN_VISIBLE = 0.45  # share of an object's area that must stay visible (occlusion and frame)
MIN_TAG_SHARE = 0.004  # a class is tagged only if it covers this share of the image
NUM_FG = len(CLASS_NAMES["synthetic"]) - 1


def sample_id(split: str, index: int) -> str:
    """``syn_train_000001`` for the first training image (``index`` counts from 0)."""
    return f"syn_{split}_{index + 1:06d}"


def render_sample(
    rng: np.random.Generator, height: int, width: int, design: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """One image and its mask, before JPEG compression, in generator ``design`` (1-5).

    Design 1 paints each object as it is placed. Designs 2-5 place every object first, then
    paint the mats (``paint_mat``), then the objects, so no mat covers an object.

    Returns:
        image: (H, W, 3) uint8; mask: (H, W) uint8 with 0 background, 1..8 classes, 255 border band.
    """
    unit = min(height, width) / 96.0
    while True:
        image = background(rng, height, width, unit)
        instances = np.zeros((height, width), dtype=np.int32)
        placed = []
        for _ in range(int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))):
            for _attempt in range(12):
                obj = place_object(rng, int(rng.integers(1, NUM_FG + 1)), height, width, design)
                trial = instances.copy()
                trial[obj.box][obj.mask] = len(placed) + 1
                counts = np.bincount(trial.ravel(), minlength=len(placed) + 2)[1:]
                totals = [p.total for p in placed] + [obj.total]
                if all(c >= MIN_VISIBLE * t for c, t in zip(counts, totals, strict=True)):
                    instances = trial
                    placed.append(obj)
                    if design == 1:
                        paint_object(rng, image, obj, unit, design)
                    break
        if design != 1:
            styles = CLASS_STYLES[design]
            if rng.random() < LONE_MAT_RATE:  # a mat alone: the surround is no evidence by itself
                centre = (rng.uniform(0.12, 0.88) * width, rng.uniform(0.12, 0.88) * height)
                radius = rng.uniform(*RADIUS_RANGE[design]) * min(height, width)
                paint_mat(rng, image, centre, radius, str(rng.choice(MAT_KINDS)), unit)
            for obj in placed:  # a context class always stands on its mat; another class at times
                mat = styles[obj.cls - 1].mat
                if not mat and rng.random() < OTHER_MAT_RATE:
                    mat = str(rng.choice(MAT_KINDS))
                if mat:
                    paint_mat(rng, image, obj.centre, obj.radius, mat, unit)
            for obj in placed:
                paint_object(rng, image, obj, unit, design)
        classes = np.array([0] + [p.cls for p in placed], dtype=np.uint8)
        mask = classes[instances]
        for cls in np.unique(mask[mask > 0]):
            if (mask == cls).sum() < MIN_TAG_SHARE * height * width:
                mask[mask == cls] = IGNORE_INDEX  # too small to tag: void, never a wrong label
        border = _border(instances, max(1, round(min(height, width) / 192)))
        mask[border] = IGNORE_INDEX
        if ((mask > 0) & (mask < IGNORE_INDEX)).any():
            break
    return _photometric(rng, image, unit), mask


def _border(instances: np.ndarray, radius: int) -> np.ndarray:
    """Pixels with another instance within Euclidean ``radius`` (VOC-like band, 2 px wide at 96 px)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = yy * yy + xx * xx <= radius * radius
    high = ndimage.maximum_filter(instances, footprint=disk)
    return high != ndimage.minimum_filter(instances, footprint=disk)


def _photometric(rng: np.random.Generator, image: np.ndarray, unit: float) -> np.ndarray:
    """Lighting gradient, sensor noise and blur; (H, W, 3) float → uint8."""
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    gx, gy = rng.uniform(-0.2, 0.2, size=2)
    light = rng.uniform(0.8, 1.15) + gx * (xx / width - 0.5) + gy * (yy / height - 0.5)
    image = image * light[..., None] + rng.uniform(1.0, 6.0) / 255 * rng.standard_normal(image.shape)
    sigma = rng.uniform(0.0, 0.8) * unit
    if sigma > 0.2:
        image = ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0))
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def _write_one(task: tuple[str, int, int, int, int, str, int]) -> None:
    split, index, seed, height, width, root, design = task
    rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
    image, mask = render_sample(rng, height, width, design)
    name = sample_id(split, index)
    quality = int(rng.integers(70, 96))
    Image.fromarray(image).save(Path(root, "JPEGImages", f"{name}.jpg"), quality=quality)
    png = Image.fromarray(mask)  # mode L; putpalette makes it P with the same indices
    png.putpalette(voc_palette())
    png.save(Path(root, "SegmentationClass", f"{name}.png"))


def generate_synthetic(
    out_dir: Path,
    *,
    num_train: int,
    num_val: int,
    image_size: int | tuple[int, int],
    seed: int,
    design: int = 4,
    workers: int | None = None,
) -> None:
    """Write the benchmark to ``out_dir/VOCdevkit/VOC2012`` (JPEGImages, SegmentationClass, ImageSets).

    Args:
        image_size: side of square images, or (height, width).
        seed: non-negative; image ``i`` of ``split`` is drawn from ``default_rng([seed, split, i])``.
        design: the generator's design (``DESIGNS``; docs/embedded-benchmark.md); 1-3 reproduce the
            earlier benchmarks, so that results trained on them stay reproducible.
        workers: processes; None: up to 4 for large sets (results do not depend on it).
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if min(height, width) < 32:
        raise ValueError(f"synthetic image_size must be at least 32 px, got {image_size}")
    if num_train < 1 or num_val < 0 or seed < 0:
        raise ValueError(f"need num_train >= 1, num_val >= 0, seed >= 0; got {num_train}, {num_val}, {seed}")
    if design not in DESIGNS:
        raise ValueError(f"synthetic design must be one of {DESIGNS}, got {design}")
    root = Path(out_dir) / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    counts = {"train": num_train, "val": num_val}
    tasks = [(s, i, seed, height, width, str(root), design) for s, n in counts.items() for i in range(n)]
    if workers is None:
        workers = min(len(os.sched_getaffinity(0)), 4) if len(tasks) >= 200 else 1
    if workers > 1:
        with get_context("fork").Pool(workers) as pool:
            for _ in pool.imap_unordered(_write_one, tasks, chunksize=16):
                pass
    else:
        for task in tasks:
            _write_one(task)
    for split, n in counts.items():
        lines = "".join(sample_id(split, i) + "\n" for i in range(n))
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(lines)
