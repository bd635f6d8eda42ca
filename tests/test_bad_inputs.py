"""Bad inputs at every entry point: each ends with an exit status, no traceback, a message that
names the culprit, and nothing changed outside the run's output folder.

One tiny prepared synthetic set and one tiny trained checkpoint (tracked in MLflow) are made once for the
module (:func:`world`); every case copies what it needs into its own folder, breaks one thing, runs one
entry point in-process (a few in a subprocess, to see the real stderr) and checks the outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import PARAMS, ROOT
from helpers.stages import load_stage
from helpers.tiny import TINY
from PIL import Image

pytestmark = pytest.mark.slow


def stage_main(name: str) -> Callable[[list[str]], int]:
    """``main`` of ``pipeline/<name>.py`` (``wsfcn`` for the console command)."""
    if name == "wsfcn":
        from wsfcn.cli import main

        return main
    return load_stage(name).main


def case_sets(root: Path) -> dict[str, Any]:
    """The tiny params with every path under ``root`` (data, checkpoint, outputs, MLflow store)."""
    return {
        **TINY,
        "data.root": str(root / "data"),
        "data.downloads": str(root / "downloads"),
        "train.out_dir": str(root / "outputs" / "train"),
        "infer.checkpoint": str(root / "ckpt" / "best.pt"),
        "infer.out_dir": str(root / "outputs" / "infer"),
        "eval.out_dir": str(root / "outputs" / "eval"),
        "tables.out_dir": str(root / "outputs" / "tables"),
        "tracking.uri": f"sqlite:///{root / 'mlflow.db'}",
    }


def argv_of(sets: dict[str, Any], params: str | Path = PARAMS) -> list[str]:
    argv = ["--params", str(params)]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    return argv


def run_in_process(name: str, argv: list[str], capsys) -> tuple[int, str]:
    """Exit status and stdout+stderr of one entry point run in this process."""
    capsys.readouterr()
    try:
        status = stage_main(name)(argv)
    except SystemExit as exit_:  # argparse, figures
        status = exit_.code if isinstance(exit_.code, int) else 1
        if not isinstance(exit_.code, int):
            print(exit_.code, file=sys.stderr)
    out = capsys.readouterr()
    return status, out.out + out.err


def run_subprocess(name: str, argv: list[str], cwd: Path) -> tuple[int, str]:
    script = [str(ROOT / "pipeline" / f"{name}.py")] if name != "wsfcn" else ["-m", "wsfcn.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("WSFCN_DEBUG", None)
    done = subprocess.run(
        [sys.executable, *script, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stdout + done.stderr


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under ``root`` outside ``skip`` and the MLflow store."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents and not path.name.startswith("mlflow.db"):
            stat = path.stat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


# --------------------------------------------------------------------------------------------
# the shared world: prepared data, a trained checkpoint (MLflow run in world/mlflow.db), predictions
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    sets = case_sets(root) | {"infer.checkpoint": str(root / "outputs" / "train" / "best.pt")}
    argv = argv_of(sets)
    for name, extra in (
        ("download", ["--quiet"]),
        ("prepare", ["--quiet"]),
        ("train", ["--quiet", "--fresh"]),
    ):
        assert stage_main(name)(argv + extra) == 0, name
    assert stage_main("infer")(argv + ["--quiet", "--device", "cpu"]) == 0
    return root


@pytest.fixture
def case(world, tmp_path) -> Path:
    """A fresh copy of the world's data, checkpoint and predictions under ``tmp_path``."""
    shutil.copytree(world / "data", tmp_path / "data")
    shutil.copytree(world / "downloads", tmp_path / "downloads")
    index = tmp_path / DATA / "index.json"  # its paths are absolute, into downloads/
    index.write_text(index.read_text().replace(str(world), str(tmp_path)))
    (tmp_path / "ckpt").mkdir()
    shutil.copy2(world / "outputs" / "train" / "best.pt", tmp_path / "ckpt" / "best.pt")
    shutil.copytree(world / "outputs" / "infer", tmp_path / "outputs" / "infer")
    # the copied manifest names the world's checkpoint path; same bytes, so the same sha256
    return tmp_path


# --------------------------------------------------------------------------------------------
# breaking things
DATA = Path("data") / "synthetic"


def write(rel: str, content: bytes | str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return apply


def first_id(root: Path, split: str = "val") -> str:
    return (root / DATA / "lists" / f"{split}.txt").read_text().split()[0]


def image_of(root: Path, image_id: str, kind: str = "images") -> Path:
    index = json.loads((root / DATA / "index.json").read_text())
    return root / DATA / index[kind][image_id]


def truncate_image(split: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = image_of(root, first_id(root, split))
        path.write_bytes(path.read_bytes()[:60])

    return apply


def bad_val_mask(root: Path) -> None:
    path = image_of(root, first_id(root), "masks")
    mask = np.array(Image.open(path))
    mask[0, 0] = 200  # not a class of 9, not void
    img = Image.fromarray(mask, mode="P")
    img.putpalette(Image.open(path).getpalette())
    img.save(path)


def add_list_id(image_id: str, split: str = "val") -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / DATA / "lists" / f"{split}.txt"
        path.write_text(f"{image_id}\n" + path.read_text())

    return apply


def edit_manifest(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / "outputs" / "infer" / "summary.json"
        summary = json.loads(path.read_text())
        change(summary)
        path.write_text(json.dumps(summary))

    return apply


def pred_mask(root: Path) -> Path:
    return root / "outputs" / "infer" / "masks" / f"{first_id(root)}.png"


class Payload:
    """Pickles to a call that creates a file: must never run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def pickle_checkpoint(root: Path) -> None:
    torch.save({"format": "wsfcn-checkpoint", "model": Payload(root / "code_ran")}, root / "ckpt" / "best.pt")


def truncated_checkpoint(root: Path) -> None:
    path = root / "ckpt" / "best.pt"
    path.write_bytes(path.read_bytes()[:5000])


def voc_checkpoint(root: Path) -> None:
    from wsfcn.checkpoints import save_checkpoint
    from wsfcn.model import build_model
    from wsfcn.params_yaml import load_params

    params = load_params(PARAMS, {**TINY, "data.name": "voc"})
    model = build_model(params.model, 21, params.loss)
    save_checkpoint(root / "ckpt" / "best.pt", model=model, epoch=1, params=params, num_classes=21)


def other_checkpoint(root: Path) -> None:
    """Another checkpoint of the same model (retrained): the predictions are not its."""
    state = torch.load(root / "ckpt" / "best.pt", weights_only=True)
    state["epoch"] += 1
    torch.save(state, root / "ckpt" / "other.pt")


def evil_tar(root: Path) -> None:
    path = root / "evil.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 4
        import io

        tf.addfile(info, io.BytesIO(b"evil"))


@dataclass(frozen=True)
class Case:
    id: str
    stage: str
    expect: int
    names: tuple[str, ...]  # substrings of the output that name the culprit
    sets: dict[str, Any] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    breaks: Callable[[Path], None] | None = None
    params_file: str | None = None  # a params file under the case folder instead of params.yaml
    out: str = "outputs"  # the only folder the run may change
    absent: tuple[str, ...] = ()  # substrings that must not appear
    lands: tuple[str, ...] = ()  # where a write through the bad input would land: must not exist after


NOT_UTF8 = b"\xff\xfe\x00bad\n"


def voc_sources_with_a_bad_list(root: Path) -> None:
    """VOC and SBD sources in their official layouts whose VOC val list has a non-UTF-8 byte on line 2."""
    from helpers.official_layouts import write_sbd_tree, write_voc_tree

    write_voc_tree(root / "voc", train=["2007_000032"], val=["2007_000033", "2007_000039"])
    write_sbd_tree(root / "sbd", train=["2007_000032"], val=["2007_000033"])
    (root / "voc/VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").write_bytes(b"2007_000033\n2007_\xff39\n")


CASES = [
    # ---- params (exit 2: parameter error naming the key and the allowed range)
    Case("lr-negative", "train", 2, ("train.lr", "positive"), {"train.lr": -1}),
    Case("epochs-zero", "train", 2, ("train.epochs",), {"train.epochs": 0}),
    Case("batch-zero", "train", 2, ("train.batch_size",), {"train.batch_size": 0}),
    Case("crop-zero", "train", 2, ("data.crop_size",), {"data.crop_size": 0}),
    Case("pretrain-gt-epochs", "train", 2, ("train.pretrain_epochs",), {"train.pretrain_epochs": 5}),
    Case("pseudo-floor-above-kappa", "train", 2, ("loss.pseudo_floor",), {"loss.pseudo_floor": 0.9}),
    Case("pseudo-fg-above-1", "train", 2, ("loss.pseudo_fg",), {"loss.pseudo_fg": 1.5}),
    Case("scales-empty", "infer", 2, ("infer.scales",), {"infer.scales": []}),
    Case("scales-negative", "infer", 2, ("infer.scales",), {"infer.scales": [1, -0.5]}),
    Case("fp-cut-above-1", "infer", 2, ("infer.fp_cut",), {"infer.fp_cut": 1.5}),
    Case("unknown-key-train", "train", 2, ("model.contxt", "allows"), {"model.contxt": "ppm"}),
    Case("unknown-key-evaluate", "evaluate", 2, ("model.contxt",), {"model.contxt": "ppm"}),
    Case("unknown-key-crf", "crf", 2, ("model.contxt",), {"model.contxt": "ppm"}),
    Case("unknown-choice", "infer", 2, ("model.context", "choose from"), {"model.context": "pppm"}),
    Case("wrong-type", "train", 2, ("train.epochs", "integer"), {"train.epochs": "ten"}),
    Case("bad-yaml-set", "train", 2, ("--set train.lr",), {"train.lr": "[1,"}),
    Case("crf-iterations-zero", "crf", 2, ("eval.crf_params.iterations",), {"eval.crf_params.iterations": 0}),
    Case("max-images-negative", "infer", 2, ("infer.max_images",), {"infer.max_images": -1}),
    Case("check-data-bad-key", "wsfcn", 2, ("model.contxt",), {"model.contxt": "x"}, ("check-data",)),
    Case(
        "yaml-syntax-file",
        "train",
        2,
        ("bad.yaml:3:1: YAML syntax error",),
        breaks=write("bad.yaml", "train:\n  lr: [1,\n"),
        params_file="bad.yaml",
    ),  # fmt: skip
    Case(
        "yaml-not-utf8",
        "infer",
        2,
        ("bad.yaml", "UTF-8"),
        breaks=write("bad.yaml", NOT_UTF8),
        params_file="bad.yaml",
    ),  # fmt: skip
    Case(
        "yaml-not-mapping",
        "evaluate",
        2,
        ("bad.yaml",),
        breaks=write("bad.yaml", "- a\n- b\n"),
        params_file="bad.yaml",
    ),  # fmt: skip
    Case("params-file-missing", "train", 2, ("nope.yaml",), params_file="nope.yaml"),
    Case(
        "experiment-yaml-syntax",
        "train",
        2,
        ("exp.yaml:",),
        args=("--experiment", "{root}/exp.yaml", "--run", "a"),
        breaks=write("exp.yaml", "runs: {a: {train.lr: 1}\n"),
    ),  # fmt: skip
    Case(
        "experiment-bad-value",
        "train",
        2,
        ("exp.yaml", "train.lr"),
        args=("--experiment", "{root}/exp.yaml", "--run", "a"),
        breaks=write("exp.yaml", "runs: {a: {train.lr: -1}}\n"),
    ),  # fmt: skip
    # ---- lists, ids, data files (exit 1, the file and id named)
    Case(
        "id-parent-path",
        "infer",
        1,
        ("../../escape", "val.txt"),
        breaks=add_list_id("../../escape"),
        # infer writes <infer.out_dir>/masks/<id>.png (and probs/<id>.npz): the escaping id lands beside
        # masks/ in <infer.out_dir>'s parent, inside the output folder the snapshot leaves out
        lands=("{root}/outputs/infer/masks/../../escape.png", "{root}/outputs/infer/probs/../../escape.npz"),
    ),  # fmt: skip
    Case("id-separator", "infer", 1, ("a/b", "path separator"), breaks=add_list_id("a/b")),
    Case("id-hidden", "infer", 1, (".hidden",), breaks=add_list_id(".hidden")),
    Case("list-not-utf8", "infer", 1, ("val.txt", "UTF-8"), breaks=write(f"{DATA}/lists/val.txt", NOT_UTF8)),
    Case("list-empty", "infer", 1, ("val.txt", "empty"), breaks=write(f"{DATA}/lists/val.txt", "\n")),
    Case(
        "list-missing",
        "infer",
        1,
        ("train.txt", "missing"),
        {"infer.split": "train"},
        breaks=lambda r: (r / DATA / "lists" / "train.txt").unlink(),
    ),  # fmt: skip
    Case(
        "index-bad-json",
        "infer",
        1,
        ("index.json", "line"),
        breaks=write(f"{DATA}/index.json", '{"images": {'),
    ),
    Case("index-missing", "infer", 1, ("index.json",), breaks=lambda r: (r / DATA / "index.json").unlink()),
    Case(
        "labels-not-utf8", "infer", 1, ("labels.json", "UTF-8"), breaks=write(f"{DATA}/labels.json", NOT_UTF8)
    ),
    Case(
        "index-id-not-plain",
        "wsfcn",
        1,
        ("index.json", "../x"),
        args=("check-data",),
        breaks=lambda r: (r / DATA / "index.json").write_text(
            json.dumps({**json.loads((r / DATA / "index.json").read_text()), "images": {"../x": "x.png"}})
        ),
    ),  # fmt: skip
    Case(
        "check-data-bad-id", "wsfcn", 1, ("val.txt", "a/b"), args=("check-data",), breaks=add_list_id("a/b")
    ),
    Case(
        "train-val-mask-out-of-range",
        "train",
        1,
        ("before training", "syn_val_000001.png", "mask values [200]"),
        breaks=bad_val_mask,
        absent=("epoch 1",),
    ),  # fmt: skip
    Case(
        "train-truncated-image",
        "train",
        1,
        ("before training", "truncated"),
        breaks=truncate_image("train_aug"),
    ),
    Case("train-id-not-in-index", "train", 1, ("val.txt", "ghost"), breaks=add_list_id("ghost")),
    Case("infer-truncated-image", "infer", 1, ("skipped",), breaks=truncate_image("val")),
    # ---- checkpoints
    Case("ckpt-missing", "infer", 1, ("nope.pt", "does not exist"), {"infer.checkpoint": "{root}/nope.pt"}),
    Case("ckpt-empty", "infer", 1, ("best.pt", "empty"), breaks=write("ckpt/best.pt", b"")),
    Case("ckpt-truncated", "infer", 1, ("best.pt", "truncated"), breaks=truncated_checkpoint),
    Case(
        "ckpt-text", "infer", 1, ("best.pt", "not a torch checkpoint"), breaks=write("ckpt/best.pt", "hello")
    ),
    Case(
        "ckpt-pickle-payload",
        "infer",
        1,
        ("best.pt", "could run code"),
        breaks=pickle_checkpoint,
        absent=("weights_only=False", "weights_only = False"),
    ),  # fmt: skip
    Case(
        "ckpt-other-dataset", "infer", 1, ("21 classes of voc", "data.name=synthetic"), breaks=voc_checkpoint
    ),
    Case(
        "segment-pickle-payload",
        "wsfcn",
        2,
        ("best.pt", "could run code"),
        args=("segment", "{root}/data", "--out", "{root}/outputs/seg"),
        breaks=pickle_checkpoint,
    ),  # fmt: skip
    # ---- predictions (evaluate)
    Case(
        "manifest-missing",
        "evaluate",
        1,
        ("summary.json",),
        breaks=lambda r: (r / "outputs/infer/summary.json").unlink(),
    ),  # fmt: skip
    Case(
        "manifest-bad-json",
        "evaluate",
        1,
        ("summary.json", "JSON"),
        breaks=write("outputs/infer/summary.json", "{"),
    ),  # fmt: skip
    Case(
        "manifest-id-escapes",
        "evaluate",
        1,
        ("summary.json", "../../x"),
        breaks=edit_manifest(lambda s: s["ids"].append("../../x")),
    ),  # fmt: skip
    Case(
        "manifest-skipped",
        "evaluate",
        1,
        ("summary.json", "skipped"),
        breaks=edit_manifest(lambda s: s["skipped"].append({"id": s["ids"][0], "error": "x"})),
    ),  # fmt: skip
    Case(
        "manifest-other-split",
        "evaluate",
        1,
        ("split 'val'", "infer.split='train'"),
        {"infer.split": "train"},
    ),
    Case(
        "manifest-other-checkpoint",
        "evaluate",
        1,
        ("other.pt", "best.pt"),
        {"infer.checkpoint": "{root}/ckpt/other.pt"},
        breaks=other_checkpoint,
    ),  # fmt: skip
    Case(
        "manifest-no-fingerprint",
        "evaluate",
        1,
        ("fingerprint",),
        breaks=edit_manifest(lambda s: s.pop("checkpoint_sha256")),
    ),  # fmt: skip
    Case(
        "prediction-missing", "evaluate", 1, ("prediction missing",), breaks=lambda r: pred_mask(r).unlink()
    ),
    Case(
        "prediction-corrupt",
        "evaluate",
        1,
        ("masks/",),
        breaks=lambda r: pred_mask(r).write_bytes(b"\x89PNG broken"),
    ),  # fmt: skip
    Case(
        "prediction-wrong-size",
        "evaluate",
        1,
        ("masks/",),
        breaks=lambda r: Image.fromarray(np.zeros((5, 5), np.uint8)).save(pred_mask(r)),
    ),  # fmt: skip
    Case(
        "figures-no-manifest",
        "figures",
        1,
        ("nowhere",),
        args=("--run", "a={root}/nowhere", "--out", "{root}/outputs/f.png"),
    ),  # fmt: skip
    Case(
        "tables-bad-metrics",
        "tables",
        1,
        ("m.json", "JSON"),
        args=("--pipeline-metrics", "{root}/m.json"),
        breaks=write("m.json", "{oops"),
    ),  # fmt: skip
    Case(
        "tables-subset-metrics",
        "tables",
        1,
        ("m.json", "subset (2 of 6 images"),
        args=("--pipeline-metrics", "{root}/m.json"),
        breaks=write("m.json", json.dumps({"mIoU": 50.0, "subset": True, "num_images": 2, "split_size": 6})),
    ),
    Case("prepare-not-downloaded", "prepare", 1, ("VOC2012 not found", "download"), {"data.name": "voc"}),
    Case(
        "prepare-voc-list-not-utf8",
        "prepare",
        1,
        ("ImageSets/Segmentation/val.txt", "not UTF-8", "line 2"),
        {"data.name": "voc", "data.sources.voc.path": "{root}/voc", "data.sources.sbd.path": "{root}/sbd"},
        breaks=voc_sources_with_a_bad_list,
    ),  # fmt: skip
    # ---- archives (download)
    Case(
        "archive-escapes",
        "download",
        1,
        ("evil.tar",),
        {
            "data.name": "voc",
            "data.sources.voc.path": "{root}/evil.tar",
            "data.sources.voc.md5": "",
            "data.sources.sbd.path": "{root}/evil.tar",
            "data.sources.sbd.md5": "",
        },
        breaks=evil_tar,
    ),  # fmt: skip
    Case(
        "archive-corrupt",
        "download",
        1,
        ("junk.tar",),
        {
            "data.name": "voc",
            "data.sources.voc.path": "{root}/junk.tar",
            "data.sources.voc.md5": "",
            "data.sources.sbd.path": "{root}/junk.tar",
            "data.sources.sbd.md5": "",
        },
        breaks=write("junk.tar", b"junk" * 100),
    ),  # fmt: skip
]


def fill(value: Any, root: Path) -> Any:
    return value.replace("{root}", str(root)) if isinstance(value, str) else value


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input(bad: Case, case: Path, capsys):
    if bad.breaks:
        bad.breaks(case)
    sets = case_sets(case) | {k: fill(v, case) for k, v in bad.sets.items()}
    params = case / bad.params_file if bad.params_file else PARAMS
    args = [fill(a, case) for a in bad.args]
    argv = (
        args[:1] + argv_of(sets, params) + args[1:] if bad.stage == "wsfcn" else argv_of(sets, params) + args
    )
    if bad.stage in ("train", "infer"):
        argv.append("--quiet")
    before = snapshot(case, case / bad.out)
    status, output = run_in_process(bad.stage, argv, capsys)
    assert status == bad.expect, output
    assert "Traceback" not in output, output
    for name in bad.names:
        assert name in output, f"{name!r} not in {output!r}"
    for word in bad.absent:
        assert word not in output, output
    assert snapshot(case, case / bad.out) == before, "a file outside the output folder changed"
    assert not (case / "code_ran").exists()
    assert not list(case.parent.glob("escape*")) and not (case.parent / "escaped.txt").exists()
    for landing in bad.lands:
        spot = Path(fill(landing, case)).resolve()
        assert not spot.exists(), f"the bad input wrote {spot}"


def test_cases_cover_every_kind():
    assert len(CASES) >= 40
    assert {c.stage for c in CASES} >= {
        "download", "prepare", "train", "infer", "crf", "evaluate", "figures", "tables", "wsfcn"
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
def test_subprocesses_print_one_line_and_no_traceback(case):
    """The real stderr of a parameter error (train, evaluate), a bad YAML, a bad experiments file (ablate)."""
    sets = case_sets(case)
    (case / "exp.yaml").write_text("runs: {a: {train.lr: 1}\n")
    runs = [
        (
            "train",
            argv_of(sets | {"model.contxt": "ppm"}),
            2,
            "train: parameter error: unknown key 'model.contxt'",
        ),
        ("evaluate", argv_of(sets | {"train.lr": "[1,"}), 2, "evaluate: parameter error: --set train.lr"),
        (
            "ablate",
            ["--experiment", str(case / "exp.yaml")],
            2,
            f"ablate: parameter error: {case / 'exp.yaml'}:",
        ),
    ]
    for name, argv, expect, line in runs:
        status, output = run_subprocess(name, argv, case)
        assert (status, "Traceback" in output) == (expect, False), output
        assert line in output and len(output.strip().splitlines()) == 1, output


def test_debug_variable_shows_the_traceback(case, monkeypatch):
    from wsfcn.config import ConfigError

    monkeypatch.setenv("WSFCN_DEBUG", "1")
    with pytest.raises(ConfigError, match="train.lr"):
        stage_main("train")(argv_of(case_sets(case) | {"train.lr": -1}))


def test_stale_mask_of_an_earlier_run_is_never_scored(case, capsys):
    """An image infer cannot read any more: its old mask is removed, and evaluate refuses (exit 1)."""
    argv = argv_of(case_sets(case))
    image_id = first_id(case)
    assert pred_mask(case).is_file()  # the earlier run's mask
    truncate_image("val")(case)
    status, output = run_in_process("infer", argv + ["--quiet"], capsys)
    assert status == 1 and image_id in output
    assert not pred_mask(case).exists()  # cleared, not left behind
    status, output = run_in_process("evaluate", argv, capsys)
    assert status == 1 and "skipped" in output and image_id in output, output
    assert not (case / "outputs" / "eval" / "metrics.json").exists()


def test_subset_is_written_as_such(case, capsys):
    argv = argv_of(case_sets(case) | {"infer.max_images": 2})
    assert run_in_process("infer", argv + ["--quiet"], capsys)[0] == 0
    status, output = run_in_process("evaluate", argv, capsys)
    assert status == 0 and "SUBSET of 6" in output, output
    metrics = json.loads((case / "outputs" / "eval" / "metrics.json").read_text())
    assert (metrics["subset"], metrics["num_images"], metrics["split_size"]) == (True, 2, 6)


def test_evaluate_logs_final_numbers_to_the_training_run(world, capsys):
    """train + infer (the world) then evaluate: mIoU and PixAcc in percent on the training's MLflow run."""
    from mlflow.tracking import MlflowClient

    from wsfcn.checkpoints import stored_mlflow_run

    sets = case_sets(world) | {"infer.checkpoint": str(world / "outputs" / "train" / "best.pt")}
    status, output = run_in_process("evaluate", argv_of(sets), capsys)
    assert status == 0, output
    run = stored_mlflow_run(world / "outputs" / "train" / "best.pt")
    assert run["uri"] == f"sqlite:///{world / 'mlflow.db'}" and f"MLflow run {run['run_id']}" in output
    logged = MlflowClient(run["uri"]).get_run(run["run_id"])
    metrics = json.loads((world / "outputs" / "eval" / "metrics.json").read_text())
    assert logged.data.metrics["mIoU"] == pytest.approx(metrics["mIoU"])  # percent, as metrics.json
    assert logged.data.metrics["mIoU"] == pytest.approx(100 * metrics["miou"], abs=0.006)
    assert logged.data.metrics["PixAcc"] == pytest.approx(100 * metrics["pixacc"], abs=0.006)
    assert logged.data.metrics["mIoU"] > 1.0 or metrics["miou"] <= 0.01  # percent, not a fraction
    assert "IoU.background" in logged.data.metrics and "mIoU_fg" in logged.data.metrics
    # the per-epoch quick validation: percent in MLflow and the train stage's metrics.json, one unit
    from wsfcn.checkpoints import load_checkpoint

    fraction = load_checkpoint(world / "outputs" / "train" / "last.pt")["metrics"]["history"][-1]["val_mIoU"]
    train_metrics = json.loads((world / "outputs" / "train" / "metrics.json").read_text())
    assert logged.data.metrics["val_mIoU"] == pytest.approx(100 * fraction)
    assert train_metrics["last"]["val_mIoU"] == pytest.approx(100 * fraction)
    assert logged.data.tags["eval.crf"] == "false" and logged.data.tags["eval.subset"] == "false"
    assert logged.data.params["train.run_name"] == "default"  # the training's own run


def test_data_check_before_training_is_cached_by_fingerprint(case, monkeypatch):
    """The second check of unchanged files costs nothing; a changed file is checked again."""
    import wsfcn.data.check as check

    calls = []
    real = check.check_dataset
    monkeypatch.setattr(check, "check_dataset", lambda *a, **k: calls.append(a) or real(*a, **k))
    folder, splits = case / DATA, ["train_aug", "val"]
    assert check.check_once(folder, splits, ["train_aug"]) == [] and len(calls) == 1
    assert check.check_once(folder, splits, ["train_aug"]) == [] and len(calls) == 1  # cached
    bad_val_mask(case)
    problems = check.check_once(folder, splits, ["train_aug"])
    assert len(calls) == 2 and any("mask values [200]" in p.reason for p in problems)
