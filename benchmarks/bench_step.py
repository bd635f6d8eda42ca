"""Benchmark: images/s of one training step of the embedded default, and its GFLOP/s.

One step is the body of :func:`wsfcn.train.loop.train_one_epoch` (forward with PAMR, pseudo-GT and both
losses, ``L_cls + L_mask``, backward, SGD) on a fixed batch of synthetic images (``render_sample``),
under ``train.amp`` / ``train.channels_last`` / ``train.compile`` of the params. Also measured, in
the same loop so that both see the same load: a 2048² matmul in fp32 and in bf16, the rates the step's
arithmetic (FlopCounterMode: convolutions) is compared with (on a CPU without native bf16 the bf16
matmul falls back to slow kernels, and its rate says so).

``--compare REF`` loads the ``wsfcn`` package of git revision REF as ``wsfcn_ref`` and times its step
interleaved with this tree's (A, B, A, B, ...; medians), from the same initial weights and seeds,
and reports whether both compute the same losses and gradients; ``--ref-set`` overrides params of the
REF side only (e.g. ``--compare HEAD --set train.channels_last=true --ref-set
train.channels_last=false``). ``--profile`` prints the top ops.

    python benchmarks/bench_step.py [--params params.yaml] [--set train.compile=true] [--threads 2]
        [--steps 10] [--compare HEAD~3] [--profile]
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wsfcn.params_yaml import load_params
from wsfcn.precision import autocast_dtype, precision_name

ROOT = Path(__file__).resolve().parents[1]


def load_ref_package(ref: str, folder: Path) -> str:
    """Extract ``wsfcn/`` at git revision ``ref`` into ``folder`` as the package ``wsfcn_ref``."""
    archive = subprocess.run(["git", "archive", ref, "wsfcn"], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    (folder / "wsfcn").rename(folder / "wsfcn_ref")
    for path in (folder / "wsfcn_ref").rglob("*.py"):
        path.write_text(re.sub(r"(?<![.\w])wsfcn\b(?=[. ])", "wsfcn_ref", path.read_text()))
    sys.path.insert(0, str(folder))
    return "wsfcn_ref"


def make_batch(batch_size: int, size: int, num_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A training batch of synthetic images: normalised ``image``, ``image_raw`` in [0, 1], ``labels``."""
    from wsfcn.data.synthetic import render_sample
    from wsfcn.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    rng = np.random.default_rng(seed)
    raw, labels = [], torch.zeros(batch_size, num_classes - 1)
    for i in range(batch_size):
        image, mask = render_sample(rng, size, size)
        raw.append(torch.from_numpy(image).permute(2, 0, 1).float() / 255)
        for c in np.unique(mask):
            if 0 < c < num_classes:
                labels[i, c - 1] = 1.0
    image_raw = torch.stack(raw)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return {"image": (image_raw - mean) / std, "image_raw": image_raw, "labels": labels}


def _module(pkg: str, name: str, before_layout: str):
    """``pkg.name``, or its pre-restructure name in an older revision compared with --compare."""
    try:
        return importlib.import_module(f"{pkg}.{name}")
    except ModuleNotFoundError:
        return importlib.import_module(f"{pkg}.{before_layout}")


class Side:
    """One package's model, optimiser and step (``pkg``: ``wsfcn`` or ``wsfcn_ref``)."""

    def __init__(self, pkg: str, params, num_classes: int, state: dict | None, compiled: bool) -> None:
        model_mod = importlib.import_module(f"{pkg}.model")
        optim, self.training = _module(pkg, "train.optim", "optim"), _module(pkg, "train.loop", "training")
        tp = params.train
        torch.manual_seed(tp.seed)
        self.model = model_mod.build_model(params.model, num_classes, params.loss).train()
        if state is not None:
            self.model.load_state_dict(state)
        if tp.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = optim.build_optimizer(
            self.model,
            lr=tp.lr,
            momentum=tp.momentum,
            weight_decay=tp.weight_decay,
            head_lr_mult=tp.head_lr_mult,
            head_bias_lr_mult=tp.head_bias_lr_mult,
        )
        self.net = self.model
        if compiled:
            from wsfcn.train.compiled import compile_model

            self.net = compile_model(self.model)
        self.amp = autocast_dtype(tp.amp, "cpu")
        self.fmt = torch.channels_last if tp.channels_last else torch.contiguous_format
        self.mask_weight = params.loss.mask_weight

    def step(self, batch: dict, seed: int) -> tuple[float, float]:
        """One training step after ``torch.manual_seed(seed)``; returns (loss_cls, loss_mask)."""
        torch.manual_seed(seed)
        x = batch["image"].contiguous(memory_format=self.fmt)
        with torch.autocast("cpu", dtype=self.amp or torch.bfloat16, enabled=self.amp is not None):
            out = self.net(x, images_raw=batch["image_raw"], labels=batch["labels"])
        loss = self.training.step_loss(
            out.loss_cls, out.loss_mask, use_mask=True, mask_weight=self.mask_weight
        )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(out.loss_cls.detach()), float(out.loss_mask.detach())

    def grads(self) -> list[torch.Tensor]:
        return [p.grad.clone() for p in self.model.parameters() if p.grad is not None]


def step_flops(side: Side, batch: dict) -> float:
    """FLOPs of one step (convolutions forward and backward; FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        side.step(batch, 0)
    return float(counter.get_total_flops())


MATMUL_SIZE = 2048


def matmul_seconds(dtype: torch.dtype = torch.float32, n: int = MATMUL_SIZE) -> float:
    """Seconds of one (n, n) @ (n, n) matmul in ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    start = time.perf_counter()
    a @ b
    return time.perf_counter() - start


def matmul_gflop_s(seconds: float, n: int = MATMUL_SIZE) -> float:
    """The rate of an (n, n) @ (n, n) matmul that took ``seconds``."""
    return 2 * n**3 / seconds / 1e9


CONV_OPS = (
    "aten::mkldnn_convolution",
    "aten::convolution_backward",
    "aten::_slow_conv2d_forward",
    "aten::_slow_conv2d_backward",
    "aten::slow_conv_dilated2d",
)


def profile_table(side: Side, batch: dict, steps: int = 3, rows: int = 12) -> tuple[str, float, float]:
    """The top ops by self CPU time over ``steps`` steps, and the seconds per step spent in the
    convolutions (forward and backward kernels) and in all ops."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            side.step(batch, i)
    averages = prof.key_averages()
    conv = sum(e.self_cpu_time_total for e in averages if e.key in CONV_OPS) / 1e6 / steps
    total = sum(e.self_cpu_time_total for e in averages) / 1e6 / steps
    return averages.table(sort_by="self_cpu_time_total", row_limit=rows), conv, total


def forward_flops_by_module(side: Side, batch: dict) -> dict[str, float]:
    """GFLOP of one forward pass per top-level part of the network (backbone, context, fusion, ...)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, depth=2)
    with counter, torch.no_grad():
        side.net(batch["image"], images_raw=batch["image_raw"], labels=batch["labels"])
    counts = counter.get_flop_counts()
    parts = {name: sum(ops.values()) / 1e9 for name, ops in counts.items() if name.count(".") == 1}
    return {"total": counter.get_total_flops() / 1e9, **parts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compare", default="", metavar="REF", help="git revision to time against")
    parser.add_argument(
        "--ref-set", action="append", default=[], metavar="KEY=VALUE", help="more overrides for REF's side"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print the top ops (self CPU time), the convolutions' share of the step and their GFLOP/s, "
        "and the forward GFLOP of each part of the network",
    )
    parser.add_argument("--json", default="", help="also write the result to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params(args.params if Path(args.params).is_file() else None, args.overrides)
    from wsfcn.data.classes import num_classes

    classes = num_classes(params.data.name)
    batch = make_batch(params.train.batch_size, params.data.crop_size, classes)
    sides = {"this": Side("wsfcn", params, classes, None, params.train.compile)}
    if args.compare:
        tmp = tempfile.TemporaryDirectory()
        pkg = load_ref_package(args.compare, Path(tmp.name))
        state = sides["this"].model.state_dict()
        ref_params = load_params(
            args.params if Path(args.params).is_file() else None, args.overrides + args.ref_set
        )
        sides = {"ref": Side(pkg, ref_params, classes, state, False), **sides}
    losses = {k: [] for k in sides}
    for i in range(args.warmup):
        for k, side in sides.items():
            losses[k].append(side.step(batch, 1000 + i))
    if args.compare:
        grads = {k: side.grads() for k, side in sides.items()}
        diff = max((a - b).abs().max().item() for a, b in zip(grads["ref"], grads["this"], strict=True))
    times = {k: [] for k in [*sides, "matmul", "matmul_bf16"]}
    for i in range(args.steps):
        for k, side in sides.items():
            start = time.perf_counter()
            losses[k].append(side.step(batch, 2000 + i))
            times[k].append(time.perf_counter() - start)
        times["matmul"].append(matmul_seconds())
        times["matmul_bf16"].append(matmul_seconds(torch.bfloat16))
    med = {k: statistics.median(v) for k, v in times.items()}
    flops = step_flops(sides["this"], batch)
    matmul_rate = matmul_gflop_s(med["matmul"])
    bf16_matmul_rate = matmul_gflop_s(med["matmul_bf16"])
    result = {
        "threads": torch.get_num_threads(),
        "batch": params.train.batch_size,
        "compile": params.train.compile,
        "amp": params.train.amp,
        **{f"{k}_precision": precision_name(side.amp) for k, side in sides.items()},
        "channels_last": params.train.channels_last,
        "gflop_per_step": round(flops / 1e9, 2),
        "matmul_gflop_s": round(matmul_rate, 1),
        "matmul_bf16_gflop_s": round(bf16_matmul_rate, 1),
    }
    for k in sides:
        result[f"{k}_ms"] = round(1000 * med[k], 1)
        result[f"{k}_images_per_s"] = round(params.train.batch_size / med[k], 1)
        result[f"{k}_gflop_s"] = round(flops / med[k] / 1e9, 1)
        result[f"{k}_of_matmul"] = round(flops / med[k] / 1e9 / matmul_rate, 3)
        result[f"{k}_of_bf16_matmul"] = round(flops / med[k] / 1e9 / bf16_matmul_rate, 3)
    if args.compare:
        result["speedup"] = round(med["ref"] / med["this"], 3)
        result["same_losses"] = losses["ref"] == losses["this"]
        pairs = zip(np.ravel(losses["ref"]), np.ravel(losses["this"]), strict=True)
        result["max_loss_diff"] = max(abs(a - b) for a, b in pairs)
        result["max_grad_diff_after_warmup"] = diff
    if args.profile:
        tables = {}
        for k, side in sides.items():
            tables[k], conv, total = profile_table(side, batch)
            result[f"{k}_conv_share"] = round(conv / total, 3)
            result[f"{k}_conv_gflop_s"] = round(flops / conv / 1e9, 1)
        result["forward_gflop"] = {
            k: round(v, 2) for k, v in forward_flops_by_module(sides["this"], batch).items()
        }
    print(json.dumps(result, indent=1), flush=True)
    if args.profile:
        for k, table in tables.items():
            print(f"\n== {k}: top ops by self CPU time (3 steps) ==")
            print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
