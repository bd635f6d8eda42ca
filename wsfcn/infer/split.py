"""Predict a whole split to files (method §7 steps 6 and 10): the loop behind ``pipeline/infer.py``.

Layout of ``out_dir``:

* ``masks/<id>.png``: indexed PNG with the VOC palette, class ids at the original size;
* ``probs/<id>.npz`` (``save_probs``): the kept fg channels as float16, input of the CRF stage;
* ``results/VOC2012/Segmentation/comp6_test_cls/<id>.png`` (``test_layout``): the evaluation
  server's layout, the same indexed PNGs;
* ``summary.json``: settings, ids, timing and every skipped image with its reason; with ``save_scores``
  also ``scores`` ({id: image-level fg class scores}), which evaluate ranks when the split has no masks.

A bad image is reported by name and skipped; the caller turns ``summary["skipped"]`` into a
non-zero exit status.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from torch import nn
from tqdm import tqdm

from wsfcn.data.ids import read_ids
from wsfcn.data.io import DataFileError, read_rgb, write_mask
from wsfcn.infer.crf import save_probs
from wsfcn.infer.multiscale import predict_image, probs_to_mask
from wsfcn.infer.options import InferOptions

TEST_LAYOUT = Path("results/VOC2012/Segmentation/comp6_test_cls")
GT_LABELS_NOTE = "§: ground-truth image labels filter the classes (uses annotation at test time)"


class SplitSource(Protocol):
    """What the loop needs from a dataset (``wsfcn.data.build_dataset`` provides it)."""

    num_classes: int

    def image_path(self, image_id: str) -> Path: ...
    def labels_of(self, image_id: str) -> list[int]: ...


def read_split_ids(list_path: str | Path) -> list[str]:
    """Ids of a split: one per line in ``<data.root>/<data.name>/lists/<split>.txt``."""
    path = Path(list_path)
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} does not exist (run the prepare stage first)")
    ids = read_ids(path)
    if not ids:
        raise DataFileError(path, "split list is empty")
    return ids


def predict_split(
    model: nn.Module,
    source: SplitSource,
    ids: Sequence[str],
    out_dir: str | Path,
    *,
    options: InferOptions,
    use_gt_labels: bool = False,
    save_probabilities: bool = False,
    test_layout: bool = False,
    save_scores: bool = False,
    info: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run :func:`wsfcn.infer.multiscale.predict_image` on every id and write the files above.

    Args:
        options: how each image is predicted (``gt_labels`` comes from ``use_gt_labels``).
        info: extra provenance stored in ``summary.json`` (split, checkpoint, ...).

    Returns:
        The summary dict (also written to ``out_dir/summary.json``).
    """
    out = Path(out_dir)
    dirs = [out / "masks"] + [out / "probs"] * save_probabilities + [out / TEST_LAYOUT] * test_layout
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    model.eval()
    skipped: list[dict[str, str]] = []
    scores: dict[str, list[float]] = {}
    start = time.perf_counter()
    for image_id in tqdm(ids, desc="infer", unit="img", disable=not progress, file=sys.stderr):
        path = source.image_path(image_id)
        try:
            image = read_rgb(path)
            gt_labels = source.labels_of(image_id) if use_gt_labels else None
            probs, kept, image_scores = predict_image(
                model, image, options, gt_labels=gt_labels, return_scores=True
            )
        except (OSError, ValueError) as err:
            tqdm.write(f"infer: skipped {image_id} ({path}): {err}", file=sys.stderr)
            skipped.append({"id": image_id, "path": str(path), "error": str(err)})
            continue
        mask = probs_to_mask(probs)
        if save_scores:
            scores[image_id] = [round(float(v), 5) for v in image_scores]
        write_mask(out / "masks" / f"{image_id}.png", mask)
        if test_layout:
            write_mask(out / TEST_LAYOUT / f"{image_id}.png", mask)
        if save_probabilities:
            save_probs(out / "probs" / f"{image_id}.npz", probs, kept)
    seconds = time.perf_counter() - start
    summary = {
        **(info or {}),
        "num_images": len(ids),
        "num_skipped": len(skipped),
        "seconds": round(seconds, 3),
        "images_per_s": round(len(ids) / seconds, 4) if seconds > 0 else None,
        "settings": options.settings() | {"use_gt_labels": bool(use_gt_labels)},
        "setting_note": GT_LABELS_NOTE if use_gt_labels else "",
        "crf": False,
        "skipped": skipped,
        "ids": list(ids),
        **({"scores": scores} if save_scores else {}),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
