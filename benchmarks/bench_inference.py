"""Benchmark: images/s of method §7 multi-scale + flip inference on a VOC-size image.

    python benchmarks/bench_inference.py --backbone mini --images 3
    python benchmarks/bench_inference.py --backbone resnet38 --images 1 --warmup 0
    python benchmarks/bench_inference.py --backbone mini --scales 1 --no-flip     # single-scale
    python benchmarks/bench_inference.py --device cuda --backbone resnet38         # on a GPU

Random weights (speed does not depend on them); prints seconds per image, images/s, forward passes
per image and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from wsfcn.config import ModelParams
from wsfcn.infer.multiscale import predict_image
from wsfcn.infer.options import InferOptions
from wsfcn.model import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mini")
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 1.5, 2.0])
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--pad-size", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(ModelParams(backbone=args.backbone), args.classes).to(args.device).eval()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(args.height, args.width, 3), dtype=np.uint8)
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    options = InferOptions(
        scales=tuple(args.scales), flip=args.flip, pad_size=args.pad_size, batch_size=args.batch_size
    )
    for _ in range(args.warmup):
        predict_image(model, image, options)
    calls.clear()
    times = []
    for _ in range(args.images):
        start = time.perf_counter()
        predict_image(model, image, options)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    per_image = sorted(times)[len(times) // 2]
    print(
        f"backbone={args.backbone} image={args.width}x{args.height} scales={args.scales} flip={args.flip} "
        f"pad={args.pad_size} threads={torch.get_num_threads()} device={args.device}"
    )
    per = len(calls) // max(args.images, 1)
    print(f"  forward passes per image: {per} {calls[:per]}")
    print(f"  median {per_image:.2f} s/image  ({1 / per_image:.3f} images/s) over {args.images} images")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
