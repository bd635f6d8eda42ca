"""Test fixtures: tiny data trees in the official VOC 2012, SBD and COCO 2014 layouts.

Every image is a few dozen pixels. VOC quirks are reproduced: palette PNG masks with a 255 band
around each object, ids like ``2007_000032``, one grayscale and one CMYK JPEG. Each function
returns what a correct preparation must find, so tests compare against hand-built truth.
"""

from __future__ import annotations

import json
import warnings
import zlib
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from pycocotools import mask as mask_utils

from wsfcn.data.classes import voc_palette

SIZE = (24, 32)  # (H, W) of every fixture image


def classes_of(item: str, num_fg: int = 20) -> list[int]:
    """The foreground classes drawn into the mask of ``item`` (one or two, from a hash of the id)."""
    code = zlib.crc32(item.encode())
    first = code % num_fg + 1
    second = (code // num_fg) % num_fg + 1
    return sorted({first, second}) if code % 3 == 0 else [first]


def make_mask(
    item: str, size: tuple[int, int] = SIZE, *, border: bool = True, num_fg: int = 20
) -> np.ndarray:
    """(H, W) uint8: a rectangle per class of ``classes_of(item)``, with a 1-px 255 band (VOC style)."""
    height, width = size
    mask = np.zeros(size, dtype=np.uint8)
    for k, cls in enumerate(classes_of(item, num_fg)):
        top, left = 3 + 8 * k, 3 + 12 * k
        if border:
            mask[top - 1 : top + 9, left - 1 : left + 11] = 255
        mask[top : top + 8, left : left + 10] = cls
    assert mask.shape == (height, width)
    return mask


def make_image(item: str, size: tuple[int, int] = SIZE) -> np.ndarray:
    """(H, W, 3) uint8 smooth colours seeded by the id."""
    rng = np.random.default_rng(zlib.crc32(item.encode()))
    base = rng.integers(0, 256, size=3)
    ramp = np.linspace(0, 60, size[1])[None, :, None]
    return np.clip(base[None, None, :] + ramp, 0, 255).astype(np.uint8).repeat(size[0], axis=0)


def save_palette_png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(mask)
    image.putpalette(voc_palette())
    image.save(path)


def save_jpeg(path: Path, rgb: np.ndarray, mode: str = "RGB") -> None:
    """Save as JPEG in ``mode`` (RGB, L for grayscale, CMYK)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).convert(mode).save(path, quality=95)


def write_voc_tree(
    root: Path, *, train: list[str], val: list[str], test: list[str] = (), size: tuple[int, int] = SIZE
) -> dict[str, list[int]]:
    """``root/VOCdevkit/VOC2012`` with images, palette masks (train+val) and segmentation split files.

    The first training image is saved as grayscale JPEG and the second as CMYK.

    Returns:
        {id: expected foreground labels} for every id with a mask.
    """
    voc = root / "VOCdevkit" / "VOC2012"
    sets = voc / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True, exist_ok=True)
    labels = {}
    for n, item in enumerate(list(train) + list(val) + list(test)):
        mode = {0: "L", 1: "CMYK"}.get(n, "RGB")
        save_jpeg(voc / "JPEGImages" / f"{item}.jpg", make_image(item, size), mode)
        if item not in test:
            save_palette_png(voc / "SegmentationClass" / f"{item}.png", make_mask(item, size))
            labels[item] = classes_of(item)
    for name, ids in (("train", train), ("val", val), ("trainval", list(train) + list(val)), ("test", test)):
        if ids:
            (sets / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    return labels


def write_sbd_tree(
    root: Path, *, train: list[str], val: list[str], size: tuple[int, int] = SIZE
) -> dict[str, list[int]]:
    """``root/benchmark_RELEASE/dataset`` with img/*.jpg, cls/*.mat (struct GTcls.Segmentation), lists.

    SBD masks have no 255 band. Returns {id: expected foreground labels}.
    """
    dataset = root / "benchmark_RELEASE" / "dataset"
    (dataset / "cls").mkdir(parents=True, exist_ok=True)
    labels = {}
    for item in dict.fromkeys(list(train) + list(val)):
        save_jpeg(dataset / "img" / f"{item}.jpg", make_image(item, size))
        write_sbd_mat(dataset / "cls" / f"{item}.mat", make_mask(item, size, border=False))
        labels[item] = classes_of(item)
    (dataset / "train.txt").write_text("".join(f"{i}\n" for i in train))
    (dataset / "val.txt").write_text("".join(f"{i}\n" for i in val))
    return labels


def write_sbd_mat(path: Path, segmentation: np.ndarray) -> None:
    """An SBD-style ``.mat``: struct GTcls with fields Boundaries (unused here) and Segmentation."""
    gtcls = {
        "Segmentation": segmentation.astype(np.uint8),
        "Boundaries": np.zeros((1, 1)),
        "CategoriesPresent": 0,
    }
    scipy.io.savemat(str(path), {"GTcls": gtcls})


def coco_file_name(split: str, image_id: int) -> str:
    return f"COCO_{split}2014_{image_id:012d}.jpg"


def write_coco_tree(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """``root/{train2014,val2014,annotations}`` with a tiny instances JSON per split.

    train: image 1 has a large person polygon (cat 1 → class 1), a smaller dog as uncompressed RLE
    (cat 18 → class 17) on top of it, and a crowd car region (cat 3 → class 3) overlapping both;
    image 2 has only a crowd region; image 3 has no annotation. val: image 7 holds a toothbrush
    (cat 90 → class 80) as compressed RLE.

    Returns:
        {split: {12-digit id: expected rendered mask}} for the images that must be listed.
    """
    height, width = SIZE
    for split in ("train", "val"):
        (root / f"{split}2014").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)

    person = [[2.0, 2.0, 22.0, 2.0, 22.0, 18.0, 2.0, 18.0]]  # polygon: pixels x 2..21, y 2..17 (approx.)
    dog = np.zeros(SIZE, dtype=np.uint8, order="F")
    dog[6:12, 8:14] = 1
    crowd = np.zeros(SIZE, dtype=np.uint8, order="F")
    crowd[10:22, 16:30] = 1
    toothbrush = np.zeros(SIZE, dtype=np.uint8, order="F")
    toothbrush[4:9, 20:28] = 1

    def uncompressed(binary: np.ndarray) -> dict:
        flat = binary.flatten(order="F")
        changes = np.flatnonzero(np.diff(flat)) + 1
        runs = np.diff(np.concatenate([[0], changes, [flat.size]]))
        counts = ([0] if flat[0] else []) + runs.tolist()
        return {"size": [height, width], "counts": counts}

    def compressed(binary: np.ndarray) -> dict:
        rle = mask_utils.encode(np.asfortranarray(binary))
        return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}

    with warnings.catch_warnings():  # pycocotools' NumPy-2 DeprecationWarning
        warnings.simplefilter("ignore", DeprecationWarning)
        person_rle = mask_utils.merge(mask_utils.frPyObjects(person, height, width))
        person_mask = mask_utils.decode(person_rle).astype(bool)
    expected_train = np.zeros(SIZE, dtype=np.uint8)
    expected_train[person_mask] = 1
    expected_train[dog.astype(bool)] = 17
    expected_train[crowd.astype(bool) & ~person_mask & ~dog.astype(bool)] = 255
    expected_val = np.zeros(SIZE, dtype=np.uint8)
    expected_val[toothbrush.astype(bool)] = 80

    train = {
        "images": [
            {"id": i, "file_name": coco_file_name("train", i), "height": height, "width": width}
            for i in (1, 2, 3)
        ],
        "annotations": [
            {
                "id": 11,
                "image_id": 1,
                "category_id": 18,
                "iscrowd": 0,
                "segmentation": uncompressed(dog),
                "area": 36.0,
            },
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": person, "area": 320.0},
            {
                "id": 12,
                "image_id": 1,
                "category_id": 3,
                "iscrowd": 1,
                "segmentation": uncompressed(crowd),
                "area": 168.0,
            },
            {
                "id": 20,
                "image_id": 2,
                "category_id": 3,
                "iscrowd": 1,
                "segmentation": uncompressed(crowd),
                "area": 168.0,
            },
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}],
    }
    val = {
        "images": [{"id": 7, "file_name": coco_file_name("val", 7), "height": height, "width": width}],
        "annotations": [
            {
                "id": 70,
                "image_id": 7,
                "category_id": 90,
                "iscrowd": 0,
                "segmentation": compressed(toothbrush),
                "area": 40.0,
            }
        ],
        "categories": [{"id": 90, "name": "toothbrush"}],
    }
    for split, data in (("train", train), ("val", val)):
        (root / "annotations" / f"instances_{split}2014.json").write_text(json.dumps(data))
        for entry in data["images"]:
            save_jpeg(root / f"{split}2014" / entry["file_name"], make_image(entry["file_name"]))
    return {"train": {f"{1:012d}": expected_train}, "val": {f"{7:012d}": expected_val}}
