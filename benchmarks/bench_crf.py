"""Benchmark: dense CRF images/s with 1 and N processes (method §7.7, stack §5).

    python benchmarks/bench_crf.py --images 8 --processes 1 2

Writes VOC-size (500x375) test images (smooth colour regions + texture noise) and blurry 21-class
probabilities like the infer stage's, then runs ``wsfcn.infer.crf.run_crf_jobs`` as the crf stage does.
Reports wall time including the pool start, images/s and the speed-up over one process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from wsfcn.infer.crf import CRFJob, CRFOptions, run_crf_jobs, save_probs


def make_case(folder: Path, index: int, height: int, width: int, classes: int) -> CRFJob:
    rng = np.random.default_rng(index)
    labels = np.zeros((height, width), np.int64)
    yy, xx = np.mgrid[:height, :width]
    kept = rng.choice(np.arange(1, classes), size=2, replace=False)
    for c in kept:
        cy, cx, r = rng.integers(60, height - 60), rng.integers(60, width - 60), rng.integers(40, 110)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = c
    colours = rng.integers(0, 256, size=(classes, 3))
    image = colours[labels] + rng.normal(0, 12, (height, width, 3)) + 40 * np.sin(xx / 37.0)[..., None]
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"{index}.jpg", quality=90)
    probs = np.zeros((classes, height, width), np.float32)
    for c in kept:
        probs[c] = ndimage.gaussian_filter((labels == c).astype(np.float32), 8) * 0.9
    save_probs(folder / f"{index}.npz", probs, kept=sorted(int(c) for c in kept))
    return CRFJob(
        str(index), str(folder / f"{index}.jpg"), str(folder / f"{index}.npz"), str(folder / f"{index}.png")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [make_case(Path(tmp), i, args.height, args.width, 21) for i in range(args.images)]
        base = None
        for n in args.processes:
            start, done = time.perf_counter(), []
            for _, error in run_crf_jobs(jobs, CRFOptions(iterations=args.iterations), processes=n):
                assert error is None, error
                done.append(time.perf_counter() - start)
            seconds = done[-1]
            rate = args.images / seconds
            steady = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else rate
            base = base or rate
            print(
                f"processes={n}: {args.images} images {args.width}x{args.height} in {seconds:.1f} s "
                f"({rate:.3f} images/s, speed-up x{rate / base:.2f}); first result after {done[0]:.1f} s, "
                f"then {steady:.3f} images/s"
            )


if __name__ == "__main__":
    main()
