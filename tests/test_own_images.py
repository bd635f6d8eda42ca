"""Your own images end to end: ``dvc repro`` on a folder dataset, ``wsfcn segment`` with its checkpoint, the
pseudo-mask stage on the embedded benchmark and on a folder dataset with masks, and evaluate on a val split
with and without masks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers_folder import folder_sets, make_folder_dataset
from test_dvc import SMOKE, dvc, set_dotted

from wsfcn.data.datasets import build_dataset
from wsfcn.data.io import read_mask
from wsfcn.evaluate.metrics import ConfusionMatrix
from wsfcn.params_yaml import load_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("source", ["synthetic", "folder"])
def test_pseudo_masks_are_scored_where_masks_exist(source, tmp_path, tiny_overrides):
    from wsfcn.stages import download, prepare, pseudo_masks, train

    sets = {
        "pseudo_masks.out_dir": str(tmp_path / "pseudo"),
        "pseudo_masks.checkpoint": str(tmp_path / "outputs" / "train" / "best.pt"),
    }
    if source == "folder":
        sets |= folder_sets(make_folder_dataset(tmp_path / "in", count=20, masks=True))
    params = load_params(ROOT / "params.yaml", {**tiny_overrides, **sets})
    download.download(params, quiet=True)
    prepare.prepare(params, workers=1)
    trained = train.train(params, experiment="pseudo-masks-test", quiet=True)
    dataset = build_dataset(params.data, params.data.train_split, train=False)
    out = tmp_path / "pseudo"
    for crf in (False, True) if source == "synthetic" else (False,):
        result = pseudo_masks.pseudo_masks(
            load_params(ROOT / "params.yaml", {**tiny_overrides, **sets, "pseudo_masks.crf": crf}), quiet=True
        )
        assert pseudo_masks.log_pseudo_masks(result) == trained.run_id
        metrics = json.loads((out / "metrics.json").read_text())
        ids = (out / "train_aug.txt").read_text().split()
        assert ids == dataset.ids and metrics["num_images"] == metrics["scored_images"] == len(ids)
        assert metrics["crf"] is crf and metrics["split"] == params.data.train_split
        assert 0.0 <= metrics["mIoU"] <= 100.0 and 0.0 <= metrics["PixAcc"] <= 100.0
        cm = ConfusionMatrix(dataset.num_classes)  # the written masks against the ground truth, again
        for image_id in ids:
            pred = read_mask(out / "SegmentationClassAug" / f"{image_id}.png")
            assert set(np.unique(pred).tolist()) <= {0, *dataset.labels_of(image_id)}  # tags filter classes
            cm.update(read_mask(dataset.mask_path(image_id)), pred)
        assert metrics["mIoU"] == pytest.approx(100 * cm.compute()["miou"], abs=0.01)
        assert metrics["PixAcc"] == pytest.approx(100 * cm.compute()["pixacc"], abs=0.01)
        pairs = (out / "train_aug_pairs.txt").read_text().splitlines()
        assert pairs[0] == f"JPEGImages/{ids[0]}.jpg SegmentationClassAug/{ids[0]}.png"
        assert all((out / "JPEGImages" / f"{i}.jpg").is_file() for i in ids)
        assert (out / "classes.txt").read_text().split("\n")[:-1] == dataset.class_names
    if source == "folder":
        check_val_scores(params, sets, tiny_overrides)
    from mlflow import MlflowClient

    logged = MlflowClient(params.tracking.uri).get_run(trained.run_id).data.metrics
    assert logged[f"pseudo_masks.mIoU{'_crf' if crf else ''}"] == pytest.approx(metrics["mIoU"])
    assert 0.0 <= logged["pseudo_masks.mIoU"] <= 100.0


def check_val_scores(params, sets: dict, tiny_overrides: dict) -> None:
    """infer + evaluate on the folder's val split: mIoU with its masks; without them, the tag mAP only."""
    from wsfcn.data.datasets import build_dataset
    from wsfcn.evaluate.classification import tag_map
    from wsfcn.stages import evaluate, infer, prepare

    infer.infer(params, quiet=True)
    assert 0.0 <= evaluate.evaluate(params, figures=True).miou <= 100.0
    params = load_params(ROOT / "params.yaml", {**tiny_overrides, **sets, "data.folder.masks": ""})
    prepare.prepare(params, workers=1)
    summary = infer.infer(params, quiet=True).summary
    result = evaluate.evaluate(params)
    assert not result.has_masks and result.metrics["mIoU"] is None and result.metrics["PixAcc"] is None
    val = build_dataset(params.data, params.data.val_split, train=False)
    labels = {i: val.labels_of(i) for i in val.ids}
    expected, _ = tag_map(summary["scores"], labels, val.ids, val.num_classes - 1)
    assert result.metrics["mAP"] == pytest.approx(100 * expected, abs=0.01)
    out = Path(params.eval.out_dir)
    assert not (out / "confusion.png").exists()  # nothing of the masked evaluation is left beside it


@pytest.mark.slow
def test_dvc_repro_on_your_own_images_then_segment(tmp_path):
    """The committed tree in a clone: the whole chain on a folder dataset without masks (tiny), then
    ``dvc repro pseudo_masks`` and ``wsfcn segment`` with the trained checkpoint."""
    dataset = make_folder_dataset(tmp_path / "in", count=20, size=48)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    for key, value in {**SMOKE, **folder_sets(dataset), "data.folder.val_fraction": 0.2}.items():
        set_dotted(params, key, value)
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(clone),  # the clone's code, not an installed copy
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    first = dvc("repro", cwd=clone, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"classes {', '.join(dataset['classes'])}" in first.stdout
    metrics = json.loads((clone / "outputs/eval/metrics.json").read_text())
    assert metrics["ground_truth"] is False and metrics["mIoU"] is None and metrics["PixAcc"] is None
    assert 0.0 <= metrics["mAP"] <= 100.0 and "no mIoU" in metrics["note"]
    assert "no masks, so no mIoU" in first.stdout
    pseudo = dvc("repro", "pseudo_masks", cwd=clone, env=env)
    assert pseudo.returncode == 0, pseudo.stdout[-3000:] + pseudo.stderr[-3000:]
    written = json.loads((clone / "outputs/pseudo_masks/metrics.json").read_text())
    assert written["mIoU"] is None and written["num_images"] == 16  # 20 images, 20 % val
    segment = subprocess.run(
        [sys.executable, "-m", "wsfcn.cli", "segment", "--checkpoint", "outputs/train/best.pt",
         str(dataset["images"] / "odd"), "--out", str(tmp_path / "seg"), "--device", "cpu"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert segment.returncode == 0, segment.stderr[-3000:]
    legend = (tmp_path / "seg" / "legend.txt").read_text().splitlines()
    assert [line.split("\t")[1] for line in legend] == dataset["classes"]
    assert legend[1].split("\t")[2] == "#800000"  # class 1 in the VOC palette
    assert len(list((tmp_path / "seg").glob("img_*_overlay.png"))) == 10
