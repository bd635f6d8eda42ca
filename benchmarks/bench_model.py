"""Benchmark: one full WS-FCN training step and PAMR alone, on CPU or GPU.

    python benchmarks/bench_model.py --backbone resnet38 --size 321 --batch 2 --threads 2
    python benchmarks/bench_model.py --pamr-only
    python benchmarks/bench_model.py --device cuda --amp bf16 --channels-last   # on a GPU

Prints seconds per step, images/s, peak RSS, the step's GFLOP/s against a measured matmul rate.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from wsfcn.config import LossParams, ModelParams
from wsfcn.model import build_model
from wsfcn.model.pamr import pamr


def matmul_gflops(device: str, seconds: float = 2.0) -> float:
    """Measured fp32 matmul rate (GFLOP/s) of this machine, the yardstick for the step's efficiency."""
    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * 2048**3 * count / (time.perf_counter() - start) / 1e9


def step_flops(model, images, raw, labels) -> float:
    """FLOPs of one forward+backward counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = model(images, images_raw=raw, labels=labels)
        (out.loss_cls + out.loss_mask).backward()
    return counter.get_total_flops()


def bench_step(args: argparse.Namespace) -> None:
    device = args.device
    model = build_model(
        ModelParams(backbone=args.backbone, head_channels=args.head_channels), args.classes, LossParams()
    ).to(device)
    model.train()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    images = torch.randn(args.batch, 3, args.size, args.size, device=device).to(memory_format=memory_format)
    raw = torch.rand(args.batch, 3, args.size, args.size, device=device)
    labels = torch.zeros(args.batch, args.classes - 1, device=device)
    labels[:, :2] = 1
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=args.amp == "bf16")
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = model(images, images_raw=raw, labels=labels)
            loss = out.loss_cls + out.loss_mask
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    per_step = sorted(times)[len(times) // 2]
    flops = step_flops(model, images, raw, labels) if device == "cpu" and args.flops else float("nan")
    rate = matmul_gflops(device)
    print(
        f"backbone={args.backbone} batch={args.batch} size={args.size} threads={torch.get_num_threads()} "
        f"device={device} amp={args.amp} channels_last={args.channels_last}"
    )
    print(f"  median step {per_step:.3f} s  ({args.batch / per_step:.2f} images/s)")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    if device == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    print(
        f"  step {flops / 1e9:.1f} GFLOP -> {flops / per_step / 1e9:.1f} GFLOP/s "
        f"vs matmul {rate:.1f} GFLOP/s ({100 * flops / per_step / 1e9 / rate:.0f}%)"
    )


def bench_pamr(args: argparse.Namespace) -> None:
    masks = torch.softmax(torch.randn(1, 21, 81, 81), dim=1)
    image = torch.rand(1, 3, 81, 81)
    for _ in range(2):
        pamr(image, masks, iterations=10, dilations=(1, 2, 4, 8, 12, 24))
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        pamr(image, masks, iterations=10, dilations=(1, 2, 4, 8, 12, 24))
        times.append(time.perf_counter() - start)
    print(
        f"PAMR 21x81x81, 10 iterations, dilations [1,2,4,8,12,24], threads={torch.get_num_threads()}: "
        f"median {1000 * sorted(times)[len(times) // 2]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet38")
    parser.add_argument("--head-channels", type=int, default=256)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--size", type=int, default=321)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=["none", "bf16"], default="none")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--flops", action="store_true", help="count FLOPs (one extra step)")
    parser.add_argument("--pamr-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench_pamr(args) if args.pamr_only else bench_step(args)


if __name__ == "__main__":
    main()
