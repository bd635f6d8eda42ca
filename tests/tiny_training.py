"""Shared helpers of the training tests: a tiny prepared synthetic dataset and fast params."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsfcn.config import Params, load_params

TINY = {
    "data.synthetic.num_train": 16,
    "data.synthetic.num_val": 6,
    "data.synthetic.image_size": 32,
    "data.crop_size": 32,
    "data.loader_workers": 0,
    "model.backbone": "mini",
    "model.head_channels": 32,
    "loss.pamr_iters": 2,
    "loss.pamr_dilations": [1, 2],
    "train.batch_size": 4,
    "train.epochs": 2,
    "train.pretrain_epochs": 1,
    "train.max_steps_per_epoch": 2,
    "train.val_every": 1,
    "train.figure_every": 1,
    "tracking.enabled": False,
}


def prepare_tiny_data(root: Path) -> dict[str, str]:
    """Generate and prepare 16 train + 6 val synthetic 32×32 images under ``root``; return data overrides."""
    from wsfcn.data.prepare import download_dataset, prepare_dataset

    overrides = {"data.root": str(root / "data"), "data.downloads": str(root / "downloads")}
    params = load_params(None, {**TINY, **overrides})
    if not (root / "data" / "synthetic" / "index.json").is_file():
        download_dataset(params.data)
        prepare_dataset(params.data, workers=1)
    return overrides


def tiny_params(data: dict[str, str], out_dir: Path, **overrides: Any) -> Params:
    """TINY + the prepared data + ``out_dir``; extra overrides use ``__`` for dots (train__epochs=3)."""
    extra = {k.replace("__", "."): v for k, v in overrides.items()}
    return load_params(None, {**TINY, **data, "train.out_dir": str(out_dir), **extra})
