"""Benchmark: evaluation time for a VOC-val-size set (1,449 masks of 500x375).

    python benchmarks/bench_eval.py [--images 1449] [--workers 0]

Writes random-blob GT (with a 255 border band) and prediction palette PNGs to a temporary folder,
then times ``wsfcn.evaluate.folder.evaluate_folder`` (thread-pool PNG decoding + bincount).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from wsfcn.data.io import write_mask
from wsfcn.evaluate.folder import evaluate_folder


def write_pair(folder: Path, index: int, height: int, width: int) -> None:
    rng = np.random.default_rng(index)
    yy, xx = np.mgrid[:height, :width]
    gt = np.zeros((height, width), np.uint8)
    for c in rng.integers(1, 21, size=2):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(30, 120)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2
        gt[disc < r**2] = c
        gt[(disc >= r**2) & (disc < (r + 4) ** 2)] = 255
    pred = np.where(gt == 255, 0, gt)
    pred = np.roll(pred, rng.integers(-10, 10), axis=1)
    write_mask(folder / "gt" / f"{index}.png", gt)
    write_mask(folder / "pred" / f"{index}.png", pred)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1449)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "gt").mkdir()
        (folder / "pred").mkdir()
        start = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: write_pair(folder, i, args.height, args.width), range(args.images)))
        print(f"wrote {args.images} GT + prediction pairs in {time.perf_counter() - start:.1f} s")
        ids = [str(i) for i in range(args.images)]
        for workers in args.workers:
            start = time.perf_counter()
            cm = evaluate_folder(
                ids, lambda i: folder / "gt" / f"{i}.png", folder / "pred", 21, workers=workers
            )
            seconds = time.perf_counter() - start
            head = f"workers={workers or 'auto'}: {args.images} masks {args.width}x{args.height}"
            miou = cm.compute()["miou"]
            print(f"{head} in {seconds:.2f} s ({args.images / seconds:.0f} masks/s), mIoU {miou:.4f}")


if __name__ == "__main__":
    main()
