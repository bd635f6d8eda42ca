"""SegmentationDataset, build_dataset and build_loader on a tiny generated set (method §6.2, §8.1)."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.synthetic import make_prepared_synthetic

from wsfcn.config import AugmentParams, DataParams
from wsfcn.data.classes import CLASS_NAMES
from wsfcn.data.datasets import SegmentationDataset, build_dataset, build_loader, collate, resolve_workers
from wsfcn.data.io import read_mask
from wsfcn.data.transforms import normalize


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_prepared_synthetic(tmp_path_factory.mktemp("data"))


def params(folder: Path, **kw) -> DataParams:
    return DataParams(name="synthetic", root=str(folder.parent), **{"crop_size": 48, **kw})


def test_train_item_fields_and_labels_from_uncropped_mask(folder):
    ds = build_dataset(params(folder), "train", train=True)
    assert len(ds) == 24 and ds.num_classes == 9 and ds.class_names == CLASS_NAMES["synthetic"]
    for index in range(len(ds)):
        item = ds[index]
        assert set(item) == {"image", "image_raw", "labels", "mask", "id"} and item["id"] == ds.ids[index]
        assert item["image"].shape == item["image_raw"].shape == (3, 48, 48)
        assert item["mask"].shape == (48, 48)
        assert item["labels"].shape == (8,) and item["labels"].dtype == torch.float32
        full = read_mask(ds.mask_path(item["id"]))
        expected = sorted(set(np.unique(full).tolist()) - {0, 255})
        assert (torch.nonzero(item["labels"]).flatten() + 1).tolist() == expected == ds.labels_of(item["id"])
        assert item["image_raw"].min() >= 0 and item["image_raw"].max() <= 1
        torch.testing.assert_close(normalize(item["image_raw"]), item["image"])


def test_eval_item_is_full_size_and_exact(folder):
    ds = build_dataset(params(folder), "val", train=False)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64)
    assert torch.equal(item["mask"], torch.from_numpy(read_mask(ds.mask_path(item["id"])).astype(np.int64)))
    assert ds.image_path(item["id"]).is_file() and ds.image_path(item["id"]).suffix == ".jpg"


def test_unlabelled_training_image_raises_naming_it(folder, tmp_path):
    copy = tmp_path / "synthetic"
    shutil.copytree(folder, copy, symlinks=True)
    labels = json.loads((copy / "labels.json").read_text())
    labels["syn_train_000003"] = []
    (copy / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(ValueError, match="syn_train_000003"):
        SegmentationDataset(copy, "train", num_classes=9, train=True)
    ds = SegmentationDataset(copy, "train", num_classes=9, train=False)  # eval tolerates it
    assert ds[2]["labels"].sum() == 0
    ds.train = True
    with pytest.raises(ValueError, match="syn_train_000003"):
        ds[2]


def test_index_problems_raise_clearly(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="train_voc"):
        SegmentationDataset(folder, "train_voc", num_classes=9, train=True)
    with pytest.raises(ValueError, match="num_classes"):
        SegmentationDataset(folder, "train", num_classes=21, train=True)
    copy = tmp_path / "synthetic"
    shutil.copytree(folder, copy, symlinks=True)
    index = json.loads((copy / "index.json").read_text())
    index["images"]["syn_val_000001"] = str((copy / index["images"]["syn_val_000001"]).resolve())  # absolute
    index["masks"]["syn_val_000001"] = None
    del index["images"]["syn_val_000002"]
    (copy / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="syn_val_000002"):
        SegmentationDataset(copy, "val", num_classes=9, train=False)
    (copy / "lists" / "val.txt").write_text("syn_val_000001\n")
    item = SegmentationDataset(copy, "val", num_classes=9, train=False)[0]
    assert item["image"].shape == (3, 64, 64) and bool((item["mask"] == 255).all())


def test_loader_batches_reproducible_with_workers(folder):
    p = params(folder)
    runs = [
        list(build_loader(p, "train", batch_size=5, train=True, seed=s, num_workers=2)) for s in (0, 0, 1)
    ]
    assert len(runs[0]) == 4  # 24 images, drop_last
    assert runs[0][0]["image"].shape == (5, 3, 48, 48) and runs[0][0]["labels"].shape == (5, 8)
    for a, b in zip(runs[0], runs[1], strict=True):
        assert a["id"] == b["id"] and torch.equal(a["image"], b["image"])
    assert [b["id"] for b in runs[0]] != [b["id"] for b in runs[2]]


def test_in_process_loader_reproducible_and_epochs_differ(folder):
    p = params(folder)
    loader = build_loader(p, "train", batch_size=8, train=True, seed=4, num_workers=0)
    first, second = list(loader), list(loader)
    again = list(build_loader(p, "train", batch_size=8, train=True, seed=4, num_workers=0))
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0]["image"], second[0]["image"])


def test_eval_loader_and_collate_size_check(folder):
    loader = build_loader(params(folder), "val", batch_size=3, train=False, num_workers=0)
    batches = list(loader)
    assert [len(b["id"]) for b in batches] == [3, 3, 2]  # no drop_last, no shuffle
    assert batches[0]["id"][0] == "syn_val_000001" and batches[0]["image"].shape == (3, 3, 64, 64)
    small = {"image": torch.zeros(3, 4, 4), "id": "a"}
    large = {"image": torch.zeros(3, 5, 4), "id": "b"}
    with pytest.raises(ValueError, match="batch_size=1"):
        collate([small, large])


def test_augment_switches_and_crop_from_params(folder):
    p = params(folder, crop_size=32, augment=AugmentParams(flip=False, color_jitter=False, scale_min=1.0))
    ds = build_dataset(p, "train", train=True)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32)
    assert ds.transform.flip is False and ds.transform.color_jitter is False
    assert ds.transform.scale == (1.0, 1.0)


def test_distributed_shards_are_disjoint(folder):
    p = params(folder)
    ids = []
    for rank in (0, 1):
        loader = build_loader(
            p, "train", batch_size=4, train=True, seed=0, num_workers=0, rank=rank, world_size=2
        )
        ids.append([i for batch in loader for i in batch["id"]])
    assert len(ids[0]) == len(ids[1]) == 12 and not set(ids[0]) & set(ids[1])


def test_worker_count_resolution(folder):
    assert resolve_workers(-1) == min(len(os.sched_getaffinity(0)), 4)
    assert resolve_workers(0) == 0 and resolve_workers(3) == 3
    with pytest.raises(ValueError, match="loader_workers"):
        resolve_workers(-2)
    with pytest.raises(ValueError, match="too few"):
        build_loader(params(folder), "val", batch_size=16, train=True)
