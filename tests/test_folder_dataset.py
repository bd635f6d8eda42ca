"""``data.name: folder``: your own images and tags prepared into a dataset; a bad row named by its line."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers_folder import folder_sets, make_folder_dataset, write_tags_csv
from PIL import Image

from wsfcn.cli import main as cli_main
from wsfcn.config import ConfigError
from wsfcn.data.check import check_dataset, prepared_classes
from wsfcn.data.classes import CLASS_NAMES, check_classes
from wsfcn.data.datasets import build_dataset
from wsfcn.data.download import DownloadError
from wsfcn.data.io import DataFileError, write_mask
from wsfcn.data.prepare import prepare_dataset
from wsfcn.errors import CheckpointError, DataError
from wsfcn.evaluate.classification import tag_map
from wsfcn.params_yaml import load_params

ROOT = Path(__file__).resolve().parents[1]


def folder_params(tmp_path: Path, dataset: dict, **extra):
    return load_params(
        ROOT / "params.yaml", {**folder_sets(dataset), "data.root": str(tmp_path / "data"), **extra}
    )


def test_classes_ids_labels_and_splits_come_from_the_tags(tmp_path, capsys):
    dataset = make_folder_dataset(tmp_path / "in", count=20)
    params = folder_params(tmp_path, dataset)
    out = prepare_dataset(params.data, workers=1)
    index = json.loads((out / "index.json").read_text())
    assert index["classes"] == dataset["classes"] == prepared_classes(out)
    assert index["num_classes"] == len(dataset["classes"]) and index["labels_from"] == "tags"
    labels = json.loads((out / "labels.json").read_text())
    expected = {
        relative.replace("/", "__"): sorted(dataset["classes"].index(t) for t in tags)
        for relative, tags in dataset["rows"]
    }
    assert labels == expected  # "odd/img_001" -> id "odd__img_001"
    train = (out / "lists" / "train.txt").read_text().split()
    val = (out / "lists" / "val.txt").read_text().split()
    assert len(val) == 2 and len(train) == 18 and not set(train) & set(val)  # 10 % of 20
    assert check_dataset(out, ["train", "val"], ["train"]) == []
    assert cli_main(["check-data", "--folder", str(out), "--train-splits", "train", "--workers", "1"]) == 0
    assert f"{len(dataset['classes'])} classes: {', '.join(dataset['classes'])}" in capsys.readouterr().out
    assert build_dataset(params.data, "train", train=True).num_classes == len(dataset["classes"])
    again = prepare_dataset(folder_params(tmp_path, dataset).data, workers=1)
    assert (again / "lists" / "val.txt").read_text().split() == val  # the split is seeded
    write_tags_csv(dataset["tags"], [*dataset["rows"], ("odd/missing", ["disc"])])
    with pytest.raises(DataError, match="odd/missing"):
        prepare_dataset(params.data, workers=1)
    assert not (out / "index.json").exists() and not (out / "lists").exists()  # the earlier one is gone


def test_every_bad_row_is_named_with_its_csv_line(tmp_path):
    dataset = make_folder_dataset(tmp_path / "in", count=12, masks=True)
    images, masks = dataset["images"], dataset["masks"]
    (images / "even" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    write_mask(masks / "odd" / "img_003.png", np.zeros((16, 16), np.uint8))  # the image is 32x32
    write_mask(masks / "odd" / "img_005.png", np.full((32, 32), 200, np.uint8))  # 200: no such class
    rows = list(dataset["rows"])
    bad = [
        ("even/nope", ["disc"]),  # line 14: missing image
        ("even/broken", ["disc"]),  # 15: unreadable
        ("odd/img_001", ["square", "", "disc"]),  # 16: empty tag
        ("even/img_002", ["background"]),  # 17: unknown (reserved) tag
        ("even/img_004", []),  # 18: no tags
        ("even/img_000.jpg", ["hexagon"]),  # 19: the image of line 2 again, with its extension
    ]
    fixed = {"odd/img_001", "even/img_002", "even/img_004"}
    write_tags_csv(dataset["tags"], [r for r in rows if r[0] not in fixed] + bad)
    lines = dataset["tags"].read_text().splitlines()
    line_of = {line.split(",")[0]: number for number, line in enumerate(lines, 1)}
    with pytest.raises(DataError) as caught:
        prepare_dataset(folder_params(tmp_path, dataset).data, workers=1)
    message = str(caught.value)
    tags = dataset["tags"]
    expected = {
        "even/nope": "not found",
        "even/broken": "unreadable, not a known image format",
        "odd/img_001": "empty tag",
        "even/img_002": "unknown tag 'background'",
        "even/img_004": "no tags",
        "even/img_000.jpg": "duplicate id 'even__img_000'",
        "odd/img_003": "16x16 but the image is 32x32",
        "odd/img_005": "values [200] outside the classes",
    }
    for image, reason in expected.items():
        where = f"{tags}:{line_of[image]}:"
        assert any(where in line and reason in line for line in message.splitlines()), (image, message)
    assert message.startswith(f"{len(expected)} problem(s) in {tags}")
    prepared = tmp_path / "data" / "folder"
    assert not (prepared / "index.json").exists()  # nothing half-prepared to train on
    assert len((prepared / "problems.txt").read_text().splitlines()) == len(expected)


def test_a_spreadsheet_csv_with_byte_order_mark_and_quotes_reads(tmp_path):
    dataset = make_folder_dataset(tmp_path / "in", count=6)
    rows = "".join(f'"{image}","{";".join(tags)}"\r\n' for image, tags in dataset["rows"])
    dataset["tags"].write_bytes(("\ufeffimage,tags\r\n" + rows).encode("utf-8"))
    out = prepare_dataset(
        folder_params(tmp_path, dataset, **{"data.folder.val_fraction": 0.2}).data, workers=1
    )
    assert prepared_classes(out) == dataset["classes"]


def test_json_tags_and_a_val_list(tmp_path):
    dataset = make_folder_dataset(tmp_path / "in", count=10)
    tags = tmp_path / "in" / "tags.json"
    tags.write_text(json.dumps({image: t for image, t in dataset["rows"]}))
    val_list = tmp_path / "val.txt"
    val_list.write_text("odd__img_001\neven/img_002.jpg\n")
    params = folder_params(
        tmp_path, dataset, **{"data.folder.tags": str(tags), "data.folder.val_list": str(val_list)}
    )
    out = prepare_dataset(params.data, workers=1)
    assert sorted((out / "lists" / "val.txt").read_text().split()) == ["even__img_002", "odd__img_001"]
    val_list.write_text("odd__img_001\nnobody\n")
    with pytest.raises(DataError, match=rf"{val_list}:2: 'nobody' is not among the tagged images"):
        prepare_dataset(params.data, workers=1)
    tags.write_text(json.dumps({"even/img_000": "disc"}))
    with pytest.raises(DataError, match=r"entry 'even/img_000'\): tags must be a list of strings"):
        prepare_dataset(params.data, workers=1)


def test_ids_must_be_plain_names_and_the_header_is_checked(tmp_path):
    dataset = make_folder_dataset(tmp_path / "in", count=6)
    hidden = dataset["images"] / ".secret.png"
    Image.new("RGB", (32, 32)).save(hidden)
    write_tags_csv(
        dataset["tags"], [*dataset["rows"], (".secret", ["disc"]), ("../in/images/even/img_000", ["disc"])]
    )
    with pytest.raises(DataError) as caught:
        prepare_dataset(folder_params(tmp_path, dataset).data, workers=1)
    assert f"{dataset['tags']}:8: id '.secret' starts with '.'" in str(caught.value)
    assert f"{dataset['tags']}:9: image '../in/images/even/img_000' is not a path inside" in str(caught.value)
    dataset["tags"].write_text("file,labels\na,b\n")
    with pytest.raises(DataFileError, match=r"tags.csv:1: the header must be 'image,tags'"):
        prepare_dataset(folder_params(tmp_path, dataset).data, workers=1)


def test_a_folder_needs_its_images_and_tags(tmp_path):
    with pytest.raises(ConfigError, match="data.folder.images"):
        load_params(ROOT / "params.yaml", {"data.name": "folder", "data.folder.tags": "t.csv"})
    dataset = make_folder_dataset(tmp_path / "in", count=4)
    shutil.rmtree(dataset["images"])
    with pytest.raises(DownloadError, match="data.folder.images=.*no such file or folder"):
        prepare_dataset(folder_params(tmp_path, dataset).data, workers=1)


def test_a_checkpoint_of_other_tags_is_refused_by_name():
    mine, yours = ["background", "cat", "dog"], ["background", "car", "tree"]
    check_classes("a.pt", "folder", "folder", have=mine, want=list(mine))
    with pytest.raises(CheckpointError, match="3 classes of cat, dog, but data.name=folder has 3: car, tree"):
        check_classes("a.pt", "folder", "folder", have=mine, want=yours)
    with pytest.raises(CheckpointError, match="9 classes of synthetic"):
        check_classes("b.pt", "synthetic", "folder", have=["c"] * 9, want=yours)
    shapes = CLASS_NAMES["synthetic"]  # as many tags as the benchmark has shapes: still other classes
    with pytest.raises(CheckpointError, match="9 classes of a, b, c, d, e, f, g, h, but data.name=synthetic"):
        check_classes("c.pt", "folder", "synthetic", have=["background", *"abcdefgh"], want=shapes)


def test_tag_map_by_hand():
    # class 1: positives a (0.9), c (0.2); ranking a, b, c -> precisions 1/1, 2/3 -> AP 5/6
    # class 2: positive b (0.8) ranked first -> AP 1; class 3: no positive -> NaN, left out of the mean
    scores = {"a": [0.9, 0.1, 0.5], "b": [0.4, 0.8, 0.5], "c": [0.2, 0.3, 0.5]}
    mean_ap, aps = tag_map(scores, {"a": [1], "b": [2], "c": [1]}, ["a", "b", "c"], 3)
    assert aps[:2] == pytest.approx([5 / 6, 1.0]) and math.isnan(aps[2])
    assert mean_ap == pytest.approx((5 / 6 + 1.0) / 2)
    with pytest.raises(ValueError, match="c: no image-level scores"):
        tag_map({"a": [0.1] * 3}, {}, ["a", "c"], 3)


def test_selecting_by_val_miou_needs_val_masks(tmp_path):
    from wsfcn.stages.train import check_before_training

    dataset = make_folder_dataset(tmp_path / "in", count=10)
    params = folder_params(tmp_path, dataset, **{"train.select_by": "miou"})
    prepare_dataset(params.data, workers=1)
    with pytest.raises(ConfigError, match="train.select_by=miou: the val images of .* have no masks"):
        check_before_training(params)
    check_before_training(folder_params(tmp_path, dataset, **{"train.select_by": "last"}))


def test_folder_and_pseudo_mask_keys_move_no_other_runs_fingerprint():
    from wsfcn.params_io import fingerprint
    from wsfcn.sweep.plan import trial_hash

    def keys(**extra):
        params = load_params(ROOT / "params.yaml", extra)
        return fingerprint(params), trial_hash(params)

    base = keys()
    assert keys(**{"data.folder.images": "x", "pseudo_masks.crf": True}) == base  # synthetic: unused keys
    mine = {"data.name": "folder", "data.folder.images": "a", "data.folder.tags": "t.csv"}
    assert keys(**mine) != keys(**{**mine, "data.folder.images": "b"})  # the folder's own inputs count
