"""Stage ``pseudo_masks`` (run on demand: ``dvc repro pseudo_masks``): the training images' masks for a
second-stage model, predicted with each image's own tags as the class filter (docs/own-images.md).

Writes ``<pseudo_masks.out_dir>/SegmentationClassAug/<id>.png``, ``JPEGImages/<id>.jpg`` (links),
``train_aug.txt`` (ids), ``train_aug_pairs.txt`` (image and mask paths), ``classes.txt`` and
``metrics.json`` (mIoU / PixAcc where the split has ground-truth masks, also logged to the training's
MLflow run). Exits 1 if any image was skipped (each is listed in metrics.json).

    python pipeline/pseudo_masks.py [--params params.yaml] [--set pseudo_masks.crf=true] [--quiet]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.arguments import add_params_arguments, params_from_args
from wsfcn.entry import run_entry
from wsfcn.stages import evaluate as evaluate_stage
from wsfcn.stages import pseudo_masks as stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: train.device)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    def body() -> int:
        params = params_from_args(args)
        result = stage.pseudo_masks(params, device=args.device, quiet=args.quiet)
        m = result.metrics
        head = f"pseudo_masks{' [CRF]' if m['crf'] else ''}: {m['num_images']} {m['split']} images"
        score = (
            f"mIoU {m['mIoU']:.2f}  PixAcc {m['PixAcc']:.2f} on {m['scored_images']}"
            if result.scored
            else m["note"]
        )
        print(f"{head}  {score}  -> {result.out_dir}")
        if params.tracking.enabled and result.scored:
            evaluate_stage.report_logged("pseudo_masks", lambda: stage.log_pseudo_masks(result))
        if m["skipped"]:
            print(
                f"pseudo_masks: {len(m['skipped'])} skipped, listed in {result.out_dir}/metrics.json",
                file=sys.stderr,
            )
            return 1
        return 0

    return run_entry("pseudo_masks", body, also=(KeyError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
