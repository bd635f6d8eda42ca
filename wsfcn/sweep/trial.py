"""One sweep trial (``pipeline/ablate.py``): train → infer → (CRF) → evaluate, one MLflow child run.

``run_trial`` is the body of a Ray Tune trial and also runs without Ray. It calls the same stage
functions as ``pipeline/*.py`` (:mod:`wsfcn.stages`), in one process: train (or reuse a finished
training with equal params, under a file lock), predict ``infer.split`` from ``infer.checkpoint``
(method §7), dense CRF when ``eval.crf``, evaluate (method §8.2; mIoU and PixAcc logged in
percent). A skipped image or a failed CRF is an error naming the folder, never a lower score.
``prepare_data`` runs the download and prepare stages once per distinct ``data`` section, in the
driver, before trials start.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from wsfcn.config import DataParams, Params
from wsfcn.errors import InputError
from wsfcn.file_lock import file_lock
from wsfcn.stages import crf as crf_stage
from wsfcn.stages import download as download_stage
from wsfcn.stages import evaluate as evaluate_stage
from wsfcn.stages import infer as infer_stage
from wsfcn.stages import prepare as prepare_stage
from wsfcn.stages import train as train_stage
from wsfcn.sweep.given import describe_checkpoint
from wsfcn.sweep.plan import TrialSpec, child_tags, distinct_data

Train = Callable[..., Any]  # (params, *, mlflow_run, report, quiet) -> wsfcn.train.loop.FitResult
Post = Callable[..., dict]  # (params, *, quiet) -> {"mIoU": %, "PixAcc": %, "files": [...]}


class TrialStageError(InputError, RuntimeError):
    """Inference or CRF left images without a prediction; the message names the summary file."""


def train_or_reuse(params: Params, train: Train, mlflow_run: tuple[str, str], report, quiet: bool):
    """Train, unless ``train.out_dir/last.pt`` already holds these params, trained by this training code,
    after ``train.epochs``."""
    with file_lock(Path(params.train.out_dir) / ".lock"):
        finished = train_stage.finished_training(params)
        if finished is not None:
            return finished, True
        return train(params, mlflow_run=mlflow_run, report=report, quiet=quiet), False


def run_trial(
    spec: TrialSpec, *, train: Train | None = None, post: Post | None = None, report=None, quiet: bool = True
) -> dict[str, Any]:
    """Train → infer → (CRF) → evaluate one trial and log it as a child of ``spec.parent_run_id``.

    ``train`` defaults to :func:`wsfcn.stages.train.run_fit`, ``post`` to :func:`infer_and_evaluate`. With
    ``spec.checkpoint`` (a given checkpoint) nothing trains and the child gets its provenance tags.
    Returns the trial's summary (also written to ``<folder>/result.json``). An exception marks the
    child FAILED (tag ``wsfcn.error``, traceback in ``<folder>/error.txt``) and is re-raised.
    """
    import torch

    from wsfcn.integrations.mlflow_log import tracked_run
    from wsfcn.integrations.ray_cluster import node_id

    train = train or train_stage.run_fit
    post = post or infer_and_evaluate
    params = spec.to_params()
    folder = Path(spec.folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "error.txt").unlink(missing_ok=True)
    try:
        with tracked_run(
            params, spec.experiment, spec.trial_id, root=spec.root, tags=child_tags(spec, params)
        ) as run:
            run.set_tags({"wsfcn.node_id": node_id(), "wsfcn.torch_threads": str(torch.get_num_threads())})
            fitted, reused, given = None, False, None
            if spec.checkpoint:  # evaluate a given checkpoint: no training
                given = describe_checkpoint(spec.checkpoint, spec.checkpoint_sha256)
                run.set_tags(given.tags)
            else:
                fitted, reused = train_or_reuse(params, train, (run.uri, run.run_id), report, quiet)
                if reused:
                    run.set_tags({"wsfcn.train_reused": str(fitted.out_dir)})
                run.set_tags({"wsfcn.code_fingerprint": fitted.code_fingerprint})
            outcome = post(params, quiet=quiet)
            numbers = {
                "n_params": (given or fitted).n_params,
                **{k: outcome[k] for k in ("mIoU", "PixAcc") if k in outcome},
            }
            run.log_metrics(numbers)
            for path in outcome.get("files", []):
                run.log_artifact(path, "eval")
            run.set_tags({"checkpoint.best": str(fitted.best) if fitted else spec.checkpoint})
    except BaseException:
        (folder / "error.txt").write_text(traceback.format_exc())
        raise
    summary = {"trial": spec.trial_id, "run_id": run.run_id, "status": "FINISHED", **numbers,
               "best_epoch": fitted.best_epoch if fitted else None, "train_reused": reused,
               "checkpoint": spec.checkpoint or str(fitted.best), "folder": str(folder)}  # fmt: skip
    (folder / "result.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def prepare_data(datas: Iterable[DataParams], *, quiet: bool = True) -> list[Path]:
    """Download (or generate) and prepare each distinct data setting once; return the prepared folders."""
    folders = []
    for data in distinct_data(datas):
        params = Params(data=data)
        download_stage.download(params, quiet=quiet)
        folders.append(prepare_stage.prepare(params, progress=not quiet).folder)
    return folders


def infer_and_evaluate(params: Params, *, quiet: bool = True, processes: int = 1) -> dict[str, Any]:
    """The infer, crf and evaluate stages in a row; ``processes`` CRF processes and decoding threads.

    Returns ``{"mIoU": %, "PixAcc": %, "files": [metrics.json, per_class.csv]}``; a split without
    ground truth (VOC test) returns no numbers, only the predictions on disk (``files`` empty).
    """
    predicted = infer_stage.infer(params, quiet=quiet)
    if predicted.skipped:
        raise TrialStageError(
            f"{len(predicted.skipped)} images skipped, see {predicted.out_dir}/summary.json"
        )
    if params.eval.crf:
        refined = crf_stage.crf(params, processes=params.eval.crf_params.processes or processes, quiet=True)
        if refined.skipped:
            first = refined.skipped[0]
            raise TrialStageError(
                f"CRF failed on {len(refined.skipped)} images (first {first['id']}: {first['error']}), "
                f"see {refined.out_dir}/summary.json"
            )
    if not evaluate_stage.has_ground_truth(params, predicted.summary["ids"]):
        return {"files": []}  # no public ground truth: predictions only (contract: no mIoU logged)
    result = evaluate_stage.evaluate(params, workers=processes)
    return {
        "mIoU": result.miou,
        "PixAcc": result.pixacc,
        "files": [str(result.out_dir / "metrics.json"), str(result.out_dir / "per_class.csv")],
    }
