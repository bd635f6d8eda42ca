"""Benchmark: images/s of the full WS-FCN training loop, in-process, per thread count.

Runs :func:`wsfcn.train.loop.train_one_epoch` (forward, PAMR, pseudo-GT, both losses, SGD step) on the
embedded default (``params.yaml``: mini backbone, synthetic data), once with the real data loader
(augmentation included) and once on batches loaded beforehand (the step alone), with and without
the mask loss (PRETRAIN). A small synthetic set is generated in a temporary folder.

    python benchmarks/bench_train.py [--params params.yaml] [--set train.batch_size=16] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from wsfcn.params_coerce import flatten
from wsfcn.params_yaml import load_params


def prepare(params, folder: Path, images: int):
    """``params`` pointing at a freshly generated synthetic set of ``images`` training images."""
    from wsfcn.data.prepare import download_dataset, prepare_dataset

    params = load_params(
        None,
        {
            **flatten(params),
            "data.name": "synthetic",
            "data.root": str(folder / "data"),
            "data.downloads": str(folder / "dl"),
            "data.synthetic.num_train": images,
            "data.synthetic.num_val": 4,
        },
    )
    download_dataset(params.data)
    prepare_dataset(params.data, workers=1)
    return params


def measure(params, threads: int, steps: int, warmup: int, use_mask: bool, preload: bool) -> dict:
    """images/s over ``steps`` steps after ``warmup`` steps, with ``threads`` torch threads."""
    import wsfcn.model
    from wsfcn.data.datasets import build_loader
    from wsfcn.train.loop import train_one_epoch
    from wsfcn.train.optim import build_optimizer
    from wsfcn.train.runtime import Runtime, seed_epoch

    torch.set_num_threads(threads)
    tp = params.train
    loader = build_loader(params.data, params.data.train_split, batch_size=tp.batch_size, train=True)
    seed_epoch(tp.seed, 1, 0, loader)
    model = wsfcn.model.build_model(params.model, loader.dataset.num_classes, params.loss)
    opt = build_optimizer(
        model,
        lr=tp.lr,
        momentum=tp.momentum,
        weight_decay=tp.weight_decay,
        head_lr_mult=tp.head_lr_mult,
        head_bias_lr_mult=tp.head_bias_lr_mult,
    )
    batches = [b for _, b in zip(range(steps + warmup), loader, strict=False)] if preload else loader
    rt = Runtime(torch.device("cpu"), channels_last=tp.channels_last)
    kwargs = dict(use_mask=use_mask, mask_weight=params.loss.mask_weight, rt=rt)
    if preload:
        train_one_epoch(model, batches[:warmup], opt, epoch=1, **kwargs)
        stats = train_one_epoch(model, batches[warmup:], opt, epoch=1, **kwargs)
    else:
        start = time.perf_counter()
        stats = train_one_epoch(model, loader, opt, epoch=1, max_steps=steps + warmup, **kwargs)
        stats["images_per_s"] = stats["steps"] * tp.batch_size / (time.perf_counter() - start)
    return {
        "threads": threads,
        "mask_loss": use_mask,
        "loader": not preload,
        "batch": tp.batch_size,
        "steps": stats["steps"],
        "images_per_s": round(stats["images_per_s"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", default="", help="also write the rows to this file")
    args = parser.parse_args(argv)
    base = load_params(args.params if Path(args.params).is_file() else None, args.overrides)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        params = prepare(base, Path(tmp), base.train.batch_size * (args.steps + args.warmup))
        for threads in args.threads:
            for use_mask, preload in ((False, True), (True, True), (True, False)):
                rows.append(measure(params, threads, args.steps, args.warmup, use_mask, preload))
                print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
