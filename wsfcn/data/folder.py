"""Your own images and tags (``data.name: folder``) → a prepared dataset index (docs/own-images.md).

* images: ``<data.folder.images>/**/*.{jpg,jpeg,png}``; an image's id is its path relative to that folder
  without the extension, ``/`` written as ``__`` (``cats/01.jpg`` → ``cats__01``), and must be a plain
  file name (:func:`wsfcn.data.ids.id_problem`);
* tags: :mod:`wsfcn.data.tags` (a row names the image with or without its extension);
* masks (optional, some or all images): ``<data.folder.masks>/<same relative path>.png``, class indices in
  the order of ``classes`` (255 = ignore);
* classes: ``background`` followed by the sorted set of tags;
* splits ``train`` / ``val``: ``val_list`` (ids or image paths, one a line) or a ``val_fraction`` of the
  images drawn with ``seed``.

Every row is checked (image missing or unreadable, no tag, empty or unknown tag, duplicate id, mask
unreadable, of another size or with values outside the classes) and each problem names the row
(``tags.csv:7``); the prepare stage lists them all, then fails.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from wsfcn.data.check import Problem
from wsfcn.data.ids import id_problem, read_text
from wsfcn.data.index import DatasetIndex
from wsfcn.data.io import DataFileError, map_files, read_mask, read_rgb
from wsfcn.data.tags import TagRow, read_tag_rows, tag_problems

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SUBFOLDER_SEPARATOR = "__"


@dataclass(frozen=True)
class _Entry:
    """A usable row: its id, image file, mask file (or None) and where it was written."""

    id: str
    image: Path
    mask: Path | None
    where: str
    tags: tuple[str, ...]


def image_id(relative: str | PurePosixPath) -> str:
    """``cats/01`` (a path relative to the images folder, without extension) → ``cats__01``."""
    return str(relative).replace("/", SUBFOLDER_SEPARATOR)


def scan_images(folder: Path) -> dict[str, list[Path]]:
    """``{id: files}`` of every JPEG/PNG below ``folder`` (two files for one id make it ambiguous)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            relative = PurePosixPath(path.relative_to(folder).as_posix())
            found.setdefault(image_id(relative.with_suffix("")), []).append(path)
    return found


def _locate(row: TagRow, images: Path, found: dict[str, list[Path]]) -> tuple[str, Path | None, str]:
    """``(id, image file, problem)`` of a row; the file is None when there is a problem."""
    relative = PurePosixPath(row.image.replace("\\", "/"))
    if not row.image or relative.is_absolute() or ".." in relative.parts:
        return "", None, f"image {row.image!r} is not a path inside the images folder {images}"
    if relative.suffix.lower() in IMAGE_SUFFIXES:
        key = image_id(relative.with_suffix(""))
        file = images / relative
        return key, (file if file.is_file() else None), "" if file.is_file() else f"image {file} not found"
    key = image_id(relative)
    files = found.get(key, [])
    if len(files) > 1:
        return (
            key,
            None,
            f"image {row.image!r} is ambiguous ({', '.join(f.name for f in files)}): add the extension",
        )
    if not files:
        return key, None, f"image {row.image!r} not found in {images} (with a .jpg, .jpeg or .png extension)"
    return key, files[0], ""


def _check_files(task: tuple[str, str, str | None, int]) -> list[str]:
    """Decode one image (and its mask); the reasons it cannot be used. ``task = (where, image, mask, C)``."""
    _where, image_path, mask_path, num_classes = task
    try:
        size = read_rgb(image_path).shape[:2]
    except DataFileError as err:
        return [f"image {err.path}: {err.reason}"]
    if mask_path is None:
        return []
    try:
        mask = read_mask(mask_path)
    except DataFileError as err:
        return [f"mask {err.path}: {err.reason}"]
    reasons = []
    if mask.shape != tuple(size):
        reasons.append(
            f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but the image is {size[1]}x{size[0]}"
        )
    bad = [int(v) for v in np.unique(mask) if num_classes <= v < 255]
    if bad:
        reasons.append(
            f"mask {mask_path} holds values {bad} outside the classes 0..{num_classes - 1} (and 255)"
        )
    return reasons


def read_entries(
    tags: Path, images: Path, masks: Path | None
) -> tuple[list[_Entry], list[Problem], dict[str, list[Path]]]:
    """The rows of ``tags`` that name one image by a free id, the problems of the others, and the scan."""
    found = scan_images(images)
    rows, problems = read_tag_rows(tags)
    entries: list[_Entry] = []
    first: dict[str, str] = {}
    for row in rows:
        reasons = tag_problems(row)
        key, image, missing = _locate(row, images, found)
        reasons += [missing] if missing else []
        why = id_problem(key) if key else None
        if why:
            reasons.append(
                f"{why}; ids (image paths without extension, '/' as '__') must be plain file names"
            )
        if key and key in first:
            reasons.append(f"duplicate id {key!r}: the image of {first[key]} again")
        first.setdefault(key, row.where)
        problems += [Problem(row.where, r) for r in reasons]
        if not reasons and image is not None:
            relative = PurePosixPath(image.relative_to(images).as_posix()).with_suffix(".png")
            mask = masks / relative if masks is not None and (masks / relative).is_file() else None
            entries.append(_Entry(key, image, mask, row.where, row.tags))
    return entries, problems, found


def _val_ids(
    entries: list[_Entry], val_list: Path | None, val_fraction: float, seed: int
) -> tuple[set[str], list[Problem]]:
    ids = [e.id for e in entries]
    if val_list is not None:
        known, chosen, problems = set(ids), set(), []
        for number, line in enumerate(read_text(val_list, "val list").splitlines(), 1):
            if line.strip():
                item = line.split()[0]
                key = image_id(PurePosixPath(item).with_suffix("") if PurePosixPath(item).suffix.lower()
                               in IMAGE_SUFFIXES else item)  # fmt: skip
                if key in known:
                    chosen.add(key)
                else:
                    problems.append(
                        Problem(f"{val_list}:{number}", f"{item!r} is not among the tagged images")
                    )
        return chosen, problems
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    count = max(1, round(val_fraction * len(ids))) if val_fraction > 0 and len(ids) > 1 else 0
    return set(shuffled[:count]), []


def prepare_folder(
    images: str | Path,
    tags: str | Path,
    masks: str | Path = "",
    *,
    val_fraction: float = 0.1,
    val_list: str | Path = "",
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
) -> DatasetIndex:
    """Index your own images and tags; every problem found is in ``DatasetIndex.problems``."""
    images, tags = Path(images), Path(tags)
    if not images.is_dir():
        raise DataFileError(images, "images folder (data.folder.images) does not exist")
    mask_dir = Path(masks) if str(masks) else None
    if mask_dir is not None and not mask_dir.is_dir():
        raise DataFileError(mask_dir, "masks folder (data.folder.masks) does not exist")
    entries, problems, found = read_entries(tags, images, mask_dir)
    classes = ["background", *sorted({t for e in entries for t in e.tags})]
    tasks = [(e.where, str(e.image), None if e.mask is None else str(e.mask), len(classes)) for e in entries]
    checked = map_files(_check_files, tasks, workers=workers, desc="check", progress=progress)
    for entry, reasons in zip(entries, checked, strict=True):
        problems += [Problem(entry.where, r) for r in reasons]
    val, split_problems = _val_ids(entries, Path(val_list) if str(val_list) else None, val_fraction, seed)
    problems += split_problems
    splits = {
        "train": [e.id for e in entries if e.id not in val],
        "val": [e.id for e in entries if e.id in val],
    }
    for split, ids in splits.items():
        if entries and not ids:
            problems.append(
                Problem(str(tags), f"the {split} split is empty (data.folder.val_fraction / val_list)")
            )
    index = {c: i for i, c in enumerate(classes)}
    used = {e.id for e in entries}
    return DatasetIndex(
        name="folder",
        images={e.id: e.image for e in entries},
        masks={e.id: e.mask for e in entries},
        splits=splits,
        labels={e.id: sorted(index[t] for t in set(e.tags)) for e in entries},
        classes=classes,
        labels_from="tags",
        notes={
            "untagged_images": sum(1 for k in found if k not in used),
            "with_masks": sum(e.mask is not None for e in entries),
        },
        problems=problems,
    )
