"""Data checks run before training (``wsfcn check-data`` and the prepare stage; method §8.1).

Reads a prepared folder (``index.json``, ``labels.json``, ``lists/<split>.txt``) and reports every
problem at once, each with the file and the reason: missing, empty, truncated or unreadable files,
mask values outside ``0..C-1`` other than 255, image/mask size mismatches, list entries without a
file, empty lists, duplicate ids, training images without a foreground class, and image-level
labels that disagree with their mask. A dataset whose labels are its images' own tags (``index.json``
``"labels_from": "tags"``, ``data.name: folder``) needs no training masks, and its masks are not
compared with the tags (a mask may leave a tagged object out). Unusual but valid encodings (grayscale,
CMYK, RGBA, palette, 16-bit) are converted by :mod:`wsfcn.data.io`, not reported.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsfcn.data.ids import id_problem, read_json, read_text
from wsfcn.data.io import DataFileError, image_size, labels_from_mask, map_files, read_mask, read_rgb


@dataclass(frozen=True)
class Problem:
    """One problem: the file it concerns and why it is one."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def resolve(folder: Path, path: str | None) -> Path | None:
    """An ``index.json`` path (relative to ``folder``, or absolute) as a Path."""
    return None if path is None else folder / path


def read_list(path: Path) -> tuple[list[str], list[Problem]]:
    """Ids of a list file (blank lines skipped) and the problems of the list itself."""
    if not path.is_file():
        return [], [Problem(str(path), "list file missing")]
    try:
        ids = [line.strip() for line in read_text(path, "list file").splitlines()]
    except DataFileError as err:
        return [], [Problem(err.path, err.reason)]
    lines = defaultdict(list)
    bad: list[Problem] = []
    for number, item in enumerate(ids, 1):
        problem = id_problem(item.split()[0]) if item else None
        if problem:
            bad.append(Problem(f"{path}:{number}", f"{problem}; ids must be plain file names"))
        elif item:
            lines[item].append(number)
    problems = bad + [
        Problem(str(path), f"duplicate id {item!r} on lines {', '.join(map(str, at))}")
        for item, at in lines.items()
        if len(at) > 1
    ]
    if not lines and not bad:
        problems.append(Problem(str(path), "empty list (no ids)"))
    return list(lines), problems


def check_files(task: tuple[str, str | None, int, list[int] | None, bool]) -> list[Problem]:
    """Decode one image (and its mask) and compare; ``task = (image, mask, C, labels, decode)``."""
    image_path, mask_path, num_classes, labels, decode = task
    problems = []
    size = None
    try:
        size = read_rgb(image_path).shape[:2] if decode else image_size(image_path)
    except DataFileError as err:
        problems.append(Problem(err.path, err.reason))
    if mask_path is None:
        return problems
    try:
        mask = read_mask(mask_path)
    except DataFileError as err:
        return problems + [Problem(err.path, err.reason)]
    values = np.unique(mask)
    bad = [int(v) for v in values if v >= num_classes and v != 255]
    if bad:
        problems.append(
            Problem(mask_path, f"mask values {bad} outside the class range 0..{num_classes - 1} (and 255)")
        )
    if size is not None and tuple(size) != mask.shape:
        problems.append(
            Problem(
                mask_path,
                f"mask is {mask.shape[1]}x{mask.shape[0]} but image {image_path} is {size[1]}x{size[0]}",
            )
        )
    found = labels_from_mask(mask)
    if labels is not None and not bad and found != labels:
        problems.append(
            Problem(mask_path, f"labels.json says {labels} but the mask holds {found}; re-run prepare")
        )
    return problems


def check_dataset(
    folder: str | Path,
    splits: list[str] | None = None,
    train_splits: list[str] | tuple[str, ...] = ("train_aug",),
    *,
    decode: bool = True,
    workers: int = 1,
    progress: bool = False,
) -> list[Problem]:
    """Check a prepared dataset folder and return every problem found (empty list: all good).

    Args:
        folder: ``<data.root>/<data.name>`` holding index.json, labels.json and lists/.
        splits: lists to check; None: every ``lists/*.txt``.
        train_splits: lists used for training; their images must have a mask with a foreground class.
            Names not among ``splits`` are ignored.
        decode: decode every image (finds truncation); False reads image headers only.
        workers: processes for decoding.
    """
    folder = Path(folder)
    index_path, labels_path = folder / "index.json", folder / "labels.json"
    try:
        index = read_json(index_path, "index")
        images, masks, num_classes = index["images"], index["masks"], int(index["num_classes"])
        from_tags = index.get("labels_from") == "tags"
    except DataFileError as err:
        return [Problem(err.path, f"missing or invalid ({err.reason}); run the prepare stage")]
    except (ValueError, KeyError, TypeError) as err:
        return [Problem(str(index_path), f"missing or invalid ({err}); run the prepare stage")]
    try:
        labels = read_json(labels_path, "labels file")
    except DataFileError as err:
        return [Problem(err.path, f"missing or invalid ({err.reason}); run the prepare stage")]
    bad_ids = [(i, id_problem(i)) for i in images if id_problem(i)]
    if bad_ids:
        return [Problem(str(index_path), f"{why}; ids must be plain file names") for _, why in bad_ids]
    if splits is None:
        splits = sorted(p.stem for p in (folder / "lists").glob("*.txt"))
        if not splits:
            return [Problem(str(folder / "lists"), "no list files")]
    problems: list[Problem] = []
    wanted: dict[str, None] = {}
    for split in splits:
        list_path = folder / "lists" / f"{split}.txt"
        ids, list_problems = read_list(list_path)
        problems += list_problems
        for item in ids:
            if item not in images:
                problems.append(Problem(str(list_path), f"id {item!r} has no image in index.json"))
                continue
            wanted[item] = None
            if split in train_splits and from_tags and not labels.get(item):
                problems.append(Problem(str(folder / "labels.json"), f"training image {item!r} has no tag"))
            elif split in train_splits and not from_tags:
                problems += _train_problems(item, masks.get(item), labels.get(item), split, folder, list_path)
    tasks = [
        (
            str(resolve(folder, images[i])),
            _str(resolve(folder, masks.get(i))),
            num_classes,
            None if from_tags else labels.get(i),
            decode,
        )
        for i in wanted
    ]
    for found in map_files(check_files, tasks, workers=workers, desc="check", progress=progress):
        problems += found
    return problems


def _train_problems(
    item: str, mask: str | None, labels: list[int] | None, split: str, folder: Path, list_path: Path
) -> list[Problem]:
    if mask is None:
        return [Problem(str(list_path), f"training image {item!r} has no mask to derive labels from")]
    if labels is None:
        return [Problem(str(resolve(folder, mask)), f"training image {item!r} has no entry in labels.json")]
    if not labels:
        return [
            Problem(str(resolve(folder, mask)), f"no foreground class in a training image (list {split})")
        ]
    return []


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def prepared_classes(folder: str | Path) -> list[str]:
    """Class names of a prepared dataset, background first (``index.json`` ``classes``, else the catalogue's
    for its ``dataset``); [] when the index cannot be read."""
    from wsfcn.data.classes import CLASS_NAMES

    try:
        index = read_json(Path(folder) / "index.json", "index")
        return list(index.get("classes") or CLASS_NAMES.get(index.get("dataset", ""), []))
    except (DataFileError, AttributeError):
        return []


def format_problems(problems: list[Problem], limit: int | None = None) -> str:
    """One ``file: reason`` line per problem (the first ``limit``), then a count of the rest."""
    shown = problems if limit is None else problems[:limit]
    text = "\n".join(str(p) for p in shown)
    if len(problems) > len(shown):
        text += f"\n... and {len(problems) - len(shown)} more"
    return text


# --------------------------------------------------------------------------------------------
# the check before training, cached by file fingerprints
CHECK_STAMP = ".wsfcn-check.json"


def data_fingerprint(folder: str | Path, splits: list[str], train_splits: list[str]) -> str:
    """sha256 over (name, size, mtime) of index.json, labels.json, the lists and every image and mask they
    list; "" when the index cannot be read (then nothing is cached)."""
    import hashlib

    folder = Path(folder)
    try:
        index = read_json(folder / "index.json", "index")
        images, masks = index["images"], index["masks"]
        ids = [i for s in splits for i in read_text(folder / "lists" / f"{s}.txt").split()]
    except (DataFileError, KeyError, TypeError):
        return ""
    digest = hashlib.sha256(json.dumps([sorted(splits), sorted(train_splits)]).encode())
    files = [folder / "index.json", folder / "labels.json", *(folder / "lists" / f"{s}.txt" for s in splits)]
    files += [resolve(folder, p) for i in ids for p in (images.get(i), masks.get(i)) if p]
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            return ""
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def check_once(
    folder: str | Path,
    splits: list[str],
    train_splits: list[str],
    *,
    workers: int = 1,
    progress: bool = False,
) -> list[Problem]:
    """:func:`check_dataset` (images decoded), skipped when ``<folder>/.wsfcn-check.json`` records a clean
    check of files with the same fingerprints (size + mtime); a clean result is recorded there."""
    folder = Path(folder)
    stamp = folder / CHECK_STAMP
    want = data_fingerprint(folder, splits, train_splits)
    if want and stamp.is_file():
        try:
            if read_json(stamp).get("fingerprint") == want:
                return []
        except (DataFileError, AttributeError):
            pass
    problems = check_dataset(folder, splits, train_splits, workers=workers, progress=progress)
    if not problems and want:
        record_clean(folder, splits, train_splits, want)
    return problems


def record_clean(
    folder: str | Path, splits: list[str], train_splits: list[str], fingerprint: str = ""
) -> None:
    """Record in ``<folder>/.wsfcn-check.json`` that ``splits`` passed :func:`check_dataset` as they are."""
    fingerprint = fingerprint or data_fingerprint(folder, splits, train_splits)
    if fingerprint:
        record = {"fingerprint": fingerprint, "splits": splits, "train_splits": train_splits}
        (Path(folder) / CHECK_STAMP).write_text(json.dumps(record))
