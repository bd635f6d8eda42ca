"""MS COCO 2014 class-index masks and lists (method §8.1; the authors' script is not in their repo).

Layout: ``train2014/``, ``val2014/`` (``COCO_<split>2014_<12-digit id>.jpg``) and
``annotations/instances_{train,val}2014.json``. Ids are the 12-digit image ids; masks are written to
``<out>/masks/<id>.png`` (VOC palette). Classes: background 0, then the 80 categories in the standard
order (``COCO_CATEGORY_IDS`` → 1..80), 81 in all.

Rendering rule (documented choice):

1. non-crowd instances are painted in order of decreasing pixel area (ties: annotation id), so a
   smaller object lying on a larger one stays visible;
2. crowd regions (``iscrowd=1``) become 255 (void) where no non-crowd instance was painted.

An image is listed only if its mask holds at least one foreground class after rendering (images
without annotations, with crowd regions only, or whose objects are all hidden, are left out; the
counts are in ``summary.json``). Polygons with fewer than 3 points are ignored.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from wsfcn.data.check import Problem
from wsfcn.data.classes import COCO_CATEGORY_IDS, IGNORE_INDEX
from wsfcn.data.index import DatasetIndex
from wsfcn.data.io import labels_from_mask, map_files, write_mask

CATEGORY_TO_CLASS = {cat: index + 1 for index, cat in enumerate(COCO_CATEGORY_IDS)}


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO polygon list, uncompressed RLE or compressed RLE → (H, W) bool mask."""
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if len(p) >= 6]
        if not polygons:
            return np.zeros((height, width), dtype=bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        counts = segmentation["counts"]
        rle = {
            "size": segmentation["size"],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
        }
    with warnings.catch_warnings():  # pycocotools' NumPy-2 copy-keyword DeprecationWarning
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = mask_utils.decode(rle)
    if decoded.shape[:2] != (height, width):
        raise ValueError(f"segmentation is {decoded.shape[1]}x{decoded.shape[0]}, image {width}x{height}")
    return decoded.astype(bool)


def render_mask(annotations: list[dict[str, Any]], height: int, width: int) -> np.ndarray:
    """Class-index mask of one image by the module's rule.

    Returns:
        (H, W) uint8: 0 background, 1..80 classes, 255 crowd.
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    objects, crowd = [], np.zeros((height, width), dtype=bool)
    for ann in annotations:
        region = decode_segmentation(ann["segmentation"], height, width)
        if ann.get("iscrowd", 0):
            crowd |= region
        else:
            objects.append(
                (-int(region.sum()), int(ann.get("id", 0)), CATEGORY_TO_CLASS[ann["category_id"]], region)
            )
    painted = np.zeros((height, width), dtype=bool)
    for _area, _id, cls, region in sorted(objects, key=lambda o: o[:2]):
        mask[region] = cls
        painted |= region
    mask[crowd & ~painted] = IGNORE_INDEX
    return mask


def _render_task(task: tuple[str, list[dict[str, Any]], int, int]) -> list[int] | str:
    """Render and save one mask; its labels, or an error message."""
    out_path, annotations, height, width = task
    try:
        mask = render_mask(annotations, height, width)
    except (ValueError, KeyError, TypeError) as err:
        return f"cannot render ({type(err).__name__}: {err})"
    labels = labels_from_mask(mask)
    if labels:
        write_mask(out_path, mask)
    return labels


def prepare_split(
    images_dir: Path, annotation_file: Path, masks_dir: Path, *, workers: int = 1, progress: bool = False
) -> tuple[dict[str, Path], dict[str, list[int]], list[Problem], int]:
    """Render the masks of one split.

    Returns:
        images {id: path} and labels {id: [classes]} of the listed ids, problems, and the number of
        images left out for having no foreground class.
    """
    try:
        data = json.loads(annotation_file.read_text())
        entries, annotations = data["images"], data["annotations"]
    except (OSError, ValueError, KeyError) as err:
        raise FileNotFoundError(f"{annotation_file}: not a readable COCO instances file ({err})") from None
    by_image: dict[int, list[dict[str, Any]]] = {}
    problems = []
    for ann in annotations:
        if ann.get("category_id") not in CATEGORY_TO_CLASS:
            problems.append(
                Problem(
                    str(annotation_file),
                    f"annotation {ann.get('id')}: unknown category_id {ann.get('category_id')!r}",
                )
            )
            continue
        by_image.setdefault(ann["image_id"], []).append(ann)
    tasks, keyed = [], []
    for entry in sorted(entries, key=lambda e: e["id"]):
        key = f"{int(entry['id']):012d}"
        if not any(not a.get("iscrowd", 0) for a in by_image.get(entry["id"], [])):
            continue  # no labelled object: left out without rendering
        keyed.append((key, images_dir / entry["file_name"]))
        tasks.append(
            (str(masks_dir / f"{key}.png"), by_image[entry["id"]], int(entry["height"]), int(entry["width"]))
        )
    images, labels = {}, {}
    results = map_files(
        _render_task, tasks, workers=workers, desc=f"masks {images_dir.name}", progress=progress
    )
    for (key, image), result in zip(keyed, results, strict=True):
        if isinstance(result, str):
            problems.append(Problem(str(annotation_file), f"image {key}: {result}"))
        elif result:
            images[key], labels[key] = image, result
    return images, labels, problems, len(entries) - len(images)


def prepare_coco(
    train_root: Path,
    val_root: Path,
    annotations_root: Path,
    out: Path,
    *,
    workers: int = 1,
    progress: bool = False,
) -> DatasetIndex:
    """Index COCO 2014: ``train``/``val`` lists of images with at least one labelled object.

    Args:
        train_root, val_root: folders that contain ``train2014/`` and ``val2014/``.
        annotations_root: folder that contains ``annotations/instances_{train,val}2014.json``.
    """
    masks_dir = out / "masks"
    masks_dir.mkdir(parents=True, exist_ok=True)
    images, labels, problems, splits, left_out = {}, {}, [], {}, {}
    for split, root in (("train", train_root), ("val", val_root)):
        annotation_file = Path(annotations_root) / "annotations" / f"instances_{split}2014.json"
        found, found_labels, found_problems, dropped = prepare_split(
            Path(root) / f"{split}2014", annotation_file, masks_dir, workers=workers, progress=progress
        )
        images.update(found)
        labels.update(found_labels)
        problems += found_problems
        splits[split] = sorted(found)
        left_out[split] = dropped
    masks: dict[str, Path | None] = {key: masks_dir / f"{key}.png" for key in images}
    return DatasetIndex(
        name="coco",
        images=images,
        masks=masks,
        splits=splits,
        labels=labels,
        notes={"left_out_without_labels": left_out},
        problems=problems,
    )
