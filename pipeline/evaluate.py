"""Stage ``evaluate``: predicted masks + ground truth -> mIoU / PixAcc (method §8.2).

``--pred`` is an infer or crf output folder (``masks/`` + ``summary.json``; default
``<eval.out_dir>/crf_masks`` if ``eval.crf`` else ``infer.out_dir``). Writes to ``eval.out_dir``:
``metrics.json`` (DVC metrics), ``per_class.csv`` / ``per_class.json`` (DVC plots: x class, y IoU),
``confusion.csv``, ``confusion.png`` and ``iou.png``. A missing or mis-sized prediction is an error
naming the file (exit 1), never a lower score. A split with tags but no masks (``data.name: folder``)
has no mIoU: metrics.json says so (``"ground_truth": false``) and gives the image-level tag mAP instead.

    python pipeline/evaluate.py [--params params.yaml] [--pred outputs/infer] [--quiet]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.arguments import add_params_arguments, params_from_args
from wsfcn.entry import run_entry
from wsfcn.stages import evaluate as stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument("--pred", help="infer/crf output folder (default: from eval.crf)")
    parser.add_argument("--quiet", action="store_true", help="accepted for symmetry (no progress bar here)")
    args = parser.parse_args(argv)

    def body() -> int:
        params = params_from_args(args)
        pred = args.pred or stage.default_predictions(params)
        try:
            result = stage.evaluate(params, pred=pred)
        except (KeyError, FileNotFoundError) as err:
            raise FileNotFoundError(f"{pred}: {err}") from err
        info, m = result.info, result.metrics
        tag = (" [§ GT image labels]" if info["gt_labels_filter"] else "") + (" [CRF]" if info["crf"] else "")
        tag += f" [SUBSET of {info['split_size']}]" if info["subset"] else ""
        head = f"evaluate{tag}: {info['split']} {info['num_images']} images"
        if result.has_masks:
            fg = 100 * (m["miou_fg"] or 0)
            numbers = f"mIoU {result.miou:.2f}  fg-only mIoU {fg:.2f}  PixAcc {result.pixacc:.2f}"
        else:
            numbers = f"no masks, so no mIoU or PixAcc; image-level tag mAP {m['mAP']}"
        print(f"{head}  {numbers}  -> {result.out_dir}/metrics.json")
        if params.tracking.enabled:
            stage.report_logged("evaluate", lambda: stage.log_evaluation(result))
        return 0

    return run_entry("evaluate", body)


if __name__ == "__main__":
    sys.exit(main())
