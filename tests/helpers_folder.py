"""Test helper: your-own-images input (a folder of JPEGs in subfolders, a tags CSV, optional masks) drawn
by the synthetic benchmark's generator, as a user would bring them (``data.name: folder``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wsfcn.data.classes import CLASS_NAMES
from wsfcn.data.io import labels_from_mask, write_mask
from wsfcn.data.synthetic import render_sample

SHAPES = CLASS_NAMES["synthetic"]


def make_folder_dataset(root: Path, *, count: int = 24, size: int = 32, masks: bool = False) -> dict:
    """Write ``root/images/{even,odd}/img_NNN.jpg``, ``root/tags.csv`` (image paths without extension) and,
    with ``masks``, ``root/masks/...png`` in the folder dataset's class order (background + sorted tags).

    Returns:
        ``{"images", "tags", "masks", "classes", "rows"}``: paths, the class list and the CSV rows
        ``(relative image path, tags)`` in file order (line ``i + 2`` of the CSV).
    """
    rng = np.random.default_rng(0)
    drawn = []
    for index in range(count):
        image, mask = render_sample(rng, size, size, design=2)  # the fixture's images stay as they were
        relative = f"{'even' if index % 2 == 0 else 'odd'}/img_{index:03d}"
        drawn.append((relative, image, mask, [SHAPES[c] for c in labels_from_mask(mask)]))
    classes = ["background", *sorted({t for *_, tags in drawn for t in tags})]
    remap = np.full(256, 255, dtype=np.uint8)
    remap[0] = 0
    for c, name in enumerate(SHAPES[1:], 1):
        remap[c] = classes.index(name) if name in classes else 255
    for relative, image, mask, _tags in drawn:
        path = root / "images" / f"{relative}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path, quality=95)
        if masks:
            (root / "masks" / relative).parent.mkdir(parents=True, exist_ok=True)
            write_mask(root / "masks" / f"{relative}.png", remap[mask])
    rows = [(relative, tags) for relative, _image, _mask, tags in drawn]
    write_tags_csv(root / "tags.csv", rows)
    return {
        "images": root / "images",
        "tags": root / "tags.csv",
        "masks": root / "masks" if masks else None,
        "classes": classes,
        "rows": rows,
    }


def write_tags_csv(path: Path, rows: list[tuple[str, list[str]]]) -> None:
    """``image,tags`` then one ``path,tag;tag`` line per row."""
    path.write_text("image,tags\n" + "".join(f"{image},{';'.join(tags)}\n" for image, tags in rows))


def folder_sets(dataset: dict) -> dict[str, str]:
    """The ``--set`` overrides that point ``data.name: folder`` at ``dataset``."""
    sets = {"data.name": "folder", "data.folder.images": str(dataset["images"])}
    sets["data.folder.tags"] = str(dataset["tags"])
    if dataset["masks"] is not None:
        sets["data.folder.masks"] = str(dataset["masks"])
    return sets
