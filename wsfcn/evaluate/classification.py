"""Image-level classification scores of a split that has tags but no masks: mean average precision.

A split without ground-truth masks has no mIoU; its image tags still say how well the network finds the
classes. ``scores`` are the image-level class scores inference records (max over inputs of
sigmoid(score), ``wsfcn.infer.multiscale.predict_image``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def average_precisions(scores: np.ndarray, labels: np.ndarray) -> list[float]:
    """AP of each class: the mean precision at each positive of the ranking by score (ties keep input
    order); NaN for a class without a positive.

    Args:
        scores: (N, K) image-level class scores.
        labels: (N, K) 0/1 tags.
    """
    ranks = np.arange(1, scores.shape[0] + 1, dtype=np.float64)
    aps = []
    for k in range(scores.shape[1]):
        order = np.argsort(-scores[:, k], kind="stable")
        hits = (labels[order, k] > 0.5).astype(np.float64)
        aps.append(float((np.cumsum(hits) / ranks * hits).sum() / hits.sum()) if hits.sum() else math.nan)
    return aps


def tag_map(
    scores: Mapping[str, Sequence[float]], tags: Mapping[str, Sequence[int]], ids: Sequence[str], num_fg: int
) -> tuple[float, list[float]]:
    """mAP (mean over classes with a positive) and per-class AP of ``ids``.

    Args:
        scores: {id: (K,) fg class scores}; tags: {id: fg class ids 1..K}; num_fg: K.

    Raises:
        ValueError: an id without scores, or scores of another length.
    """
    matrix, labels = np.zeros((len(ids), num_fg)), np.zeros((len(ids), num_fg))
    for row, image_id in enumerate(ids):
        if image_id not in scores or len(scores[image_id]) != num_fg:
            raise ValueError(f"{image_id}: no image-level scores for {num_fg} classes in the predictions")
        matrix[row] = scores[image_id]
        labels[row, [c - 1 for c in tags.get(image_id, [])]] = 1.0
    aps = average_precisions(matrix, labels)
    finite = [a for a in aps if not math.isnan(a)]
    return (float(np.mean(finite)) if finite else math.nan), aps
