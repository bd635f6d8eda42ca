"""Stage ``evaluate``: predicted masks + ground truth -> mIoU / PixAcc (METHOD §8.2).

``--pred`` is an infer or crf output folder (``masks/`` + ``summary.json``; default
``<eval.out_dir>/crf_masks`` if ``eval.crf`` else ``infer.out_dir``). Writes to ``eval.out_dir``:
``metrics.json`` (DVC metrics), ``per_class.csv`` / ``per_class.json`` (DVC plots: x class, y IoU),
``confusion.csv``, ``confusion.png`` and ``iou.png``. A missing or mis-sized prediction is an error
naming the file (exit 1), never a lower score.

    python pipeline/evaluate.py [--params params.yaml] [--pred outputs/infer] [--quiet]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from wsfcn.cli import add_params_arguments, params_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument("--pred", help="infer/crf output folder (default: from eval.crf)")
    parser.add_argument("--quiet", action="store_true", help="accepted for symmetry (no progress bar here)")
    args = parser.parse_args(argv)
    params = params_from_args(args)

    from wsfcn.data import build_dataset
    from wsfcn.evaluation import EvaluationError, evaluate_folder, prediction_info, write_reports
    from wsfcn.figures import confusion_png, iou_bars_png

    out = Path(params.eval.out_dir)
    pred = Path(args.pred or (out / "crf_masks" if params.eval.crf else params.infer.out_dir))
    try:
        summary = json.loads((pred / "summary.json").read_text())
        if summary["split"] == "test":
            raise EvaluationError("the test split has no public ground truth: submit results/VOC2012/...")
        dataset = build_dataset(params.data, summary["split"], train=False)
        start = time.perf_counter()
        cm = evaluate_folder(summary["ids"], dataset.mask_path, pred / "masks", dataset.num_classes)
    except (EvaluationError, FileNotFoundError, KeyError) as err:
        print(f"evaluate: {pred}: {err}", file=sys.stderr)
        return 1
    info = prediction_info(summary) | {"eval_seconds": round(time.perf_counter() - start, 3)}
    metrics = write_reports(cm, dataset.class_names, out, info)
    tag = (" [§ GT image labels]" if info["gt_labels_filter"] else "") + (" [CRF]" if info["crf"] else "")
    miou = 100 * (metrics["miou"] or 0)
    confusion_png(cm.matrix, dataset.class_names, out / "confusion.png")
    iou_bars_png(
        cm.compute()["iou"],
        dataset.class_names,
        out / "iou.png",
        title=f"{info['split']}{tag}: mIoU {miou:.1f}%",
    )
    fg, acc = 100 * (metrics["miou_fg"] or 0), 100 * (metrics["pixacc"] or 0)
    head = f"evaluate{tag}: {info['split']} {info['num_images']} images"
    print(f"{head}  mIoU {miou:.2f}  fg-only mIoU {fg:.2f}  PixAcc {acc:.2f}  -> {out}/metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
