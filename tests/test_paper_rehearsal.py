"""The commands of docs/paper-setting.md and docs/released-model.md, rehearsed end to end on tiny
official-layout fixtures.

Each test runs the exact documented command, ``python pipeline/ablate.py --experiment experiments/
table{4,5}_*.yaml --setting paper``, changed only in time and device through ``--set`` (CPU, one
epoch of one step at batch 2 on 64-px crops, single scale, 2 images, 2 CRF iterations, padding 64),
from download (VOC 2012 + SBD tar archives, COCO 2014 zips, given by ``data.sources.*.path`` and
md5-checked) through prepare, the sweep and ``pipeline/tables.py``. The WideResNet-38 starts from an
ImageNet-format weights file the test writes with the exact keys and shapes of the authors' file
(``model.pretrained``; the loader checks it key by key and refuses a missing or unexpected key).
Every tensor is a constant expanded to its shape, so the files stay tiny; the numbers mean nothing,
the plumbing is what is checked. The third test evaluates a checkpoint converted with
``wsfcn convert-checkpoint --from official`` (``--checkpoint``) instead of training. To keep each
test to a few minutes, Table IV's run with ``--runs`` its four val runs and ``test`` (``test_crf`` only
adds a CRF to predictions nobody can score here); Table V runs all four.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import torch
from helpers.official_keys import official_shapes
from helpers.official_layouts import write_coco_tree, write_sbd_tree, write_voc_tree

REPO = Path(__file__).resolve().parents[1]
README_TABLE4 = ["pipeline/ablate.py", "--experiment", "experiments/table4_voc.yaml", "--setting", "paper"]
# Table IV's four val runs and one test run (test_crf adds only a CRF on predictions nobody scores)
RUNS4 = ["--runs", "val,val_crf,val_gt,val_gt_crf,test"]
README_TABLE5 = ["pipeline/ablate.py", "--experiment", "experiments/table5_coco.yaml", "--setting", "paper"]
# time and device only: what the paper setting keeps is the data layout, network, losses and inference
TIME_AND_DEVICE = {
    "train.device": "cpu",
    "train.use_gpu": "false",
    "train.num_workers": "0",
    "train.epochs": "1",
    "train.pretrain_epochs": "0",
    "train.max_steps_per_epoch": "1",
    "train.batch_size": "2",
    "train.val_subset": "2",
    "train.figure_every": "0",
    "data.crop_size": "64",
    "data.loader_workers": "0",
    "infer.scales": "[1.0]",
    "infer.max_images": "2",
    "infer.pad_size": "64",
    "eval.crf_params.iterations": "2",
    "eval.crf_params.processes": "1",
}
IMAGE = (48, 64)  # (H, W) of the fixture images
VOC_TRAIN, VOC_VAL, VOC_TEST = ["2007_000032", "2007_000039"], ["2007_000033", "2008_000008"], ["2008_000009"]
SBD_TRAIN, SBD_VAL = ["2008_000100", "2007_000032"], ["2009_000001"]

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def constant(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A tame constant tensor (tiny on disk): BN as identity, convs and classifiers zero.

    Zero convs make every feature zero, so the masks are uniform and the background (the constant 0.25
    of method §7) wins everywhere: PixAcc is the background share, far from the degenerate < 1 % that
    the tables refuse as a fraction, and nothing overflows.
    """
    if key.endswith("num_batches_tracked"):
        return torch.zeros((), dtype=torch.int64)
    value = 1.0 if key.endswith("running_var") or (key.endswith(".weight") and len(shape) == 1) else 0.0
    return torch.full((1,) * len(shape), value).expand(shape)


def is_backbone_key(key: str) -> bool:
    return not key.startswith(("fca.", "align1.", "sf2.", "last_conv.", "_aff."))


def write_imagenet_weights(path: Path) -> Path:
    """``ilsvrc-cls_rna-a1_cls1000_ep-0001.pth``'s layout: the backbone keys without BN counters, plus
    the ImageNet classifier (which the loader drops)."""
    state = {
        k: constant(k, s)
        for k, s in official_shapes().items()
        if is_backbone_key(k) and not k.endswith("num_batches_tracked")
    }
    state |= {
        "linear1000.weight": constant("linear1000.weight", (1000, 4096)),
        "linear1000.bias": torch.zeros(1000),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def pack(folder: Path, archive: Path) -> Path:
    """``folder``'s contents in a tar / tgz / zip archive (as the official downloads are)."""
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as out:
            for path in sorted(folder.rglob("*")):
                out.write(path, path.relative_to(folder).as_posix())
    else:
        with tarfile.open(archive, "w:gz" if archive.suffix == ".tgz" else "w") as out:
            for path in sorted(folder.iterdir()):
                out.add(path, path.name)
    return archive


def voc_sources(tmp: Path) -> dict[str, str]:
    """VOC 2012 (train/val/test ids) and SBD in their official trees, as tar archives."""
    write_voc_tree(tmp / "src" / "voc", train=VOC_TRAIN, val=VOC_VAL, test=VOC_TEST, size=IMAGE)
    write_sbd_tree(tmp / "src" / "sbd", train=SBD_TRAIN, val=SBD_VAL, size=IMAGE)
    voc = pack(tmp / "src" / "voc", tmp / "VOCtrainval_11-May-2012.tar")
    sbd = pack(tmp / "src" / "sbd", tmp / "benchmark.tgz")
    return {
        "data.sources.voc.path": str(voc),
        "data.sources.voc.md5": md5(voc),
        "data.sources.sbd.path": str(sbd),
        "data.sources.sbd.md5": md5(sbd),
    }


def coco_sources(tmp: Path) -> dict[str, str]:
    """COCO 2014 (the tree of helpers.official_layouts, two more labelled train images) as the three
    official zips."""
    src = tmp / "src" / "coco"
    write_coco_tree(src)
    train = json.loads((src / "annotations" / "instances_train2014.json").read_text())
    person = next(a for a in train["annotations"] if a["image_id"] == 1 and a["category_id"] == 1)
    for image_id in (4, 5):
        name = f"COCO_train2014_{image_id:012d}.jpg"
        train["images"].append({"id": image_id, "file_name": name, "height": 24, "width": 32})
        train["annotations"].append(person | {"id": 100 + image_id, "image_id": image_id})
        shutil.copy(src / "train2014" / "COCO_train2014_000000000001.jpg", src / "train2014" / name)
    (src / "annotations" / "instances_train2014.json").write_text(json.dumps(train))
    sets = {}
    for source, sub, archive in (
        ("coco_train", "train2014", "train2014.zip"),
        ("coco_val", "val2014", "val2014.zip"),
        ("coco_annotations", "annotations", "annotations_trainval2014.zip"),
    ):
        (tmp / "zip" / sub).mkdir(parents=True)
        shutil.copytree(src / sub, tmp / "zip" / sub / sub, dirs_exist_ok=True)
        path = pack(tmp / "zip" / sub, tmp / archive)
        sets |= {f"data.sources.{source}.path": str(path), f"data.sources.{source}.md5": md5(path)}
    return sets


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    return env | {"OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1",
                  "PYTHONPATH": str(REPO)}  # fmt: skip


def common_sets(tmp: Path, sources: dict[str, str]) -> dict[str, str]:
    return {
        **TIME_AND_DEVICE,
        **sources,
        "data.root": str(tmp / "data"),
        "data.downloads": str(tmp / "data" / "downloads"),
        "model.pretrained": str(write_imagenet_weights(tmp / "models" / "weights" / "ilsvrc-cls.pth")),
        "tracking.uri": f"sqlite:///{tmp / 'mlflow.db'}",
        "tables.out_dir": str(tmp / "tables"),
    }


def run(tmp: Path, argv: list[str], sets: dict[str, str], timeout: int = 420) -> subprocess.CompletedProcess:
    """``python <argv> --set k=v ...`` from the repository's scripts, cwd ``tmp``."""
    args = [sys.executable, str(REPO / argv[0]), *(str(REPO / a) if a.startswith("experiments/") else a
                                                    for a in argv[1:])]  # fmt: skip
    args += ["--params", str(REPO / "params.yaml"), *(f"--set={k}={v}" for k, v in sets.items())]
    out = subprocess.run(args, cwd=tmp, env=environment(), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return out


def tables(tmp: Path, experiment: str, sets: dict[str, str]) -> None:
    """``python pipeline/tables.py --experiments FILE --setting paper`` on the sweep's MLflow store."""
    paths = {k: v for k, v in sets.items() if k.startswith(("tracking.", "tables."))}
    run(tmp, ["pipeline/tables.py", "--experiments", experiment, "--setting", "paper"], paths)


def children(tmp: Path, experiment: str) -> dict[str, object]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    found = {r.data.tags["wsfcn.run"]: r for r in runs if "wsfcn.run" in r.data.tags}
    assert all(r.info.status == "FINISHED" for r in found.values())
    return found


def table_numbers(tmp: Path, stem: str) -> dict[str, dict[str, str]]:
    with open(tmp / "tables" / f"{stem}.csv") as f:
        return {row["run"]: row for row in csv.DictReader(f)}


def check_predictions(sweep: Path, runs: dict[str, object], labelled: list[str]) -> None:
    """Each run predicted into its own folder; CRF runs refined; § runs filtered by the image labels."""
    for name, child in runs.items():
        folder = sweep / f"{name}-s0"
        summary = json.loads((folder / "infer" / "summary.json").read_text())
        count = len(VOC_TEST) if name.startswith("test") else 2  # infer.max_images=2
        assert len(summary["ids"]) == count and len(list((folder / "infer" / "masks").glob("*.png"))) == count
        assert summary["settings"]["use_gt_labels"] == name.endswith(("_gt", "_gt_crf"))
        crf = folder / "eval" / "crf_masks" / "masks"
        assert len(list(crf.glob("*.png"))) == (2 if name.endswith("crf") else 0), name
        metrics = child.data.metrics
        if name in labelled:
            assert 0 <= metrics["mIoU"] <= 100 and 0 < metrics["PixAcc"] <= 100, name
            assert json.loads((folder / "eval" / "metrics.json").read_text())["crf"] == name.endswith("crf")
        else:  # VOC test: predictions in the server layout, no numbers
            assert "mIoU" not in metrics and "PixAcc" not in metrics
            assert len(list(folder.glob("infer/results/VOC2012/Segmentation/comp6_test_cls/*.png"))) == count
        assert child.data.params["infer.max_images"] == "2"


def test_table4_paper_setting_rehearsal(tmp_path):
    sets = common_sets(tmp_path, voc_sources(tmp_path))
    start = time.time()
    out = run(tmp_path, [*README_TABLE4, *RUNS4], sets)
    sweep_s = time.time() - start
    assert "ablate: 5/5 trials finished" in out.stdout, out.stdout
    sweep = tmp_path / "outputs" / "sweeps" / "table4_voc" / "paper"
    trained = sorted(p.parent.parent.name for p in sweep.glob("*/train/last.pt"))
    assert trained == ["val-s0"]  # one training for the six runs (they differ only in infer/eval keys)
    runs = children(tmp_path, "table4_voc")
    assert sorted(runs) == ["test", "val", "val_crf", "val_gt", "val_gt_crf"]
    reused = {
        n for n, r in runs.items() if r.data.tags.get("wsfcn.train_reused", "").endswith("val-s0/train")
    }
    (trainer,) = set(runs) - reused  # the one trial that trained (the first to take the lock)
    assert "loss" in runs[trainer].data.metrics and "loss" not in runs[sorted(reused)[0]].data.metrics
    for child in runs.values():
        assert (
            child.data.tags["wsfcn.trained_by_sweep"] == "true"
            and child.data.tags["wsfcn.setting"] == "paper"
        )
        assert child.data.params["model.backbone"] == "resnet38" and child.data.metrics["n_params"] > 5e7
    check_predictions(sweep, runs, labelled=["val", "val_crf", "val_gt", "val_gt_crf"])

    tables(tmp_path, "experiments/table4_voc.yaml", sets)
    numbers = table_numbers(tmp_path, "table4")
    for name in ("val", "val_crf", "val_gt", "val_gt_crf"):
        assert numbers[name]["mIoU_n"] == "1" and numbers[name]["mIoU_mean"], name
    assert numbers["test"]["mIoU_n"] == "0"
    markdown = (tmp_path / "tables" / "table4.md").read_text()
    assert "| val [2 images]" in markdown and "WS-FCN + CRF (ours, 2 images)" in markdown
    assert "released checkpoint" not in markdown
    print(f"Table IV rehearsal: sweep {sweep_s:.0f} s")


def test_table5_paper_setting_rehearsal_on_coco(tmp_path):
    sets = common_sets(tmp_path, coco_sources(tmp_path))
    sets["infer.max_images"] = "1"  # the COCO fixture's val split has one image
    out = run(tmp_path, README_TABLE5, sets)
    assert "ablate: 4/4 trials finished" in out.stdout, out.stdout
    sweep = tmp_path / "outputs" / "sweeps" / "table5_coco" / "paper"
    assert sorted(p.parent.parent.name for p in sweep.glob("*/train/last.pt")) == ["val-s0"]
    runs = children(tmp_path, "table5_coco")
    assert sorted(runs) == ["val", "val_crf", "val_gt", "val_gt_crf"]
    for name, child in runs.items():
        assert child.data.tags["wsfcn.dataset"] == "coco" and child.data.params["data.train_split"] == "train"
        assert 0 <= child.data.metrics["mIoU"] <= 100 and 0 < child.data.metrics["PixAcc"] <= 100, name
        folder = sweep / f"{name}-s0"
        assert len(list((folder / "infer" / "masks").glob("*.png"))) == 1
        assert len(list((folder / "eval" / "crf_masks" / "masks").glob("*.png"))) == name.endswith("crf")
    tables(tmp_path, "experiments/table5_coco.yaml", sets)
    numbers = table_numbers(tmp_path, "table5")
    assert all(numbers[n]["mIoU_n"] == "1" for n in runs)
    assert "WS-FCN§ + CRF (ours, 1 image)" in (tmp_path / "tables" / "table5.md").read_text()


def test_table4_from_a_converted_release(tmp_path):
    """``--checkpoint`` on a file converted from the authors' layout: no training, provenance tags."""
    from wsfcn import cli

    release = tmp_path / "model_enc_e018Xs0.905.pth"
    torch.save({k: constant(k, s) for k, s in official_shapes().items()}, release,
               _use_new_zipfile_serialization=False)  # fmt: skip
    converted = tmp_path / "models" / "ws-fcn.pt"
    assert cli.main(["convert-checkpoint", "--from", "official", str(release), str(converted)]) == 0
    sets = common_sets(tmp_path, voc_sources(tmp_path))
    out = run(tmp_path, [*README_TABLE4, *RUNS4, "--checkpoint", "models/ws-fcn.pt"], sets)
    assert "ablate: 5/5 trials finished" in out.stdout and "no training" in out.stdout, out.stdout
    sweep = tmp_path / "outputs" / "sweeps" / "table4_voc" / "paper"
    assert not list(sweep.glob("*/train/*.pt"))  # nothing trained
    runs = children(tmp_path, "table4_voc")
    assert len(runs) == 5
    source_sha = hashlib.sha256(release.read_bytes()).hexdigest()
    for child in runs.values():
        tags = child.data.tags
        assert tags["wsfcn.trained_by_sweep"] == "false" and tags["wsfcn.checkpoint"] == str(converted)
        assert tags["wsfcn.checkpoint.sha256"] == hashlib.sha256(converted.read_bytes()).hexdigest()
        assert (
            tags["wsfcn.checkpoint.source"] == release.name
            and tags["wsfcn.checkpoint.source_sha256"] == source_sha
        )
        assert tags["wsfcn.checkpoint.note"] == "converted from the authors' release"
        assert child.data.params["infer.checkpoint"] == str(converted) and "wsfcn.train_reused" not in tags
    n_params = {child.data.metrics["n_params"] for child in runs.values()}
    assert len(n_params) == 1 and n_params.pop() > 5e7  # counted on the loaded WideResNet-38 WS-FCN
    check_predictions(sweep, runs, labelled=["val", "val_crf", "val_gt", "val_gt_crf"])
    tables(tmp_path, "experiments/table4_voc.yaml", sets)
    numbers = table_numbers(tmp_path, "table4")
    assert numbers["val"]["mIoU_n"] == "0"  # nothing trained: the sweep's own rows stay empty
    assert numbers["val (released checkpoint)"]["mIoU_n"] == "1"
    markdown = (tmp_path / "tables" / "table4.md").read_text()
    assert "| val (released checkpoint) [2 images]" in markdown
    assert (
        "WS-FCN + CRF (released checkpoint, 2 images)" in markdown and "model_enc_e018Xs0.905.pth" in markdown
    )
