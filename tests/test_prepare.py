"""Prepare stage: VOC + SBD split arithmetic, SBD .mat conversion, labels, index, COCO masks, synthetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.official_layouts import classes_of, make_mask, write_coco_tree, write_sbd_tree, write_voc_tree
from helpers.stages import load_stage

from wsfcn.config import ConfigError
from wsfcn.data.classes import CLASS_NAMES
from wsfcn.data.download import DownloadError
from wsfcn.data.io import read_mask
from wsfcn.data.prepare import DataError, download_dataset, prepare_dataset
from wsfcn.data.prepare_coco import render_mask
from wsfcn.params_yaml import load_params

VOC_TRAIN = ["2007_000032", "2007_000039", "2008_000002"]
VOC_VAL = ["2007_000033", "2008_000008"]
SBD_TRAIN = ["2007_000032", "2008_000100", "2007_000033"]  # 2007_000033 is VOC val: must be dropped
SBD_VAL = ["2009_000001", "2008_000100"]  # a duplicate across SBD lists
ROOT = Path(__file__).resolve().parents[1]


def voc_params(tmp_path: Path, **extra):
    overrides = {
        "data.name": "voc",
        "data.root": str(tmp_path / "prepared"),
        "data.downloads": str(tmp_path / "downloads"),
        "data.sources.voc.path": str(tmp_path / "voc"),
        "data.sources.sbd.path": str(tmp_path / "sbd"),
    }
    overrides.update(extra)
    return load_params(None, overrides)


@pytest.fixture
def voc_tree(tmp_path: Path) -> dict[str, list[int]]:
    labels = write_voc_tree(tmp_path / "voc", train=VOC_TRAIN, val=VOC_VAL, test=["2008_000009"])
    labels.update(write_sbd_tree(tmp_path / "sbd", train=SBD_TRAIN, val=SBD_VAL))
    return labels


def test_voc_sbd_split_arithmetic_labels_and_index(tmp_path: Path, voc_tree: dict[str, list[int]]) -> None:
    out = prepare_dataset(voc_params(tmp_path).data, workers=1)
    assert out == tmp_path / "prepared" / "voc"
    lists = {p.stem: p.read_text().split() for p in (out / "lists").glob("*.txt")}
    # (SBD train ∪ SBD val ∪ VOC train) − VOC val, by hand:
    assert lists["train_aug"] == ["2007_000032", "2007_000039", "2008_000002", "2008_000100", "2009_000001"]
    assert lists["train"] == VOC_TRAIN and lists["val"] == VOC_VAL and lists["test"] == ["2008_000009"]

    index = json.loads((out / "index.json").read_text())
    assert index["dataset"] == "voc" and index["num_classes"] == 21
    # SBD-covered ids take SBD image + converted mask (inside out: relative); the rest VOC (absolute).
    assert index["masks"]["2007_000032"] == "masks/2007_000032.png"
    assert index["images"]["2007_000032"].endswith("benchmark_RELEASE/dataset/img/2007_000032.jpg")
    assert index["masks"]["2007_000039"] == str(
        tmp_path / "voc/VOCdevkit/VOC2012/SegmentationClass/2007_000039.png"
    )
    assert index["masks"]["2007_000033"].endswith("VOC2012/SegmentationClass/2007_000033.png")
    assert index["masks"]["2008_000009"] is None
    assert not (out / "masks" / "2007_000033.png").exists()

    labels = json.loads((out / "labels.json").read_text())
    assert set(labels) == set(lists["train_aug"]) | set(VOC_VAL)  # every id with a mask, not test
    for item, found in labels.items():
        assert found == voc_tree[item] == classes_of(item)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["splits"]["train_aug"]["images"] == 5 and summary["splits"]["test"]["labelled"] == 0
    per_class = summary["splits"]["val"]["per_class"]
    assert len(per_class) == 20
    for c, name in enumerate(CLASS_NAMES["voc"][1:], 1):
        assert per_class[name] == sum(c in classes_of(i) for i in VOC_VAL), name
    assert summary["train_aug_sources"] == {"sbd": 3, "voc": 2}
    assert not (out / "problems.txt").exists()


def test_sbd_mat_converted_exactly(tmp_path: Path, voc_tree: dict[str, list[int]]) -> None:
    out = prepare_dataset(voc_params(tmp_path).data, workers=1)
    png = read_mask(out / "masks" / "2009_000001.png")
    np.testing.assert_array_equal(png, make_mask("2009_000001", border=False))
    voc = read_mask(tmp_path / "voc/VOCdevkit/VOC2012/SegmentationClass/2007_000039.png")
    assert 255 in np.unique(voc)  # the VOC border band survives as void


def test_bad_sbd_mat_and_missing_image_fail_prepare_listing_all(tmp_path: Path, voc_tree) -> None:
    (tmp_path / "sbd/benchmark_RELEASE/dataset/cls/2008_000100.mat").write_bytes(b"not a mat file")
    (tmp_path / "voc/VOCdevkit/VOC2012/JPEGImages/2008_000008.jpg").unlink()
    with pytest.raises(DataError) as err:
        prepare_dataset(voc_params(tmp_path).data, workers=1)
    text = (tmp_path / "prepared/voc/problems.txt").read_text()
    assert "2008_000100.mat: not an SBD GTcls .mat file" in text
    assert "2008_000008.jpg: no such file" in text
    assert "problem(s)" in str(err.value)


def test_wrong_split_names_list_the_datasets_splits(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"data.train_split='train_voc'.*\['train_aug', 'train', 'val', 'test'\]"
    ):
        voc_params(tmp_path, **{"data.train_split": "train_voc"})
    with pytest.raises(
        ConfigError, match=r"data.train_split='train_aug' is not a split of coco.*\['train', 'val'\]"
    ):
        load_params(None, {"data.name": "coco", "data.train_split": "train_aug"})
    # a VOC split name that this copy of VOC lacks (no test images): reported by prepare, with the lists
    write_voc_tree(tmp_path / "voc", train=VOC_TRAIN, val=VOC_VAL)
    write_sbd_tree(tmp_path / "sbd", train=SBD_TRAIN, val=SBD_VAL)
    with pytest.raises(
        DataError, match=r"data.val_split='test' but voc has lists \['train', 'train_aug', 'val'\]"
    ):
        prepare_dataset(voc_params(tmp_path, **{"data.val_split": "test"}).data, workers=1)


def test_switching_dataset_switches_default_splits() -> None:
    """``data.name`` alone picks the dataset's own split names; explicit ones are kept."""
    expected = {"synthetic": ("train_aug", "val"), "voc": ("train_aug", "val"), "coco": ("train", "val")}
    for name, splits in expected.items():
        data = load_params(ROOT / "params.yaml", [f"data.name={name}"]).data
        assert (data.train_split, data.val_split) == splits, name
    assert load_params(None, {"data.name": "voc", "data.train_split": "train"}).data.train_split == "train"
    assert load_params(None, {"data.name": "coco", "data.val_split": "train"}).data.val_split == "train"


def test_coco_render_rule() -> None:
    square = [[0.0, 0.0, 8.0, 0.0, 8.0, 8.0, 0.0, 8.0]]
    small = [[2.0, 2.0, 5.0, 2.0, 5.0, 5.0, 2.0, 5.0]]
    anns = [  # the small one is listed first: painting order must come from the area, not the list
        {"id": 2, "category_id": 18, "iscrowd": 0, "segmentation": small},
        {"id": 1, "category_id": 1, "iscrowd": 0, "segmentation": square},
        {
            "id": 3,
            "category_id": 90,
            "iscrowd": 1,
            "segmentation": [[0.0, 0.0, 12.0, 0.0, 12.0, 12.0, 0.0, 12.0]],
        },
    ]
    mask = render_mask(anns, 12, 12)
    assert mask[3, 3] == 17  # dog (category 18) on top of the person
    assert mask[0, 6] == 1  # person
    assert mask[10, 10] == 255  # crowd only
    assert set(np.unique(mask)) == {1, 17, 255}


def test_coco_prepare(tmp_path: Path) -> None:
    expected = write_coco_tree(tmp_path / "coco")
    params = load_params(
        None,
        {
            "data.name": "coco",  # no data.train_split: COCO's own "train" is the default
            "data.root": str(tmp_path / "prepared"),
            "data.downloads": str(tmp_path / "downloads"),
            "data.sources.coco_train.path": str(tmp_path / "coco"),
            "data.sources.coco_val.path": str(tmp_path / "coco"),
            "data.sources.coco_annotations.path": str(tmp_path / "coco"),
        },
    )
    out = prepare_dataset(params.data, workers=1)
    lists = {p.stem: p.read_text().split() for p in (out / "lists").glob("*.txt")}
    assert lists == {
        "train": ["000000000001"],
        "val": ["000000000007"],
    }  # crowd-only and empty images left out
    index = json.loads((out / "index.json").read_text())
    assert index["num_classes"] == 81
    assert index["images"]["000000000001"].endswith("train2014/COCO_train2014_000000000001.jpg")
    for split, masks in expected.items():
        for item, truth in masks.items():
            np.testing.assert_array_equal(
                read_mask(out / index["masks"][item]), truth, err_msg=f"{split} {item}"
            )
    labels = json.loads((out / "labels.json").read_text())
    assert labels == {"000000000001": [1, 17], "000000000007": [80]}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["left_out_without_labels"] == {"train": 2, "val": 0}
    assert (
        summary["splits"]["train"]["per_class"]["dog"] == 1
        and summary["splits"]["val"]["per_class"]["toothbrush"] == 1
    )


def test_synthetic_download_stamp_and_prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sets = {
        "data.root": str(tmp_path / "prepared"),
        "data.downloads": str(tmp_path / "dl"),
        "data.synthetic": {"num_train": 4, "num_val": 2, "image_size": 32, "seed": 3},
    }
    data = load_params(None, sets).data
    folders = download_dataset(data)
    jpg = folders["synthetic"] / "VOCdevkit/VOC2012/JPEGImages/syn_train_000001.jpg"
    before = jpg.stat().st_mtime_ns
    assert download_dataset(data) == folders and jpg.stat().st_mtime_ns == before  # up to date: skipped
    calls = []
    monkeypatch.setattr("wsfcn.data.synthetic.generate_synthetic", lambda out, **kw: calls.append(kw))
    download_dataset(load_params(None, {**sets, "data.synthetic.seed": 4}).data)  # changed params: regenerate
    assert calls == [{"num_train": 4, "num_val": 2, "image_size": 32, "seed": 4, "design": 4}]
    monkeypatch.undo()
    download_dataset(data)  # the stamp now records seed 4: regenerates seed 3
    out = prepare_dataset(data, workers=1)
    lists = {p.stem: p.read_text().split() for p in (out / "lists").glob("*.txt")}
    assert lists["train_aug"] == lists["train"] == [f"syn_train_{i:06d}" for i in range(1, 5)]
    assert len(lists["val"]) == 2
    assert json.loads((out / "index.json").read_text())["num_classes"] == 9
    assert json.loads((tmp_path / "dl/synthetic/sources.json").read_text())["synthetic"] == str(
        folders["synthetic"].resolve()
    )


def test_runs_sharing_a_data_folder_take_turns(tmp_path: Path) -> None:
    """Two runs that download and prepare into the same folders at once (two trainings started
    together) wait for each other instead of tearing down each other's lists."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from wsfcn.file_lock import folder_lock

    sets = {
        "data.root": str(tmp_path / "prepared"),
        "data.downloads": str(tmp_path / "dl"),
        "data.synthetic": {"num_train": 6, "num_val": 3, "image_size": 32, "seed": 3},
    }
    data = load_params(None, sets).data
    for folder, stage in (
        (tmp_path / "dl" / "synthetic", download_dataset),
        (tmp_path / "prepared" / "synthetic", lambda d: prepare_dataset(d, workers=1)),
    ):
        done = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            with folder_lock(folder):  # another run holds the folder
                future = pool.submit(lambda stage=stage, done=done: (stage(data), done.set()))
                assert not done.wait(1.0), f"{folder}: ran while another run held it"
            future.result(timeout=120)
        assert done.is_set()
    with ThreadPoolExecutor(4) as pool:  # four at once: every one finishes with the same lists
        outs = list(pool.map(lambda _: prepare_dataset(data, workers=1), range(4)))
    assert len({str(o) for o in outs}) == 1
    assert len((outs[0] / "lists" / "train.txt").read_text().split()) == 6


def test_prepare_without_download_names_missing_folder(tmp_path: Path) -> None:
    data = load_params(None, {"data.root": str(tmp_path / "p"), "data.downloads": str(tmp_path / "dl")}).data
    with pytest.raises(DownloadError, match="run the download stage"):
        prepare_dataset(data)


def test_pipeline_scripts_exit_codes(tmp_path: Path, voc_tree, capsys: pytest.CaptureFixture) -> None:
    sets = [
        f"data.root={tmp_path / 'prepared'}",
        f"data.downloads={tmp_path / 'downloads'}",
        "data.name=voc",
        f"data.sources.voc.path={tmp_path / 'voc'}",
        f"data.sources.sbd.path={tmp_path / 'sbd'}",
    ]
    args = [arg for s in sets for arg in ("--set", s)] + [
        "--params",
        str(tmp_path / "params.yaml"),
        "--quiet",
    ]
    (tmp_path / "params.yaml").write_text("data: {name: voc}\n")
    assert load_stage("download").main(args) == 0
    assert load_stage("prepare").main(args + ["--workers", "1"]) == 0
    assert "train_aug 5" in capsys.readouterr().out
    (tmp_path / "voc/VOCdevkit/VOC2012/SegmentationClass/2008_000008.png").write_bytes(b"")
    assert load_stage("prepare").main(args + ["--workers", "1"]) == 1
    assert "2008_000008.png: empty file (0 bytes)" in capsys.readouterr().err
