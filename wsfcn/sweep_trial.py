"""One sweep trial (``pipeline/ablate.py``): train → infer → (CRF) → evaluate → MLflow child run.

``run_trial`` is the body of a Ray Tune trial and also runs without Ray. The post-training part,
``infer_and_evaluate``, does what ``pipeline/infer.py``, ``pipeline/crf.py`` and
``pipeline/evaluate.py`` do in a row, in one process: predict ``infer.split`` with ``infer.*`` from
``infer.checkpoint`` (METHOD §7), dense CRF when ``eval.crf``, score the masks (METHOD §8.2; mIoU
and PixAcc logged in percent). A skipped image or a failed CRF is an error naming the folder, never
a lower score. ``prepare_data`` runs the download and prepare stages once per distinct ``data``
section, in the driver, before trials start.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import time
import traceback
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wsfcn.checkpoints import fingerprint
from wsfcn.config import ConfigError, DataParams, Params
from wsfcn.sweep import TrialSpec, child_tags, distinct_data

Train = Callable[..., Any]  # (params, *, mlflow_run, report, quiet) -> wsfcn.training.FitResult
Post = Callable[..., dict]  # (params, *, quiet) -> {"mIoU": %, "PixAcc": %, "files": [...], ...}


@contextmanager
def file_lock(path: Path):
    """An exclusive ``flock`` on ``path`` (trials sharing one training folder wait for each other)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def train_or_reuse(params: Params, train: Train, mlflow_run: tuple[str, str], report, quiet: bool):
    """Train, unless ``train.out_dir/last.pt`` already holds these params after ``train.epochs``."""
    from wsfcn.checkpoints import newest_resumable
    from wsfcn.training import FitResult

    out = Path(params.train.out_dir)
    with file_lock(out / ".lock"):
        found = newest_resumable([out / "last.pt"], fingerprint(params))
        if found is not None and found[1]["epoch"] == params.train.epochs:
            return FitResult.from_checkpoint(out / "last.pt"), True
        return train(params, mlflow_run=mlflow_run, report=report, quiet=quiet), False


def run_trial(
    spec: TrialSpec, *, train: Train | None = None, post: Post | None = None, report=None, quiet: bool = True
) -> dict[str, Any]:
    """Train → infer → (CRF) → evaluate one trial and log it as a child of ``spec.parent_run_id``.

    ``train`` defaults to :func:`wsfcn.integrations.ray_train.run_training`, ``post`` to
    :func:`infer_and_evaluate`. Returns the trial's summary (also written to
    ``<folder>/result.json``). An exception marks the child FAILED (tag ``wsfcn.error``, traceback in
    ``<folder>/error.txt``) and is re-raised.
    """
    from mlflow.entities import Metric

    from wsfcn.integrations.mlflow_log import MLflowReporter, start_run

    if train is None:
        from wsfcn.integrations.ray_train import run_training as train
    post = post or infer_and_evaluate
    params = spec.to_params()
    folder = Path(spec.folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "error.txt").unlink(missing_ok=True)
    run_id = start_run(params, spec.experiment, spec.trial_id, root=spec.root)
    tracker = MLflowReporter(params.tracking.uri, run_id)
    tracker.set_tags(child_tags(spec, params))
    try:
        fitted, reused = train_or_reuse(params, train, (tracker.uri, run_id), report, quiet)
        if reused:
            tracker.set_tags({"wsfcn.train_reused": str(fitted.out_dir)})
        outcome = post(params, quiet=quiet)
        numbers = {"n_params": fitted.n_params, **{k: outcome[k] for k in ("mIoU", "PixAcc") if k in outcome}}
        now = int(time.time() * 1000)
        tracker.client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in numbers.items()])
        for path in outcome.get("files", []):
            tracker.log_artifact(path, "eval")
        tracker.set_tags({"checkpoint.best": str(fitted.best)})
    except BaseException as err:
        (folder / "error.txt").write_text(traceback.format_exc())
        tracker.set_tags({"wsfcn.error": f"{type(err).__name__}: {err}"[:4000]})
        tracker.finish("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    tracker.finish("FINISHED")
    summary = {"trial": spec.trial_id, "run_id": run_id, "status": "FINISHED", **numbers,
               "best_epoch": fitted.best_epoch, "train_reused": reused, "folder": str(folder)}  # fmt: skip
    (folder / "result.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


# ---------------------------------------------------------------------------------------------
# stages
INFER_OPTIONS = ("scales", "flip", "pad_size", "fp_cut", "bg_mode", "bg_constant", "bg_pow")


class TrialStageError(RuntimeError):
    """Inference or CRF left images without a prediction; the message names the summary file."""


def prepare_data(datas: Iterable[DataParams], *, quiet: bool = True) -> list[Path]:
    """Download (or generate) and prepare each distinct data setting once; return the prepared folders."""
    from wsfcn.data.prepare import download_dataset, prepare_dataset

    folders = []
    for data in distinct_data(datas):
        download_dataset(data, progress=False if quiet else None)
        folders.append(prepare_dataset(data, progress=not quiet, workers=0))
    return folders


def _device(params: Params) -> str:
    import torch

    if params.train.device == "cpu":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _crf(params: Params, dataset, summary: dict[str, Any], processes: int) -> Path:
    """Dense CRF on the saved probabilities into ``<eval.out_dir>/crf_masks``; return its masks folder."""
    from wsfcn.crf import CRFJob, CRFSettings, run_crf_jobs

    src, out = Path(params.infer.out_dir), Path(params.eval.out_dir) / "crf_masks"
    (out / "masks").mkdir(parents=True, exist_ok=True)
    probs, masks = src / "probs", out / "masks"
    jobs = [
        CRFJob(i, str(dataset.image_path(i)), str(probs / f"{i}.npz"), str(masks / f"{i}.png"))
        for i in summary["ids"]
    ]
    crf = params.eval.crf_params
    settings = CRFSettings(**{f.name: getattr(crf, f.name) for f in dataclasses.fields(CRFSettings)})
    failed = [(name, err) for name, err in run_crf_jobs(jobs, settings, crf.processes or processes) if err]
    summary = dict(summary, crf=True, crf_settings=dataclasses.asdict(settings), crf_failed=failed)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if failed:
        raise TrialStageError(f"CRF failed on {len(failed)} images (first {failed[0][0]}: {failed[0][1]})")
    return out / "masks"


def infer_and_evaluate(params: Params, *, quiet: bool = True, processes: int = 1) -> dict[str, Any]:
    """Predict ``infer.split`` with ``infer.*`` from ``infer.checkpoint``, CRF if ``eval.crf``, evaluate.

    Returns ``{"mIoU": %, "PixAcc": %, "files": [metrics.json, per_class.csv]}``; a split without
    ground truth (VOC test) returns no numbers, only the predictions on disk (``files`` empty).
    """
    from wsfcn.checkpoints import load_model
    from wsfcn.data import build_dataset
    from wsfcn.evaluation import evaluate_folder, prediction_info, write_reports
    from wsfcn.predict import predict_split, read_split_ids

    cfg = params.infer
    if cfg.use_gt_labels and cfg.split == "test":
        raise ConfigError("infer.use_gt_labels (§) needs image labels, which the test split does not have")
    device = _device(params)
    model, _ = load_model(cfg.checkpoint, device=device)
    dataset = build_dataset(params.data, cfg.split, train=False)
    ids = read_split_ids(Path(params.data.root) / params.data.name / "lists" / f"{cfg.split}.txt")
    ids = ids[: cfg.max_images] if cfg.max_images > 0 else ids
    options = {k: getattr(cfg, k) for k in INFER_OPTIONS} | {"device": device}
    summary = predict_split(
        model, dataset, ids, cfg.out_dir, options=options,
        use_gt_labels=cfg.use_gt_labels, save_probabilities=cfg.save_probs or params.eval.crf,
        test_layout=cfg.split == "test", progress=not quiet,
        info={"split": cfg.split, "dataset": params.data.name, "checkpoint": str(cfg.checkpoint)},
    )  # fmt: skip
    if summary["num_skipped"]:
        raise TrialStageError(f"{summary['num_skipped']} images skipped, see {cfg.out_dir}/summary.json")
    masks = _crf(params, dataset, summary, processes) if params.eval.crf else Path(cfg.out_dir) / "masks"
    if cfg.split == "test" or all(dataset.mask_path(i) is None for i in ids):
        return {"files": []}  # no public ground truth: predictions only (contract: no mIoU logged)
    cm = evaluate_folder(ids, dataset.mask_path, masks, dataset.num_classes, workers=processes)
    info = prediction_info(dict(summary, crf=params.eval.crf))
    metrics = write_reports(cm, dataset.class_names, params.eval.out_dir, info)
    out = Path(params.eval.out_dir)
    if metrics["miou"] is None or metrics["pixacc"] is None:
        raise TrialStageError(f"{out}/metrics.json: mIoU / PixAcc undefined (no labelled pixels?)")
    return {
        "mIoU": 100.0 * metrics["miou"],
        "PixAcc": 100.0 * metrics["pixacc"],
        "files": [str(out / "metrics.json"), str(out / "per_class.csv")],
    }
