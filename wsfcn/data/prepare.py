"""Download and prepare stages by dataset name (method §8.1): sources → lists, labels, index, summary.

``download_dataset`` and ``prepare_dataset`` are the two functions that read ``DataParams``. The
prepared folder ``<data.root>/<data.name>/`` holds (the contract the Dataset classes read):

* ``lists/<split>.txt``: one id per line;
* ``labels.json``: ``{id: [foreground class ids, sorted]}`` for every id with a mask;
* ``index.json``: ``{"dataset", "num_classes", "classes": [names], "labels_from": "masks" | "tags",
  "images": {id: path}, "masks": {id: path | null}}``, paths relative to this folder when inside it, else
  absolute (``classes``: background first; for ``folder``, background + the sorted tags);
* ``summary.json``: image counts per split and per class (a DVC metric);
* ``masks/``: masks made by prepare (SBD ``.mat`` → PNG, COCO renderings; empty for synthetic);
* ``problems.txt``: only when the data check failed.

The download stage writes everything under ``<data.downloads>/<data.name>/``: ``archives/``, one folder
per source (``voc/``, ``sbd/``; ``coco_train/``, ...) unless ``data.sources.<name>.path`` names an
extracted folder, ``sources.json`` (the folder of each source), or the generated synthetic set. For
``folder`` it downloads nothing: it checks that ``data.folder.*`` exist and records them in ``sources.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from wsfcn.data.check import Problem, check_dataset, format_problems, record_clean
from wsfcn.data.classes import CLASS_NAMES
from wsfcn.data.download import DownloadError, ensure_source, locate_source
from wsfcn.data.index import DatasetIndex
from wsfcn.data.io import DataFileError, default_workers, labels_from_mask, map_files, read_mask
from wsfcn.errors import DataError
from wsfcn.file_lock import folder_lock

# source name -> the path its folder must contain
SOURCES: dict[str, dict[str, str]] = {
    "voc": {"voc": "VOCdevkit/VOC2012", "sbd": "benchmark_RELEASE/dataset"},
    "coco": {
        "coco_train": "train2014",
        "coco_val": "val2014",
        "coco_annotations": "annotations/instances_train2014.json",
    },
}
SYNTHETIC_STAMP = ".wsfcn-synthetic.json"


def download_dataset(data: Any, *, progress: bool | None = None) -> dict[str, Path]:
    """Fetch/verify/extract the sources of ``data.name`` (or generate the synthetic set).

    Returns:
        {source name: folder}, also written to ``<data.downloads>/<data.name>/sources.json``. Everything
        the stage writes (archives/, one folder per source, or the synthetic set) is in that folder.
    """
    downloads = Path(data.downloads) / data.name
    with folder_lock(downloads):  # runs sharing the folder take turns
        return _download_locked(data, downloads, progress)


def _download_locked(data: Any, downloads: Path, progress: bool | None) -> dict[str, Path]:
    if data.name == "synthetic":
        folders = {"synthetic": ensure_synthetic(downloads, **_synthetic_args(data))}
    elif data.name == "folder":
        folders = locate_sources(data)
    else:
        folders = {}
        for source, marker in SOURCES[data.name].items():
            spec = getattr(data.sources, source)
            folders[source] = ensure_source(
                source,
                url=spec.url,
                md5=spec.md5,
                path=spec.path,
                downloads=downloads,
                marker=marker,
                progress=progress,
            )
    manifest = {k: str(v.resolve()) for k, v in folders.items()}
    downloads.mkdir(parents=True, exist_ok=True)
    (downloads / "sources.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return folders


def _synthetic_args(data: Any) -> dict[str, int]:
    return dataclasses.asdict(data.synthetic)  # generate_synthetic's keyword arguments, by name


def ensure_synthetic(out_dir: Path, **args: int) -> Path:
    """Generate the synthetic benchmark into ``out_dir`` unless a stamp records the same arguments."""
    from wsfcn.data import synthetic, synthetic_draw

    code = hashlib.md5()
    for module in (synthetic, synthetic_draw):
        code.update(Path(module.__file__).read_bytes())
    record = dict(args, generator=code.hexdigest())
    stamp = out_dir / SYNTHETIC_STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == record and (out_dir / "VOCdevkit").is_dir():
        return out_dir
    shutil.rmtree(out_dir / "VOCdevkit", ignore_errors=True)
    stamp.unlink(missing_ok=True)
    synthetic.generate_synthetic(out_dir, **args)
    stamp.write_text(json.dumps(record, indent=2) + "\n")
    return out_dir


def locate_sources(data: Any) -> dict[str, Path]:
    """The source folders of ``data.name`` without any network access (download stage must have run)."""
    downloads = Path(data.downloads) / data.name
    if data.name == "folder":
        given = {"images": data.folder.images, "tags": data.folder.tags, "masks": data.folder.masks}
        given |= {"val_list": data.folder.val_list}
        for key, path in given.items():
            if path and not Path(path).exists():
                raise DownloadError(f"data.folder.{key}={path}: no such file or folder")
        return {key: Path(path) for key, path in given.items() if path}
    if data.name == "synthetic":
        found = {"synthetic": downloads}
        marker = {"synthetic": "VOCdevkit/VOC2012"}
    else:
        marker = SOURCES[data.name]
        found = {s: locate_source(s, path=getattr(data.sources, s).path, downloads=downloads) for s in marker}
    for source, folder in found.items():
        if not (folder / marker[source]).exists():
            raise DownloadError(
                f"{folder / marker[source]} not found; run the download stage first "
                f"(python pipeline/download.py) or set data.sources.{source}.path"
            )
    return found


def prepare_dataset(data: Any, *, progress: bool = False, workers: int = 0) -> Path:
    """Build ``<data.root>/<data.name>/`` from the sources, then check it.

    Raises:
        DataError: listing every problem found by :func:`check_dataset` (also in ``problems.txt``).
    """
    out = Path(data.root) / data.name
    with folder_lock(out):  # runs sharing the folder take turns
        return _prepare_locked(data, out, progress, workers or default_workers())


def _prepare_locked(data: Any, out: Path, progress: bool, workers: int) -> Path:
    folders = locate_sources(data)
    if data.name == "folder":
        from wsfcn.data.folder import prepare_folder

        f = data.folder
        index = prepare_folder(
            f.images, f.tags, f.masks, val_fraction=f.val_fraction, val_list=f.val_list, seed=f.seed,
            workers=workers, progress=progress,
        )  # fmt: skip
        if index.problems:  # every row named; nothing of an earlier preparation is left to train on
            _unprepare(out)
            (out / "problems.txt").write_text(format_problems(index.problems) + "\n")
            raise DataError(
                f"{len(index.problems)} problem(s) in {f.tags}:\n{format_problems(index.problems)}"
            )
    elif data.name == "coco":
        from wsfcn.data.prepare_coco import prepare_coco

        index = prepare_coco(
            folders["coco_train"],
            folders["coco_val"],
            folders["coco_annotations"],
            out,
            progress=progress,
            workers=workers,
        )
    else:
        from wsfcn.data.prepare_voc import prepare_voc

        voc = folders.get("voc", folders.get("synthetic"))
        index = prepare_voc(voc, folders.get("sbd"), out, name=data.name, progress=progress)
    write_prepared(index, out, progress=progress, workers=workers)
    train_splits = [s for s in (data.train_split, "train_aug", "train") if s in index.splits] or [
        data.train_split
    ]
    problems = index.problems + check_dataset(
        out, list(index.splits), train_splits, workers=workers, progress=progress
    )
    for key, split in (("data.train_split", data.train_split), ("data.val_split", data.val_split)):
        if split not in index.splits:
            problems.append(
                Problem(
                    str(out / "lists"), f"{key}={split!r} but {data.name} has lists {sorted(index.splits)}"
                )
            )
    report = out / "problems.txt"
    if problems:
        report.write_text(format_problems(problems) + "\n")
        raise DataError(
            f"{len(problems)} problem(s) in {out} (all listed in {report}):\n{format_problems(problems, 30)}"
        )
    report.unlink(missing_ok=True)
    record_clean(out, [data.train_split, data.val_split], [data.train_split])  # the train stage's check
    return out


def _unprepare(out: Path) -> None:
    """Remove a prepared dataset's lists, labels, index and clean-check record (``out`` is kept)."""
    from wsfcn.data.check import CHECK_STAMP

    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "lists", ignore_errors=True)
    for name in ("labels.json", "index.json", CHECK_STAMP):
        (out / name).unlink(missing_ok=True)


def _mask_labels(path: str) -> list[int] | None:
    try:
        return labels_from_mask(read_mask(path))
    except DataFileError:
        return None  # reported by check_dataset with the reason


def write_prepared(index: DatasetIndex, out: Path, *, progress: bool = False, workers: int = 1) -> None:
    """Write lists/, labels.json, index.json and summary.json of ``index`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)  # always there (empty for synthetic), so DVC can track it
    labels = index.labels
    if labels is None:
        with_mask = [i for i, m in index.masks.items() if m is not None]
        found = map_files(
            _mask_labels,
            [str(index.masks[i]) for i in with_mask],
            workers=workers,
            desc="labels",
            progress=progress,
        )
        labels = {i: lab for i, lab in zip(with_mask, found, strict=True) if lab is not None}
    lists = out / "lists"
    shutil.rmtree(lists, ignore_errors=True)
    lists.mkdir()
    for split, ids in index.splits.items():
        (lists / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    _write_json(out / "labels.json", {i: labels[i] for i in sorted(labels)})
    _write_json(
        out / "index.json",
        {
            "dataset": index.name,
            "num_classes": len(classes_of(index)),
            "classes": classes_of(index),
            "labels_from": index.labels_from,
            "images": {i: _portable(p, out) for i, p in sorted(index.images.items())},
            "masks": {i: None if p is None else _portable(p, out) for i, p in sorted(index.masks.items())},
        },
    )
    _write_json(out / "summary.json", summarize(index, labels))


def classes_of(index: DatasetIndex) -> list[str]:
    """Class names of ``index``, background first: its own, else the catalogue's."""
    return list(index.classes) if index.classes is not None else list(CLASS_NAMES[index.name])


def summarize(index: DatasetIndex, labels: dict[str, list[int]]) -> dict[str, Any]:
    """Counts per split: images, images with labels, and images per foreground class."""
    names = classes_of(index)
    splits = {}
    for split, ids in index.splits.items():
        per_class = dict.fromkeys(names[1:], 0)
        for i in ids:
            for c in labels.get(i, []):
                if 0 < c < len(names):
                    per_class[names[c]] += 1
        splits[split] = {
            "images": len(ids),
            "labelled": sum(i in labels for i in ids),
            "per_class": per_class,
        }
    return {"dataset": index.name, "num_classes": len(names), "splits": splits, **index.notes}


def _portable(path: Path, out: Path) -> str:
    """``path`` relative to ``out`` when inside it, else absolute."""
    path = Path(path).absolute()
    try:
        return path.relative_to(out.absolute()).as_posix()
    except ValueError:
        return str(path.resolve())


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)
