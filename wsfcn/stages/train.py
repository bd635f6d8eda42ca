"""Stage ``train``: in-process or on Ray Train workers, with MLflow tracking; ``metrics.json`` and
``history.csv``; resume from, or reuse, a ``last.pt`` of the same params and training code."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsfcn.code_version import training_code_fingerprint
from wsfcn.config import Params
from wsfcn.params_io import absolute_paths, fingerprint
from wsfcn.units import Report, in_percent

# numbers of the last epoch (and the best epoch's val_*) that the train stage's metrics.json keeps
SUMMARY_KEYS = ("loss", "loss_cls", "loss_mask", "mAP", "images_per_s", "val_mIoU", "val_pixacc", "val_mAP",
                "val_loss")  # fmt: skip


def run_fit(
    params: Params,
    *,
    report: Report | None = None,
    mlflow_run: tuple[str, str] | None = None,
    resume: bool = True,
    quiet: bool = False,
    worker_resources: dict[str, float] | None = None,
    inside_tune: bool = False,
):
    """Train in-process (``train.num_workers == 0``) or on Ray Train workers; return the FitResult.

    In-process, ``report`` and the MLflow run ``mlflow_run = (uri, run_id)`` receive the epoch
    reports; on Ray, rank 0 logs to ``mlflow_run`` from inside its worker.
    """
    from wsfcn.train.loop import FitResult, fit

    if params.train.num_workers == 0:
        from wsfcn.integrations.mlflow_log import MLflowReporter
        from wsfcn.integrations.ray_train import chain

        reporter = MLflowReporter(*mlflow_run) if mlflow_run else None
        return fit(params, report=chain(report, reporter), resume=resume, quiet=quiet)
    from wsfcn.integrations.ray_train import fetch_last, launch_torch_trainer

    params = absolute_paths(params)
    last = Path(params.train.out_dir) / "last.pt"
    fresh = not resume or resumable_state(params) is None
    checkpoint = launch_torch_trainer(
        params, fit=fit, fresh=fresh, mlflow_run=mlflow_run, resume=resume, quiet=quiet,
        resources=worker_resources, inside_tune=inside_tune,
    )  # fmt: skip
    code = training_code_fingerprint()
    fetch_last(checkpoint, last, fingerprint(params), code=code, epochs=params.train.epochs)  # another node?
    return FitResult.from_checkpoint(last)


def resumable_state(params: Params) -> dict | None:
    """The state of ``train.out_dir/last.pt`` if a run of these params may resume from it, else None:
    the same params fingerprint and the same training code (:func:`training_code_fingerprint`)."""
    from wsfcn.checkpoints import newest_resumable

    last = Path(params.train.out_dir) / "last.pt"
    found = newest_resumable([last], fingerprint(params), code=training_code_fingerprint())
    return found[1] if found else None


def finished_training(params: Params):
    """The FitResult of ``train.out_dir/last.pt`` if it holds these params, trained by this training
    code, after ``train.epochs``.

    None when there is no such file, or it holds other params, other code or fewer epochs.
    """
    from wsfcn.train.loop import FitResult

    state = resumable_state(params)
    done = state is not None and state["epoch"] == params.train.epochs
    return FitResult.from_checkpoint(Path(params.train.out_dir) / "last.pt") if done else None


def write_train_outputs(result, params: Params) -> tuple[Path, Path]:
    """``metrics.json`` (final and best-epoch numbers) and ``history.csv`` (one row per epoch)."""
    history = result.history
    last = history[-1] if history else {}
    best = next((e for e in history if e["epoch"] == result.best_epoch), {})
    history = [in_percent(e) for e in history]  # percent, as every number a person reads
    last = in_percent(last)
    best = in_percent(best)
    miou = params.train.select_by in ("miou", "last") and result.best_score is not None
    metrics = {
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "best_score": 100.0 * result.best_score if miou else result.best_score,
        "select_by": params.train.select_by,
        "n_params": result.n_params,
        "params_M": round(result.n_params / 1e6, 2),
        "precision": result.precision,
        "params_fingerprint": fingerprint(params),
        "code_fingerprint": result.code_fingerprint,
        "last": {k: last[k] for k in SUMMARY_KEYS if k in last},
        "best": {k: best[k] for k in SUMMARY_KEYS if k.startswith("val_") and k in best},
    }
    metrics_path = result.out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    history_path = result.out_dir / "history.csv"
    with open(history_path, "w", newline="") as f:
        writer = csv.DictWriter(
            f, fieldnames=["epoch", *SUMMARY_KEYS, "val_score", "steps"], extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(history)
    return metrics_path, history_path


def check_before_training(params: Params) -> None:
    """The data check of ``wsfcn check-data`` on the train and val splits, before any epoch; skipped when
    the files are unchanged since the last clean check (``<data>/.wsfcn-check.json``)."""
    from wsfcn.data.check import check_once, format_problems
    from wsfcn.data.io import default_workers
    from wsfcn.errors import DataError

    folder = Path(params.data.root) / params.data.name
    splits = list(dict.fromkeys([params.data.train_split, params.data.val_split]))
    problems = check_once(
        folder, splits, [params.data.train_split], workers=default_workers(), progress=False
    )
    if problems:
        raise DataError(
            f"{len(problems)} problem(s) in {folder} found before training (wsfcn check-data lists them):\n"
            + format_problems(problems, 20)
        )
    if params.train.select_by == "miou":  # your own images may come without masks: no val mIoU to select by
        from wsfcn.config import ConfigError
        from wsfcn.data.datasets import build_dataset

        val = build_dataset(params.data, params.data.val_split, train=False)
        if not any(val.mask_path(i) is not None for i in val.ids):
            raise ConfigError(
                f"train.select_by=miou: the {params.data.val_split} images of {folder} have no masks, so "
                "no val mIoU; select by last or val_loss"
            )


@dataclass(frozen=True)
class TrainResult:
    fit: Any  # wsfcn.train.loop.FitResult
    metrics_path: Path
    history_path: Path
    run_id: str | None = None


def train(params: Params, *, experiment: str, resume: bool = True, quiet: bool = False) -> TrainResult:
    """Train ``params`` as one MLflow run of ``experiment`` (``tracking.enabled``); write metrics.json
    and history.csv; tag the run with the checkpoints. Re-running the same ``train.run_name`` resumes."""
    from contextlib import nullcontext

    check_before_training(params)
    tracker = nullcontext()
    if params.tracking.enabled:
        from wsfcn.integrations.mlflow_log import tracked_run

        resuming = resume and resumable_state(params) is not None
        code = {"wsfcn.code_fingerprint": training_code_fingerprint()}
        tracker = tracked_run(params, experiment, params.train.run_name, resume=resuming, tags=code)
    with tracker as run:
        mlflow_run = (run.uri, run.run_id) if run else None
        result = run_fit(params, mlflow_run=mlflow_run, resume=resume, quiet=quiet)
        metrics_path, history_path = write_train_outputs(result, params)
        if run:
            from wsfcn.checkpoints import record_mlflow_run

            record_mlflow_run([result.last, result.best], run.uri, run.run_id)
            run.set_tags(
                {
                    "checkpoint.best": str(result.best.resolve()),
                    "checkpoint.last": str(result.last.resolve()),
                    "wsfcn.precision": result.precision,
                    "wsfcn.code_fingerprint": result.code_fingerprint,  # the process that trained
                }
            )
            run.log_artifact(metrics_path)
            run.log_artifact(history_path)
    return TrainResult(result, metrics_path, history_path, run.run_id if run else None)
