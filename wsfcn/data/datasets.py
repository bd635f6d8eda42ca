"""Segmentation datasets and loaders over a prepared index (method §6.2, §8.1).

A prepared dataset folder ``<data.root>/<data.name>/`` holds ``lists/<split>.txt`` (ids),
``labels.json`` ({id: [fg class ids]}) and ``index.json`` ({"dataset", "num_classes", "images":
{id: path}, "masks": {id: path | null}}, paths relative to the folder unless absolute).
Image-level labels come from ``labels.json``, i.e. from the un-cropped mask (method §6.2).
``build_dataset`` and ``build_loader`` are the only functions here that read ``DataParams``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info
from torch.utils.data._utils.collate import default_collate

from wsfcn.config import ConfigError, DataParams
from wsfcn.data.classes import CLASS_NAMES, IGNORE_INDEX
from wsfcn.data.ids import check_id, read_json, read_text
from wsfcn.data.io import DataFileError, read_mask, read_rgb
from wsfcn.data.transforms import EvalTransform, TrainTransform


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run the prepare stage (wsfcn prepare) first")
    return read_json(path, "prepared-data file")


class SegmentationDataset(Dataset):
    """Images, multi-hot labels and masks of one split of a prepared dataset.

    Item: ``image`` (3, H, W) ImageNet-normalised, ``image_raw`` (3, H, W) in [0, 1] (same
    geometry, for PAMR), ``labels`` (C-1,) float multi-hot, ``mask`` (H, W) int64 with 255 void
    (all void when the split has no masks), ``id`` str. ``train=True`` applies the method §6.2
    augmentation (H = W = ``crop_size``); ``train=False`` keeps the full image.
    Random draws use ``self.rng`` (seeded with ``seed``; each loader worker reseeds it).
    """

    def __init__(
        self,
        folder: str | Path,
        split: str,
        *,
        num_classes: int | None,
        train: bool,
        crop_size: int = 321,
        scale_min: float = 0.9,
        scale_max: float = 1.0,
        flip: bool = True,
        color_jitter: bool = True,
        seed: int = 0,
    ) -> None:
        self.folder = Path(folder)
        self.split, self.train = split, train
        list_path = self.folder / "lists" / f"{split}.txt"
        if not list_path.is_file():
            have = sorted(p.stem for p in (self.folder / "lists").glob("*.txt"))
            raise FileNotFoundError(f"{list_path} is missing (split {split!r}; prepared splits: {have})")
        self.ids = [line.strip() for line in read_text(list_path, "split list").splitlines() if line.strip()]
        for number, image_id in enumerate(self.ids, 1):
            check_id(image_id, f"{list_path} (id {number})")
        if not self.ids:
            raise DataFileError(list_path, "split list lists no images")
        index = _read_json(self.folder / "index.json")
        if not isinstance(index, dict) or not isinstance(index.get("images"), dict):
            raise DataFileError(self.folder / "index.json", "not a prepared index (no 'images' mapping)")
        if num_classes is None:  # a dataset whose classes are its own (data.name: folder)
            num_classes = index.get("num_classes")
            if not isinstance(num_classes, int) or num_classes < 2:
                raise DataFileError(self.folder / "index.json", f"num_classes={num_classes!r} is not >= 2")
        if index.get("num_classes") != num_classes:
            raise DataFileError(self.folder / "index.json", f"has num_classes={index.get('num_classes')}, "
                                f"expected {num_classes}")  # fmt: skip
        self.num_classes = num_classes
        self._images, self._masks = index["images"], index.get("masks", {})
        missing = [i for i in self.ids if i not in self._images]
        if missing:
            raise DataFileError(list_path, f"{len(missing)} ids not in index.json, e.g. {missing[:3]}")
        self._labels: dict[str, list[int]] = _read_json(self.folder / "labels.json")
        if not isinstance(self._labels, dict):
            raise DataFileError(self.folder / "labels.json", "not a mapping of id -> class ids")
        names = index.get("classes") or CLASS_NAMES.get(index.get("dataset", ""), [])
        self.class_names = names if len(names) == num_classes else [f"class_{c}" for c in range(num_classes)]
        if train:
            unlabelled = [i for i in self.ids if not self._labels.get(i)]
            if unlabelled:
                raise DataFileError(
                    self.folder / "labels.json",
                    f"{len(unlabelled)} training images of split {split!r} have no foreground label, "
                    f"e.g. {unlabelled[:3]}",
                )
            self.transform = TrainTransform(
                crop_size, scale_min=scale_min, scale_max=scale_max, flip=flip, color_jitter=color_jitter
            )
        else:
            self.transform = EvalTransform()
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.ids)

    def _resolve(self, path: str) -> Path:
        return Path(path) if os.path.isabs(path) else self.folder / path

    def image_path(self, image_id: str) -> Path:
        return self._resolve(self._images[image_id])

    def mask_path(self, image_id: str) -> Path | None:
        path = self._masks.get(image_id)
        return None if path is None else self._resolve(path)

    def labels_of(self, image_id: str) -> list[int]:
        """Foreground class ids (1..C-1) of ``image_id``; [] when it has none."""
        labels = [int(c) for c in self._labels.get(image_id, [])]
        bad = [c for c in labels if not 0 < c < self.num_classes]
        if bad:
            raise DataFileError(
                self.folder / "labels.json",
                f"{image_id} has class ids {bad} outside 1..{self.num_classes - 1}",
            )
        return labels

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id = self.ids[index]
        labels = self.labels_of(image_id)
        if self.train and not labels:
            raise DataFileError(self.folder / "labels.json", f"training image {image_id} has no fg label")
        image = read_rgb(self.image_path(image_id))
        mask_path = self.mask_path(image_id)
        if mask_path is None:
            mask = np.full(image.shape[:2], IGNORE_INDEX, dtype=np.uint8)
        else:
            mask = read_mask(mask_path)
            if mask.shape != image.shape[:2]:
                raise DataFileError(mask_path, f"mask size {mask.shape} differs from image {image.shape[:2]}")
        image_t, raw_t, mask_t = self.transform(image, mask, self.rng)
        multi_hot = torch.zeros(self.num_classes - 1)
        multi_hot[[c - 1 for c in labels]] = 1.0
        return {"image": image_t, "image_raw": raw_t, "labels": multi_hot, "mask": mask_t, "id": image_id}


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items into a batch; images of different sizes raise (use batch_size=1 for eval)."""
    sizes = {tuple(item["image"].shape) for item in items}
    if len(sizes) > 1:
        ids = [item["id"] for item in items]
        raise ValueError(
            f"cannot batch images of sizes {sorted(sizes)} (ids {ids}); use batch_size=1 for eval"
        )
    return default_collate(items)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy, random and the dataset's rng from the torch seed.

    The torch seed of a worker is the loader's base seed (drawn from its seeded generator) plus
    ``worker_id``, so augmentation is reproducible for a fixed seed and worker count.
    """
    seed = torch.initial_seed()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    info = get_worker_info()
    dataset = info.dataset if info is not None else None
    while dataset is not None:  # unwrap Subset / ConcatDataset-like wrappers
        if isinstance(dataset, SegmentationDataset):
            dataset.rng = np.random.default_rng(seed)
            break
        dataset = getattr(dataset, "dataset", None)


def resolve_workers(loader_workers: int) -> int:
    """-1: min(available cores, 4); 0: load in the main process; n > 0: n workers."""
    if loader_workers < -1:
        raise ValueError(f"data.loader_workers must be -1, 0 or positive, got {loader_workers}")
    if loader_workers == -1:
        return min(len(os.sched_getaffinity(0)), 4)
    return loader_workers


def build_dataset(data: DataParams, split: str, train: bool, *, seed: int = 0) -> SegmentationDataset:
    """The ``split`` of ``<data.root>/<data.name>`` with the ``data.augment`` options when ``train``.

    The classes are the catalogue's (``wsfcn.data.classes``), or for ``folder`` the prepared ``index.json``'s.
    """
    from wsfcn.data.classes import num_classes

    aug = data.augment
    return SegmentationDataset(
        Path(data.root) / data.name,
        split,
        num_classes=num_classes(data.name) if data.name in CLASS_NAMES else None,
        train=train,
        crop_size=data.crop_size,
        scale_min=aug.scale_min,
        scale_max=aug.scale_max,
        flip=aug.flip,
        color_jitter=aug.color_jitter,
        seed=seed,
    )


def build_loader(
    data: DataParams,
    split: str,
    *,
    batch_size: int,
    train: bool,
    seed: int = 0,
    num_workers: int | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """DataLoader over ``build_dataset(data, split, train)``: shuffled with drop_last when ``train``.

    ``num_workers`` None takes ``data.loader_workers``. With ``world_size > 1`` a DistributedSampler
    shards the split (call ``loader.sampler.set_epoch(epoch)`` every epoch).
    """
    dataset = build_dataset(data, split, train, seed=seed * 1009 + rank)
    if train and len(dataset) // world_size < batch_size:
        raise ConfigError(f"train.batch_size={batch_size}: split {split!r} has {len(dataset)} images, "
                          f"too few for {world_size} replica(s) with drop_last")  # fmt: skip
    workers = resolve_workers(data.loader_workers if num_workers is None else num_workers)
    sampler = None
    if world_size > 1:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=train, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train if sampler is None else None,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        drop_last=train,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed * 1009 + rank),
    )
