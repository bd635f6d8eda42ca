"""Segmentation metrics: confusion matrix, IoU, mIoU, PixAcc (method §8.2).

``M[gt, pred]`` counts every non-void pixel (ground truth 255 is skipped), accumulated with one
vectorised ``np.bincount`` per image, which gives exactly the authors' per-pixel loop.

* ``IoU_c = TP / (TP + FN + FP)``, ``precision_c = TP / (TP + FP)``, ``recall_c = TP / (TP + FN)``.
* A class absent from both the ground truth and the prediction has ``TP + FN + FP = 0``: its IoU is
  NaN and it is left out of every mean (``nanmean``). A class predicted but absent from the ground
  truth has IoU 0 and *does* count.
* ``miou`` is the mean over all classes with background (the paper's number, method §8.2);
  ``miou_fg`` is the mean over the foreground classes only (the first line the authors print).
* ``pixacc = Σ TP / Σ (TP + FN)``: correct non-void pixels over all non-void pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

IGNORE_INDEX = 255


def confusion_counts(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """One image's confusion matrix.

    Args:
        gt: (H, W) integer class ids, ``ignore_index`` for void.
        pred: (H, W) integer class ids in ``[0, num_classes)``.

    Returns:
        (num_classes, num_classes) int64, rows = ground truth, columns = prediction.

    Raises:
        ValueError: shapes differ, or a non-void pixel holds an id outside ``[0, num_classes)``.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
    if gt.dtype == np.uint8 and pred.dtype == np.uint8 and 0 <= ignore_index <= 255:
        return _counts_uint8(gt, pred, num_classes, ignore_index)
    gt = gt.ravel().astype(np.int64, copy=False)
    pred = pred.ravel().astype(np.int64, copy=False)
    valid = gt != ignore_index
    gt, pred = gt[valid], pred[valid]
    if gt.size and (gt.min() < 0 or gt.max() >= num_classes):
        bad = gt[(gt < 0) | (gt >= num_classes)][0]
        raise ValueError(
            f"ground truth holds class id {bad}, outside [0, {num_classes}) and not {ignore_index}"
        )
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        bad = pred[(pred < 0) | (pred >= num_classes)][0]
        raise ValueError(f"prediction holds class id {bad} on a non-void pixel, outside [0, {num_classes})")
    counts = np.bincount(gt * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _counts_uint8(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int) -> np.ndarray:
    """Fast path for uint8 masks: one 256x256 bincount of ``gt << 8 | pred``, then the checks on it."""
    code = (gt.astype(np.uint16) << 8) | pred
    full = np.bincount(code.ravel(), minlength=65536).reshape(256, 256)
    full[ignore_index] = 0
    bad_gt = np.flatnonzero(full[num_classes:].sum(1))
    if bad_gt.size:
        bad = num_classes + int(bad_gt[0])
        raise ValueError(
            f"ground truth holds class id {bad}, outside [0, {num_classes}) and not {ignore_index}"
        )
    bad_pred = np.flatnonzero(full[:num_classes, num_classes:].sum(0))
    if bad_pred.size:
        bad = num_classes + int(bad_pred[0])
        raise ValueError(f"prediction holds class id {bad} on a non-void pixel, outside [0, {num_classes})")
    return full[:num_classes, :num_classes].astype(np.int64)


class ConfusionMatrix:
    """Accumulates ``M[gt, pred]`` over images; ``compute()`` gives the metrics dict."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background included), got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add one image. gt, pred: (H, W) integer arrays (numpy or CPU torch)."""
        self.matrix += confusion_counts(gt, pred, self.num_classes, self.ignore_index)

    def add_counts(self, counts: np.ndarray) -> None:
        """Add a precomputed (C, C) matrix (from :func:`confusion_counts` in a worker)."""
        if counts.shape != self.matrix.shape:
            raise ValueError(f"counts shape {counts.shape} != {self.matrix.shape}")
        self.matrix += counts

    def reset(self) -> None:
        self.matrix[:] = 0

    def compute(self) -> dict[str, Any]:
        """Metrics of the accumulated matrix.

        Returns:
            dict with ``miou``, ``miou_fg``, ``pixacc`` (floats in [0, 1]; NaN if no pixel was seen),
            per-class lists ``iou``, ``precision``, ``recall`` (NaN where undefined), ``gt_pixels``,
            ``pred_pixels`` and ``num_pixels``.
        """
        return metrics_from_confusion(self.matrix)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def metrics_from_confusion(matrix: np.ndarray) -> dict[str, Any]:
    """IoU, precision, recall, mIoU (all / fg), PixAcc from a (C, C) ``M[gt, pred]`` matrix."""
    matrix = np.asarray(matrix, dtype=np.int64)
    tp = np.diag(matrix).astype(np.float64)
    gt_pixels = matrix.sum(1)
    pred_pixels = matrix.sum(0)
    fn = gt_pixels - tp
    fp = pred_pixels - tp
    iou = _ratio(tp, tp + fn + fp)
    total = int(gt_pixels.sum())
    return {
        "miou": _nanmean(iou),
        "miou_fg": _nanmean(iou[1:]),
        "pixacc": float(tp.sum() / total) if total else math.nan,
        "iou": iou.tolist(),
        "precision": _ratio(tp, tp + fp).tolist(),
        "recall": _ratio(tp, tp + fn).tolist(),
        "gt_pixels": gt_pixels.tolist(),
        "pred_pixels": pred_pixels.tolist(),
        "num_pixels": total,
    }
