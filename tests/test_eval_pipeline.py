"""The infer -> (crf) -> evaluate -> figures stages on a fixture checkpoint and a hand-made prepared set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.stages import load_stage
from PIL import Image

from wsfcn.config import ModelParams, Params
from wsfcn.data.io import read_mask, write_mask
from wsfcn.evaluate.metrics import ConfusionMatrix

REPO = Path(__file__).resolve().parents[1]
VAL = ["v1", "v2", "v3"]


def stage(name: str):
    return load_stage(name).main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from wsfcn.checkpoints import save_checkpoint
    from wsfcn.model import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(
        path, model=build_model(ModelParams(backbone="mini"), 9), epoch=1, params=Params(), num_classes=9
    )
    return path


@pytest.fixture
def setup(tmp_path, checkpoint):
    """A prepared synthetic-layout folder (index.json, labels.json, lists/) and a params file."""
    folder = tmp_path / "data" / "synthetic"
    (folder / "files").mkdir(parents=True)
    (folder / "lists").mkdir()
    rng = np.random.default_rng(0)
    images, masks, labels = {}, {}, {}
    for k, image_id in enumerate(VAL + ["t1"]):
        h, w = 36 + 4 * k, 44
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            folder / "files" / f"{image_id}.jpg"
        )
        images[image_id] = f"files/{image_id}.jpg"
        if image_id.startswith("v"):
            mask = np.zeros((h, w), np.uint8)
            mask[5:20, 8:30] = k + 1
            mask[4, :] = 255
            write_mask(folder / "files" / f"{image_id}.png", mask)
            masks[image_id], labels[image_id] = f"files/{image_id}.png", [k + 1]
        else:
            masks[image_id] = None
    index = {"dataset": "synthetic", "num_classes": 9, "images": images, "masks": masks}
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "labels.json").write_text(json.dumps(labels))
    (folder / "lists" / "val.txt").write_text("\n".join(VAL) + "\n")
    (folder / "lists" / "test.txt").write_text("t1\n")
    params = tmp_path / "params.yaml"
    params.write_text(
        f"data: {{name: synthetic, root: {tmp_path / 'data'}}}\n"
        f"infer: {{checkpoint: {checkpoint}, out_dir: {tmp_path / 'infer'}, scales: [1.0, 0.5]}}\n"
        "tracking: {enabled: false}\n"
        f"eval: {{out_dir: {tmp_path / 'eval'}, crf_params: {{processes: 1, iterations: 3}}}}\n"
    )
    return tmp_path, ["--params", str(params)]


def test_infer_then_evaluate(setup):
    tmp, args = setup
    assert stage("infer")(args + ["--device", "cpu", "--set", "infer.save_probs=true", "--quiet"]) == 0
    summary = json.loads((tmp / "infer" / "summary.json").read_text())
    assert summary["ids"] == VAL and summary["settings"]["scales"] == [1.0, 0.5] and not summary["skipped"]
    assert summary["settings"]["use_gt_labels"] is False and summary["setting_note"] == ""
    cm = ConfusionMatrix(9)
    for k, image_id in enumerate(VAL):
        pred = Image.open(tmp / "infer" / "masks" / f"{image_id}.png")
        assert pred.mode == "P" and pred.size == (44, 36 + 4 * k)
        assert (tmp / "infer" / "probs" / f"{image_id}.npz").is_file()
        cm.update(read_mask(tmp / "data" / "synthetic" / "files" / f"{image_id}.png"), np.array(pred))
    assert stage("evaluate")(args) == 0
    metrics = json.loads((tmp / "eval" / "metrics.json").read_text())
    assert metrics["miou"] == pytest.approx(cm.compute()["miou"], abs=1e-6)
    assert metrics["pixacc"] == pytest.approx(cm.compute()["pixacc"], abs=1e-6)
    assert metrics["num_images"] == 3 and metrics["crf"] is False and metrics["gt_labels_filter"] is False
    with open(tmp / "eval" / "per_class.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows][:2] == ["background", "disc"] and len(rows) == 9
    for name in ("per_class.json", "confusion.csv", "confusion.png", "iou.png"):
        assert (tmp / "eval" / name).stat().st_size > 0


def test_section_setting_gt_labels_is_labelled(setup):
    tmp, args = setup
    assert (
        stage("infer")(args + ["--set", "infer.use_gt_labels=true", "--set", "infer.save_probs=false"]) == 0
    )
    for k, image_id in enumerate(VAL):
        assert set(np.unique(read_mask(tmp / "infer" / "masks" / f"{image_id}.png"))) <= {0, k + 1}
    assert stage("evaluate")(args) == 0
    metrics = json.loads((tmp / "eval" / "metrics.json").read_text())
    assert metrics["gt_labels_filter"] is True and "§" in metrics["setting_note"]


def test_crf_stage_then_evaluate(setup):
    tmp, args = setup
    assert stage("infer")(args) == 0
    assert stage("crf")(args) == 0  # eval.crf false: nothing to do
    assert list((tmp / "eval" / "crf_masks" / "masks").iterdir()) == []
    args += ["--set", "eval.crf=true"]
    assert stage("crf")(args) == 1  # infer did not save probabilities
    assert stage("infer")(args) == 0  # eval.crf makes it save them
    assert stage("crf")(args + ["--quiet"]) == 0
    crf = tmp / "eval" / "crf_masks"
    assert all(read_mask(crf / "masks" / f"{i}.png").shape == (36 + 4 * k, 44) for k, i in enumerate(VAL))
    assert stage("evaluate")(args) == 0  # reads the CRF folder because eval.crf
    metrics = json.loads((tmp / "eval" / "metrics.json").read_text())
    assert metrics["crf"] is True and metrics["num_images"] == 3


def test_bad_image_is_skipped_and_evaluation_refuses_missing_prediction(setup, capsys):
    tmp, args = setup
    (tmp / "data" / "synthetic" / "files" / "v2.jpg").write_bytes(b"broken")
    assert stage("infer")(args) == 1
    summary = json.loads((tmp / "infer" / "summary.json").read_text())
    assert [s["id"] for s in summary["skipped"]] == ["v2"] and "v2.jpg" in capsys.readouterr().err
    assert stage("evaluate")(args) == 1
    assert "skipped (first v2" in capsys.readouterr().err  # a partial prediction is refused, not scored


def test_wrong_size_prediction_is_an_error(setup, capsys):
    tmp, args = setup
    assert stage("infer")(args) == 0
    write_mask(tmp / "infer" / "masks" / "v3.png", np.zeros((10, 10), np.uint8))
    assert stage("evaluate")(args) == 1
    err = capsys.readouterr().err
    assert "v3.png" in err and "10x10" in err


def test_test_split_gets_the_server_layout(setup, capsys):
    tmp, args = setup
    assert stage("infer")(args + ["--set", "infer.split=test"]) == 0
    assert (tmp / "infer" / "results/VOC2012/Segmentation/comp6_test_cls/t1.png").is_file()
    assert stage("evaluate")(args) == 1
    assert "no public ground truth" in capsys.readouterr().err


def test_figures_grid_from_two_runs(setup):
    tmp, args = setup
    assert stage("infer")(args + ["--set", f"infer.out_dir={tmp / 'a'}", "--set", "infer.scales=[1.0]"]) == 0
    assert stage("infer")(args + ["--set", f"infer.out_dir={tmp / 'b'}"]) == 0
    runs = ["--run", f"baseline={tmp / 'a'}", "--run", f"WS-FCN={tmp / 'b'}"]
    out = tmp / "fig.png"
    assert stage("figures")(args + runs + ["--num", "2", "--out", str(out)]) == 0
    assert Image.open(out).size[0] > Image.open(out).size[1]  # 4 columns, 2 rows
    with pytest.raises(SystemExit, match="nope"):
        stage("figures")(args + runs + ["--ids", "v1,nope", "--out", str(out)])
