"""Confusion matrix, IoU, mIoU and PixAcc against hand-computed values (method §8.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wsfcn.evaluate.metrics import ConfusionMatrix, confusion_counts, metrics_from_confusion


def test_hand_computed_three_classes_with_void():
    gt = np.array([[0, 0, 1], [1, 2, 255]], dtype=np.uint8)
    pred = np.array([[0, 1, 1], [1, 0, 2]], dtype=np.uint8)
    # pairs (gt, pred): (0,0) (0,1) (1,1) (1,1) (2,0); the void pixel is skipped
    cm = ConfusionMatrix(3)
    cm.update(gt, pred)
    np.testing.assert_array_equal(cm.matrix, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    m = cm.compute()
    # TP [1,2,0], FN [1,0,1], FP [1,1,0]
    np.testing.assert_allclose(m["iou"], [1 / 3, 2 / 3, 0.0])
    assert m["miou"] == pytest.approx(1 / 3)
    assert m["miou_fg"] == pytest.approx(1 / 3)
    assert m["pixacc"] == pytest.approx(3 / 5)
    np.testing.assert_allclose(m["precision"], [1 / 2, 2 / 3, np.nan])
    np.testing.assert_allclose(m["recall"], [1 / 2, 1.0, 0.0])
    assert m["gt_pixels"] == [2, 2, 1] and m["pred_pixels"] == [2, 3, 0] and m["num_pixels"] == 5


def test_class_absent_from_gt_and_prediction_is_nan_and_excluded():
    gt = np.array([[0, 1], [1, 1]])
    pred = np.array([[0, 1], [2, 1]])  # class 2 predicted but absent from GT: IoU 0, counted
    cm = ConfusionMatrix(4)
    cm.update(gt, pred)
    m = cm.compute()
    assert m["iou"][0] == 1.0 and m["iou"][1] == pytest.approx(2 / 3) and m["iou"][2] == 0.0
    assert math.isnan(m["iou"][3])  # class 3: absent from both
    assert m["miou"] == pytest.approx((1 + 2 / 3 + 0) / 3)  # mean over 3 classes, not 4
    assert m["miou_fg"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["pixacc"] == pytest.approx(3 / 4)


def test_accumulates_over_images_and_matches_pixel_loop():
    rng = np.random.default_rng(0)
    cm = ConfusionMatrix(5)
    loop = np.zeros((5, 5), dtype=np.int64)
    for _ in range(3):
        gt = rng.integers(0, 5, size=(7, 9)).astype(np.uint8)
        gt[rng.random(gt.shape) < 0.2] = 255
        pred = rng.integers(0, 5, size=(7, 9)).astype(np.uint8)
        cm.update(gt, pred)
        np.testing.assert_array_equal(
            confusion_counts(gt, pred, 5), confusion_counts(gt.astype(np.int64), pred.astype(np.int32), 5)
        )
        for g, p in zip(gt.ravel(), pred.ravel(), strict=True):  # the authors' per-pixel loop
            if g < 5:
                loop[g, p] += 1
    np.testing.assert_array_equal(cm.matrix, loop)
    cm.reset()
    assert cm.matrix.sum() == 0


def test_all_void_image_adds_nothing_and_empty_matrix_gives_nan():
    counts = confusion_counts(np.full((3, 3), 255), np.zeros((3, 3)), 21)
    assert counts.shape == (21, 21) and counts.sum() == 0
    m = metrics_from_confusion(counts)
    assert math.isnan(m["miou"]) and math.isnan(m["pixacc"])


def test_coco_size_matrix():
    gt = np.array([[0, 80], [80, 255]])
    pred = np.array([[0, 80], [3, 3]])
    m = metrics_from_confusion(confusion_counts(gt, pred, 81))
    assert m["iou"][80] == 0.5 and m["iou"][3] == 0.0 and m["iou"][0] == 1.0
    assert sum(not math.isnan(v) for v in m["iou"]) == 3


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])  # the uint8 fast path and the general one
def test_prediction_on_void_pixel_is_ignored_but_elsewhere_rejected(dtype):
    def a(rows):
        return np.array(rows, dtype=dtype)

    assert confusion_counts(a([[0, 255]]), a([[0, 255]]), 3).sum() == 1
    with pytest.raises(ValueError, match="prediction holds class id 255"):
        confusion_counts(a([[0, 1]]), a([[0, 255]]), 3)
    with pytest.raises(ValueError, match="prediction holds class id 3"):
        confusion_counts(a([[0, 1]]), a([[0, 3]]), 3)
    with pytest.raises(ValueError, match="ground truth holds class id 7"):
        confusion_counts(a([[0, 7]]), a([[0, 1]]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_counts(np.zeros((2, 3)), np.zeros((3, 2)), 3)
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(1)
