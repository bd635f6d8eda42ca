"""Class names, the void label and the PASCAL VOC colour map (method §8.1).

``num_classes`` always counts the background: VOC 21, COCO 81 (background + the 80 categories in
the standard COCO order), synthetic 9 (background + the 8 shape classes of ``wsfcn.data.synthetic``).
"""

from __future__ import annotations

from pathlib import Path

from wsfcn.errors import CheckpointError

IGNORE_INDEX = 255

CLASS_NAMES: dict[str, list[str]] = {
    "voc": [
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
        "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
        "train", "tvmonitor",
    ],
    "coco": [
        "background", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
        "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
        "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
        "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
        "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
        "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
        "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
        "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
        "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
        "teddy bear", "hair drier", "toothbrush",
    ],
    "synthetic": [
        "background", "disc", "triangle", "square", "cross", "hexagon", "diamond", "semicircle", "capsule",
    ],
}  # fmt: skip

# COCO instance-annotation category ids of the 80 classes, in the order of CLASS_NAMES["coco"][1:].
COCO_CATEGORY_IDS: list[int] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57,
    58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87,
    88, 89, 90,
]  # fmt: skip


def num_classes(name: str) -> int:
    """Number of classes of dataset ``name``, background included (voc 21, coco 81, synthetic 9)."""
    if name not in CLASS_NAMES:
        raise KeyError(f"unknown dataset {name!r}; choose from {sorted(CLASS_NAMES)}")
    return len(CLASS_NAMES[name])


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map: 256 RGB triples (768 ints) for ``PIL.Image.putpalette``.

    Entry ``i`` spreads the bits of ``i`` over the channels, most significant bit first: bit 0 of
    each 3-bit group goes to red, bit 1 to green, bit 2 to blue (so 1 is (128, 0, 0), 255 is
    (224, 224, 192)).
    """
    palette = []
    for index in range(256):
        r = g = b = 0
        code = index
        for shift in range(7, -1, -1):
            r |= (code & 1) << shift
            g |= ((code >> 1) & 1) << shift
            b |= ((code >> 2) & 1) << shift
            code >>= 3
        palette += [r, g, b]
    return palette


def class_names(name: str, stored: list[str] | None = None) -> list[str]:
    """The classes a model of dataset ``name`` segments: ``stored`` (a checkpoint's own list) when given,
    else the catalogue's; [] for a ``folder`` dataset that stored none."""
    if stored:
        return [str(c) for c in stored]
    return list(CLASS_NAMES.get(name, []))


def check_classes(
    checkpoint: str | Path, trained_on: str, data_name: str, *, have: list[str], want: list[str]
) -> None:
    """Refuse (naming both) a checkpoint whose classes ``have`` differ from the dataset's ``want``."""
    by_name = "folder" in (trained_on, data_name)  # your own classes: the same names in the same order
    if len(have) != len(want) or (by_name and list(have) != list(want)):
        shown = ", ".join(have[1:]) if trained_on == "folder" else trained_on
        raise CheckpointError(
            f"{checkpoint} segments the {len(have)} classes of {shown}, but data.name={data_name} has "
            f"{len(want)}{': ' + ', '.join(want[1:]) if data_name == 'folder' else ''}: run with the data "
            f"it was trained on (--set data.name={trained_on})"
        )
