"""Stage ``pseudo_masks``: masks of the training images for a second-stage, fully supervised model.

The training split is predicted with the inference of the ``infer`` stage (``infer.scales`` × flip, the
background of ``infer.bg_mode``) and each image's own tags as the class filter: the tags are the
supervision, so using them on the training images is legitimate. ``pseudo_masks.crf`` adds the dense
CRF (``eval.crf_params``). Layout of ``pseudo_masks.out_dir`` (VOC ``SegmentationClassAug``):

* ``SegmentationClassAug/<id>.png``: class-index PNGs (VOC palette, 0 background);
* ``JPEGImages/<id>.jpg``: a link to each image (whatever its format), so the folder is a ``data_root``;
* ``train_aug.txt``: one ``<id>`` a line (mmsegmentation's split file);
* ``train_aug_pairs.txt``: ``JPEGImages/<id>.jpg SegmentationClassAug/<id>.png`` a line (VOC/DeepLab);
* ``classes.txt``: the class names, background first (the masks' values index it);
* ``metrics.json``: counts, and where the split has ground-truth masks, their mIoU / PixAcc (percent).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsfcn.config import Params
from wsfcn.data.classes import check_classes, class_names

MASKS = "SegmentationClassAug"
IMAGES = "JPEGImages"


@dataclass(frozen=True)
class PseudoMasksResult:
    out_dir: Path
    metrics: dict[str, Any]

    @property
    def scored(self) -> bool:
        """Whether ground-truth masks existed for some images (then ``mIoU``/``PixAcc`` are set)."""
        return self.metrics.get("mIoU") is not None


def pseudo_masks(params: Params, *, device: str | None = None, quiet: bool = False) -> PseudoMasksResult:
    """Predict ``pseudo_masks.split`` (default ``data.train_split``) with the image tags as the class filter
    and write the layout above; score the masks where ground truth exists."""
    from wsfcn.checkpoints import load_model, stored_class_names, stored_mlflow_run
    from wsfcn.data.datasets import build_dataset
    from wsfcn.device import resolve_device
    from wsfcn.infer.manifest import checkpoint_record
    from wsfcn.infer.options import InferOptions
    from wsfcn.infer.split import predict_split, read_split_ids

    cfg = params.pseudo_masks
    split = cfg.split or params.data.train_split
    device = resolve_device(device or params.train.device)
    model, model_params = load_model(cfg.checkpoint, device=device)
    have = class_names(model_params.data.name, stored_class_names(cfg.checkpoint))
    if params.data.name != "folder":  # the catalogue's classes: refused before any data file is read
        want = class_names(params.data.name)
        check_classes(cfg.checkpoint, model_params.data.name, params.data.name, have=have, want=want)
    dataset = build_dataset(params.data, split, train=False)
    if params.data.name == "folder":  # a folder dataset's own classes, compared name by name
        want = dataset.class_names
        check_classes(cfg.checkpoint, model_params.data.name, params.data.name, have=have, want=want)
    every = read_split_ids(Path(params.data.root) / params.data.name / "lists" / f"{split}.txt")
    ids = every[: cfg.max_images] if cfg.max_images > 0 else every
    out = Path(cfg.out_dir)
    for name in (MASKS, IMAGES, "raw"):
        shutil.rmtree(out / name, ignore_errors=True)
    raw = out / "raw"
    info = {"split": split, "dataset": params.data.name, **checkpoint_record(cfg.checkpoint)}
    info |= {"mlflow_run": stored_mlflow_run(cfg.checkpoint)}
    summary = predict_split(
        model, dataset, ids, raw, options=InferOptions.from_params(params.infer, device=device),
        use_gt_labels=True, save_probabilities=cfg.crf, progress=not quiet, info=info,
    )  # fmt: skip
    done = [i for i in ids if i not in {s["id"] for s in summary["skipped"]}]
    skipped = list(summary["skipped"])
    if cfg.crf:
        skipped += _crf(params, dataset, done, raw, out / MASKS, quiet=quiet)
        done = [i for i in done if i not in {s["id"] for s in skipped}]
    else:
        (raw / "masks").rename(out / MASKS)
    shutil.rmtree(raw)
    _write_layout(out, done, dataset.image_path, dataset.class_names)
    metrics = {**info, "crf": cfg.crf, "num_images": len(done), "split_size": len(every), "skipped": skipped}
    metrics |= {"settings": summary["settings"]} | _score(dataset, done, out / MASKS)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return PseudoMasksResult(out, metrics)


def _crf(params: Params, dataset: Any, ids: list[str], raw: Path, masks: Path, *, quiet: bool) -> list[dict]:
    """Dense CRF of the saved probabilities into ``masks``; the images it skipped, with the reason."""
    from wsfcn.infer.crf import refine_folder
    from wsfcn.infer.options import CRFOptions

    masks.mkdir(parents=True)
    options, processes = CRFOptions.from_params(params.eval.crf_params), params.eval.crf_params.processes
    return refine_folder(
        ids, dataset.image_path, raw / "probs", masks, options, processes, progress=not quiet
    )


def _write_layout(out: Path, ids: list[str], image_path: Any, names: list[str]) -> None:
    """``JPEGImages/<id>.jpg`` links, the two split files and ``classes.txt``."""
    (out / IMAGES).mkdir()
    for image_id in ids:
        source, link = Path(image_path(image_id)).resolve(), out / IMAGES / f"{image_id}.jpg"
        try:
            os.symlink(source, link)
        except OSError:  # no symlinks here (some file systems): a copy
            shutil.copyfile(source, link)
    (out / "train_aug.txt").write_text("".join(f"{i}\n" for i in ids))
    (out / "train_aug_pairs.txt").write_text("".join(f"{IMAGES}/{i}.jpg {MASKS}/{i}.png\n" for i in ids))
    (out / "classes.txt").write_text("".join(f"{n}\n" for n in names))


def _score(dataset: Any, ids: list[str], masks: Path) -> dict[str, Any]:
    """mIoU / PixAcc (percent) of the masks of ``ids`` that have ground truth (None, None when none has)."""
    from wsfcn.evaluate.folder import evaluate_folder

    scored = [i for i in ids if dataset.mask_path(i) is not None]
    if not scored:
        return {"mIoU": None, "PixAcc": None, "scored_images": 0, "note": "no ground-truth masks to score"}
    numbers = evaluate_folder(scored, dataset.mask_path, masks, dataset.num_classes).compute()
    pct = {k: None if v != v else round(100 * v, 2) for k, v in numbers.items() if k in ("miou", "pixacc")}
    iou = {
        n: None if v != v else round(100 * v, 2)
        for n, v in zip(dataset.class_names, numbers["iou"], strict=True)
    }
    return {
        "mIoU": pct["miou"],
        "PixAcc": pct["pixacc"],
        "scored_images": len(scored),
        "iou": iou,
    }


def log_pseudo_masks(result: PseudoMasksResult) -> str | None:
    """Log the scores (``pseudo_masks.mIoU`` / ``.PixAcc``, ``_crf`` suffixed with the CRF) and settings to
    the MLflow run that trained the checkpoint; the run id, or None when it names no run or nothing was
    scored."""
    m = result.metrics
    run = m.get("mlflow_run") or {}
    if not run.get("uri") or not run.get("run_id") or not result.scored:
        return None
    from wsfcn.integrations.mlflow_log import log_evaluation as log_to_run

    suffix = "_crf" if m["crf"] else ""
    numbers = {f"pseudo_masks.mIoU{suffix}": m["mIoU"], f"pseudo_masks.PixAcc{suffix}": m["PixAcc"]}
    numbers[f"pseudo_masks.scored_images{suffix}"] = m["scored_images"]
    tags = {"pseudo_masks.split": m["split"], "pseudo_masks.scales": json.dumps(m["settings"]["scales"])}
    log_to_run(run["uri"], run["run_id"], {k: float(v) for k, v in numbers.items()}, tags)
    return run["run_id"]
