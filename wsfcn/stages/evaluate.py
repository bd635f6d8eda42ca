"""Stage ``evaluate``: score a prediction folder against the ground truth; log to the training's run."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsfcn.config import Params
from wsfcn.data.classes import check_classes, class_names


@dataclass(frozen=True)
class EvalResult:
    out_dir: Path
    metrics: dict[str, Any]
    info: dict[str, Any]

    @property
    def has_masks(self) -> bool:
        """False when the split had no ground-truth masks: no mIoU, the tags' mAP instead."""
        return self.metrics.get("ground_truth", True)

    @property
    def miou(self) -> float:
        """mIoU in percent (method §8.2)."""
        return 100.0 * self.metrics["miou"]

    @property
    def pixacc(self) -> float:
        """PixAcc in percent."""
        return 100.0 * self.metrics["pixacc"]


def default_predictions(params: Params) -> Path:
    """The folder evaluate scores: the CRF stage's when ``eval.crf``, else infer's."""
    return Path(params.eval.out_dir) / "crf_masks" if params.eval.crf else Path(params.infer.out_dir)


def evaluate(
    params: Params, *, pred: str | Path | None = None, workers: int = 0, figures: bool = True
) -> EvalResult:
    """Score a prediction folder (``masks/`` + ``summary.json``) against the ground truth (method §8.2).

    Writes ``metrics.json``, ``per_class.csv``/``.json``, ``confusion.csv`` (and, with ``figures``,
    ``confusion.png``, ``iou.png``) to ``eval.out_dir``. A missing or mis-sized prediction, or a split
    without ground truth, raises :class:`~wsfcn.evaluate.folder.EvaluationError` naming the file.
    """
    from wsfcn.data.datasets import build_dataset
    from wsfcn.evaluate.folder import EvaluationError, evaluate_folder, prediction_info, write_reports
    from wsfcn.infer.manifest import check_manifest, read_manifest

    pred = Path(pred or default_predictions(params))
    out = Path(params.eval.out_dir)
    summary = read_manifest(pred)
    if summary["split"] == "test":
        raise EvaluationError("the test split has no public ground truth: submit results/VOC2012/...")
    check_manifest(
        summary, pred, split=params.infer.split, checkpoint=params.infer.checkpoint, dataset=params.data.name
    )
    trained_on = summary.get("checkpoint_dataset")
    have = summary.get("checkpoint_classes") or class_names(trained_on or "")
    if trained_on and params.data.name != "folder":  # refused before any data file is read
        want = class_names(params.data.name)
        check_classes(summary["checkpoint"], trained_on, params.data.name, have=have, want=want)
    dataset = build_dataset(params.data, summary["split"], train=False)
    if trained_on:
        want = dataset.class_names
        check_classes(summary["checkpoint"], trained_on, params.data.name, have=have, want=want)
    ids = summary["ids"]
    if params.data.name == "folder":  # your own masks may cover some images only: score those
        ids = [i for i in ids if dataset.mask_path(i) is not None]
        if not ids:
            return _without_masks(dataset, summary, out)
    start = time.perf_counter()
    cm = evaluate_folder(ids, dataset.mask_path, pred / "masks", dataset.num_classes, workers=workers)
    info = prediction_info(summary) | {"eval_seconds": round(time.perf_counter() - start, 3)}
    info |= {"masked_images": len(ids)} if len(ids) < len(summary["ids"]) else {}
    metrics = write_reports(cm, dataset.class_names, out, info)
    if metrics["miou"] is None or metrics["pixacc"] is None:
        raise EvaluationError(f"{out}/metrics.json: mIoU / PixAcc undefined (no labelled pixels?)")
    if figures:
        from wsfcn.evaluate.figures import confusion_png, iou_bars_png

        tag = (" [§ GT image labels]" if info["gt_labels_filter"] else "") + (" [CRF]" if info["crf"] else "")
        confusion_png(cm.matrix, dataset.class_names, out / "confusion.png")
        title = f"{info['split']}{tag}: mIoU {100 * metrics['miou']:.1f}%"
        iou_bars_png(cm.compute()["iou"], dataset.class_names, out / "iou.png", title=title)
    return EvalResult(out, metrics, info)


def _without_masks(dataset: Any, summary: dict[str, Any], out: Path) -> EvalResult:
    """A split with tags and no mask: ``metrics.json`` says that no mIoU / PixAcc exists and gives the
    mAP of the image-level class scores against the tags (``wsfcn.evaluate.classification``)."""
    from wsfcn.evaluate.classification import tag_map
    from wsfcn.evaluate.folder import EvaluationError, prediction_info

    ids, names = summary["ids"], dataset.class_names
    if "scores" not in summary:
        raise EvaluationError(f"split {summary['split']!r} has no masks and its predictions no class scores")
    mean_ap, aps = tag_map(summary["scores"], {i: dataset.labels_of(i) for i in ids}, ids, len(names) - 1)
    note = f"split {summary['split']!r} has no masks: no mIoU or PixAcc; mAP ranks the class scores by tag"
    metrics = {
        "mIoU": None, "PixAcc": None, "miou": None, "miou_fg": None, "pixacc": None, "ground_truth": False,
        "note": note, "mAP": None if mean_ap != mean_ap else round(100 * mean_ap, 2),
        "num_classes": len(names), **prediction_info(summary),
        "AP": {n: None if a != a else round(100 * a, 2) for n, a in zip(names[1:], aps, strict=True)},
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("per_class.json", "confusion.csv", "confusion.png", "iou.png"):  # a masked split's
        (out / stale).unlink(missing_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    with open(out / "per_class.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class_id", "class", "IoU", "AP"])
        writer.writerows([c, n, "", metrics["AP"][n]] for c, n in enumerate(names[1:], 1))
    return EvalResult(out, metrics, prediction_info(summary))


def evaluation_numbers(result: EvalResult) -> tuple[dict[str, float], dict[str, str]]:
    """The MLflow metrics (percent, as the paper) and ``eval.*`` tags of an evaluation."""
    m, info = result.metrics, result.info
    pct = {"mIoU": m.get("mIoU"), "PixAcc": m.get("PixAcc"), "val_tags_mAP": m.get("mAP")}
    pct["mIoU_fg"] = None if m.get("miou_fg") is None else round(100 * m["miou_fg"], 2)
    pct |= {f"IoU.{name}": round(100 * v, 2) for name, v in m.get("iou", {}).items() if v is not None}
    pct |= {"eval.num_images": info["num_images"], "eval.split_size": info["split_size"]}
    keys = ("crf", "gt_labels_filter", "scales", "flip", "split", "subset", "checkpoint", "checkpoint_sha256")
    settings = {k: info.get(k) for k in keys}
    return (
        {k: float(v) for k, v in pct.items() if v is not None},
        {f"eval.{k}": json.dumps(v) if not isinstance(v, str) else v for k, v in settings.items()},
    )


def log_evaluation(result: EvalResult) -> str | None:
    """Log an evaluation to the MLflow run that trained its checkpoint (recorded by the train stage in the
    checkpoint and by infer in the manifest); the run id, or None when the checkpoint names no run."""
    run = result.info.get("mlflow_run") or {}
    if not run.get("uri") or not run.get("run_id"):
        return None
    from wsfcn.integrations.mlflow_log import log_evaluation as log_to_run

    metrics, tags = evaluation_numbers(result)
    files = [result.out_dir / n for n in ("metrics.json", "per_class.csv") if (result.out_dir / n).is_file()]
    log_to_run(run["uri"], run["run_id"], metrics, tags, files)
    return run["run_id"]


def report_logged(name: str, log: Callable[[], str | None]) -> None:
    """Run ``log()`` (an MLflow upload) and say on stderr where it went; a tracking failure is a warning,
    not an error: the stage's files hold the numbers."""
    try:
        run_id = log()
    except Exception as err:  # the MLflow store moved, the run was deleted ...
        print(f"{name}: warning: not logged to MLflow ({type(err).__name__}: {err})", file=sys.stderr)
        return
    where = f"MLflow run {run_id}" if run_id else "no MLflow run (the checkpoint records none)"
    print(f"{name}: logged to {where}", file=sys.stderr)


def has_ground_truth(params: Params, ids: list[str]) -> bool:
    """Whether ``infer.split`` has public masks for ``ids`` (VOC test has none)."""
    from wsfcn.data.datasets import build_dataset

    if params.infer.split == "test":
        return False
    dataset = build_dataset(params.data, params.infer.split, train=False)
    return any(dataset.mask_path(i) is not None for i in ids)
