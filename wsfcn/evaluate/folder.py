"""Score a folder of predicted masks against the ground truth (method §8.2): the loop behind
``pipeline/evaluate.py``.

PNGs are decoded in a thread pool (Pillow's decoder releases the GIL) and each image's confusion
matrix is one ``np.bincount``. A prediction that is missing, unreadable, of the wrong size or holds
an id ``>= num_classes`` raises :class:`EvaluationError` naming the file: never a lower score.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from wsfcn.data.io import read_mask
from wsfcn.errors import InputError
from wsfcn.evaluate.metrics import ConfusionMatrix, confusion_counts


class EvaluationError(InputError, ValueError):
    """A prediction or ground-truth file that cannot be scored (the message names it)."""


def _pair_counts(gt_path: Path | None, pred_path: Path, image_id: str, num_classes: int) -> np.ndarray:
    if gt_path is None:
        raise EvaluationError(f"{image_id}: the split has no ground-truth mask for this image")
    if not pred_path.is_file():
        raise EvaluationError(f"{pred_path}: prediction missing for ground truth {gt_path}")
    try:
        gt = read_mask(gt_path)
        pred = read_mask(pred_path)
    except (OSError, ValueError) as err:
        raise EvaluationError(str(err)) from None
    if gt.shape != pred.shape:
        raise EvaluationError(
            f"{pred_path}: prediction is {pred.shape[1]}x{pred.shape[0]} but ground truth {gt_path} "
            f"is {gt.shape[1]}x{gt.shape[0]} (W x H)"
        )
    try:
        return confusion_counts(gt, pred, num_classes)
    except ValueError as err:
        raise EvaluationError(f"{pred_path} vs {gt_path}: {err}") from None


def evaluate_folder(
    ids: Sequence[str],
    mask_path: Callable[[str], Path | None],
    pred_dir: str | Path,
    num_classes: int,
    *,
    workers: int = 0,
) -> ConfusionMatrix:
    """Confusion matrix of ``pred_dir/<id>.png`` against ``mask_path(id)`` over ``ids``.

    Args:
        mask_path: id -> ground-truth PNG (``dataset.mask_path``); None means "no ground truth".
        workers: decoding threads (0: ``min(8, cores + 2)``).
    """
    if not ids:
        raise EvaluationError("nothing to evaluate: the id list is empty")
    pred_dir = Path(pred_dir)
    cm = ConfusionMatrix(num_classes)
    workers = workers if workers > 0 else min(8, (os.cpu_count() or 1) + 2)

    def one(image_id: str) -> np.ndarray:
        gt_path = mask_path(image_id)
        return _pair_counts(
            None if gt_path is None else Path(gt_path), pred_dir / f"{image_id}.png", image_id, num_classes
        )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for counts in pool.map(one, ids):
            cm.add_counts(counts)
    return cm


def prediction_info(summary: dict[str, Any]) -> dict[str, Any]:
    """What ``metrics.json`` records about the predictions (from an infer/crf ``summary.json``).

    ``gt_labels_filter`` marks the paper's "§" setting (GT image labels used at test time);
    ``provenance`` (only for a converted checkpoint) says where its weights came from.
    """
    settings = summary.get("settings", {})
    return {
        "split": summary["split"],
        "num_images": len(summary["ids"]),
        "crf": bool(summary.get("crf")),
        "gt_labels_filter": bool(settings.get("use_gt_labels")),
        "setting_note": summary.get("setting_note", ""),
        "scales": settings.get("scales"),
        "flip": settings.get("flip"),
        "checkpoint": summary.get("checkpoint"),
        "checkpoint_sha256": summary.get("checkpoint_sha256"),
        "subset": bool(summary.get("subset")),
        "split_size": summary.get("split_size", len(summary["ids"])),
        "mlflow_run": summary.get("mlflow_run") or {},
        **({"provenance": summary["provenance"]} if summary.get("provenance") else {}),
    }


def _clean(value: float) -> float | None:
    return None if value != value else round(float(value), 6)  # NaN -> null in JSON


def per_class_rows(metrics: dict[str, Any], class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per class: id, name, IoU, precision, recall, pixel counts (NaN -> None)."""
    return [
        {
            "class_id": c,
            "class": name,
            "IoU": _clean(metrics["iou"][c]),
            "precision": _clean(metrics["precision"][c]),
            "recall": _clean(metrics["recall"][c]),
            "gt_pixels": metrics["gt_pixels"][c],
            "pred_pixels": metrics["pred_pixels"][c],
        }
        for c, name in enumerate(class_names)
    ]


def write_reports(
    cm: ConfusionMatrix, class_names: Sequence[str], out_dir: str | Path, info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``metrics.json`` (DVC metrics), ``per_class.csv`` / ``per_class.json`` (DVC plots) and
    ``confusion.csv``; return the metrics dict written."""
    if len(class_names) != cm.num_classes:
        raise ValueError(f"{len(class_names)} class names for a {cm.num_classes}-class matrix")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = cm.compute()
    percent = {
        k: None if _clean(metrics[k]) is None else round(100 * metrics[k], 2) for k in ("miou", "pixacc")
    }
    summary = {
        "mIoU": percent["miou"],  # percent, as the paper prints (all classes incl. background)
        "PixAcc": percent["pixacc"],
        "miou": _clean(metrics["miou"]),
        "miou_fg": _clean(metrics["miou_fg"]),
        "pixacc": _clean(metrics["pixacc"]),
        "num_classes": cm.num_classes,
        "num_pixels": metrics["num_pixels"],
        **(info or {}),
        "iou": {name: _clean(v) for name, v in zip(class_names, metrics["iou"], strict=True)},
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    rows = per_class_rows(metrics, class_names)
    (out / "per_class.json").write_text(json.dumps(rows, indent=1))
    with open(out / "per_class.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(out / "confusion.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["gt\\pred", *class_names])
        for name, row in zip(class_names, cm.matrix.tolist(), strict=True):
            writer.writerow([name, *row])
    return summary
