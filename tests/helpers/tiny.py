"""The one tiny configuration of the tests, and a prepared tiny synthetic set.

:data:`TINY` changes only time and size (a 16 + 6 image synthetic set of 32 px, 2 epochs of 2 steps,
in-process loading, every epoch validated and drawn); the method's settings stay as the base has them.
Two bases use it: the real ``params.yaml`` (the fixtures of ``tests/conftest.py``, the stage scripts),
and the dataclass defaults, which are the authors' settings (:func:`training_params`, for the loop).
A test that needs more (more images, more epochs) writes ``{**TINY, <what it needs>}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wsfcn.config import Params
from wsfcn.params_yaml import load_params

TINY: dict[str, Any] = {
    "data.synthetic.num_train": 16,
    "data.synthetic.num_val": 6,
    "data.synthetic.image_size": 32,
    "data.crop_size": 32,
    "data.loader_workers": 0,
    "model.backbone": "mini",
    "model.head_channels": 16,
    "loss.pamr_iters": 2,
    "loss.pamr_dilations": [1, 2],
    "loss.pamr_size": 0,
    "train.batch_size": 4,
    "train.epochs": 2,
    "train.pretrain_epochs": 1,
    "train.max_steps_per_epoch": 2,
    "train.val_every": 1,
    "train.val_subset": 0,
    "train.figure_every": 1,
    "train.device": "cpu",
    "eval.crf_params.processes": 1,
    "eval.crf_params.iterations": 2,
}

# The sweep tests' sizes on top of experiments/smoke.yaml (which sets the epochs, steps and loading).
SIZES = ("data.synthetic.num_train", "data.synthetic.num_val", "data.synthetic.image_size", "data.crop_size",
         "train.batch_size", "model.head_channels", "loss.pamr_dilations")  # fmt: skip
SWEEP: dict[str, Any] = {**{key: TINY[key] for key in SIZES}, "train.figure_every": 0}


def as_sets(overrides: dict[str, Any]) -> list[str]:
    """``--set=key=value`` arguments of a stage script or ``pipeline/ablate.py`` (values as YAML)."""
    return [
        f"--set={key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in overrides.items()
    ]


def tiny_paths(tmp: Path) -> dict[str, str]:
    """Every path of params.yaml moved under ``tmp`` (data, outputs, tables, the MLflow store)."""
    return {
        "data.root": str(tmp / "data"),
        "data.downloads": str(tmp / "downloads"),
        "train.out_dir": str(tmp / "outputs" / "train"),
        "infer.checkpoint": str(tmp / "outputs" / "train" / "best.pt"),
        "infer.out_dir": str(tmp / "outputs" / "infer"),
        "eval.out_dir": str(tmp / "outputs" / "eval"),
        "tables.out_dir": str(tmp / "tables"),
        "tracking.uri": f"sqlite:///{tmp / 'mlflow.db'}",
    }


def prepare_tiny_data(root: Path) -> dict[str, str]:
    """Generate and prepare the TINY synthetic set under ``root`` (once); return its data overrides."""
    from wsfcn.data.prepare import download_dataset, prepare_dataset

    overrides = {"data.root": str(root / "data"), "data.downloads": str(root / "downloads")}
    params = load_params(None, {**TINY, **overrides})
    if not (root / "data" / "synthetic" / "index.json").is_file():
        download_dataset(params.data)
        prepare_dataset(params.data, workers=1)
    return overrides


def training_params(data: dict[str, str], out_dir: Path, **overrides: Any) -> Params:
    """The dataclass defaults + TINY + the prepared ``data`` + ``out_dir``, no MLflow store; extra
    overrides use ``__`` for dots (``train__epochs=3``)."""
    extra = {k.replace("__", "."): v for k, v in overrides.items()}
    base = {**TINY, "tracking.enabled": False, **data, "train.out_dir": str(out_dir)}
    return load_params(None, {**base, **extra})
