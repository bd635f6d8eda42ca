"""PASCAL VOC 2012 + SBD augmentation lists (method §8.1); also reads the synthetic set's VOC layout.

Official layouts: ``VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation}`` and
``benchmark_RELEASE/dataset/{img,cls,train.txt,val.txt}``. SBD ``cls/<id>.mat`` (struct ``GTcls``,
field ``Segmentation``) is converted to palette PNGs under ``<out>/masks/``.

``train_aug = (SBD train ∪ SBD val ∪ VOC train) − VOC val`` (10,582 ids on the real data). As in the
authors' ``train_augvoc.txt``, an id that SBD annotates takes its image and mask from SBD (10,252 ids)
and the rest from VOC (330); the ``val`` (and ``train`` ids outside SBD) use the VOC masks. An id has one
mask, so the ``train`` ids that SBD also covers use the SBD mask too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from wsfcn.data.check import Problem
from wsfcn.data.ids import read_ids as read_id_list
from wsfcn.data.index import DatasetIndex
from wsfcn.data.io import DataFileError, write_mask


def read_ids(path: Path) -> list[str]:
    """Ids of a VOC/SBD split file (first field of each non-blank line); a missing or non-UTF-8 file
    or a bad id raises :class:`DataFileError` naming the file (and line)."""
    return read_id_list(path, "split file")


def load_sbd_mat(path: Path) -> np.ndarray:
    """``GTcls.Segmentation`` of an SBD ``cls/*.mat`` file as a (H, W) uint8 class-index mask."""
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
        segmentation = np.asarray(mat["GTcls"].Segmentation)
    except Exception as err:  # scipy raises many types (MatReadError, ValueError, ...) for a bad file
        raise DataFileError(path, f"not an SBD GTcls .mat file ({type(err).__name__}: {err})") from None
    if segmentation.ndim != 2 or segmentation.dtype.kind not in "ui":
        raise DataFileError(
            path, f"GTcls.Segmentation is {segmentation.dtype} {segmentation.shape}, not 2-D integers"
        )
    if segmentation.size and (segmentation.min() < 0 or segmentation.max() > 255):
        raise DataFileError(path, f"GTcls.Segmentation holds values outside 0..255 ({segmentation.max()})")
    return segmentation.astype(np.uint8)


def convert_sbd(sbd: Path, ids: list[str], out_dir: Path) -> tuple[dict[str, Path], list[Problem]]:
    """Convert ``sbd/cls/<id>.mat`` to ``out_dir/<id>.png`` (skipped when the PNG is newer).

    Returns:
        {id: png path} for every id, and one problem per .mat that is missing or does not convert
        (its PNG is then absent, which the data check also reports).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs, problems = {}, []
    for item in ids:
        mat, png = sbd / "cls" / f"{item}.mat", out_dir / f"{item}.png"
        pngs[item] = png
        if not mat.is_file():
            problems.append(Problem(str(mat), f"SBD mask of {item!r} (listed in SBD train/val) is missing"))
            png.unlink(missing_ok=True)
        elif not png.is_file() or png.stat().st_mtime_ns < mat.stat().st_mtime_ns:
            try:
                write_mask(png, load_sbd_mat(mat))
            except DataFileError as err:
                problems.append(Problem(err.path, err.reason))
                png.unlink(missing_ok=True)
    return pngs, problems


def prepare_voc(
    voc_root: Path, sbd_root: Path | None, out: Path, *, name: str = "voc", progress: bool = False
) -> DatasetIndex:
    """Index VOC 2012 (+ SBD) for ``name`` (``voc``, or ``synthetic`` in the same layout).

    Args:
        voc_root: folder that contains ``VOCdevkit/``.
        sbd_root: folder that contains ``benchmark_RELEASE/``; None: ``train_aug`` = ``train``.
        out: the prepared dataset folder (SBD PNGs are written under it).
    """
    del progress  # conversion is cheap per file; kept for a uniform signature
    voc = Path(voc_root) / "VOCdevkit" / "VOC2012"
    sets = voc / "ImageSets" / "Segmentation"
    voc_train, voc_val = read_ids(sets / "train.txt"), read_ids(sets / "val.txt")
    test = read_ids(sets / "test.txt") if (sets / "test.txt").is_file() else []
    images = {i: voc / "JPEGImages" / f"{i}.jpg" for i in voc_train + voc_val + test}
    masks: dict[str, Path | None] = {i: voc / "SegmentationClass" / f"{i}.png" for i in voc_train + voc_val}
    masks.update({i: None for i in test if i not in masks})
    val = set(voc_val)
    problems: list[Problem] = []
    if sbd_root is None:
        train_aug = list(voc_train)
    else:
        sbd = Path(sbd_root) / "benchmark_RELEASE" / "dataset"
        sbd_ids = _unique(read_ids(sbd / "train.txt") + read_ids(sbd / "val.txt"))
        sbd_used = [i for i in sbd_ids if i not in val]
        pngs, problems = convert_sbd(sbd, sbd_used, out / "masks")
        for item in sbd_used:
            images[item] = sbd / "img" / f"{item}.jpg"
            masks[item] = pngs[item]
        train_aug = sorted(set(sbd_used) | (set(voc_train) - val))
    splits = {"train_aug": train_aug, "train": voc_train, "val": voc_val, "test": test}
    splits = {k: v for k, v in splits.items() if v}
    notes = {}
    if sbd_root is not None:
        from_sbd = sum(1 for i in train_aug if masks[i] is not None and masks[i].parent == out / "masks")
        notes["train_aug_sources"] = {"sbd": from_sbd, "voc": len(train_aug) - from_sbd}
    return DatasetIndex(name=name, images=images, masks=masks, splits=splits, notes=notes, problems=problems)


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))
