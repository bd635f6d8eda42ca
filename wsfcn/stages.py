"""The pipeline's stages, one typed function each: ``pipeline/*.py`` and the sweep trial call these.

``download → prepare → train → infer → crf → evaluate → tables`` (``dvc.yaml`` chains the scripts;
a sweep trial, :mod:`wsfcn.sweep.trial`, runs ``train`` … ``evaluate`` in one process). Each takes
``Params`` (and paths or run-time choices), does the stage's work and returns a small frozen result;
a bad input raises an error that names it (the entry points print it as one line). Ray and MLflow are
reached only through :mod:`wsfcn.integrations`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsfcn.config import ConfigError, Params, flatten
from wsfcn.params_io import absolute_paths, fingerprint
from wsfcn.units import in_percent

Report = Callable[[dict], None]

# numbers of the last epoch (and the best epoch's val_*) that the train stage's metrics.json keeps
SUMMARY_KEYS = ("loss", "loss_cls", "loss_mask", "mAP", "images_per_s", "val_mIoU", "val_pixacc", "val_mAP",
                "val_loss")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# download, prepare
@dataclass(frozen=True)
class DownloadResult:
    folders: dict[str, Path]


def download(params: Params, *, quiet: bool = False) -> DownloadResult:
    """Fetch, verify and safely extract ``data.name``'s sources (or generate the synthetic benchmark)."""
    from wsfcn.data.prepare import download_dataset

    return DownloadResult(download_dataset(params.data, progress=False if quiet else None))


@dataclass(frozen=True)
class PrepareResult:
    folder: Path
    summary: dict[str, Any]


def prepare(params: Params, *, workers: int = 0, progress: bool = False) -> PrepareResult:
    """Split lists, image-level labels, file index and ``summary.json``, then the data check."""
    from wsfcn.data.prepare import prepare_dataset

    folder = prepare_dataset(params.data, progress=progress, workers=workers)
    return PrepareResult(folder, json.loads((folder / "summary.json").read_text()))


# ---------------------------------------------------------------------------------------------
# train
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
    fetch_last(checkpoint, last, fingerprint(params), epochs=params.train.epochs)  # rank 0: another node?
    return FitResult.from_checkpoint(last)


def resumable_state(params: Params) -> dict | None:
    """The state of ``train.out_dir/last.pt`` if a run of these params may resume from it, else None."""
    from wsfcn.train.checkpoints import newest_resumable

    found = newest_resumable([Path(params.train.out_dir) / "last.pt"], fingerprint(params))
    return found[1] if found else None


def finished_training(params: Params):
    """The FitResult of ``train.out_dir/last.pt`` if it holds these params after ``train.epochs``.

    None when there is no such file, or it holds other params or fewer epochs.
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
    from wsfcn.data.prepare import DataError

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
        tracker = tracked_run(params, experiment, params.train.run_name, resume=resuming)
    with tracker as run:
        mlflow_run = (run.uri, run.run_id) if run else None
        result = run_fit(params, mlflow_run=mlflow_run, resume=resume, quiet=quiet)
        metrics_path, history_path = write_train_outputs(result, params)
        if run:
            from wsfcn.train.checkpoints import record_mlflow_run

            record_mlflow_run([result.last, result.best], run.uri, run.run_id)
            run.set_tags(
                {
                    "checkpoint.best": str(result.best.resolve()),
                    "checkpoint.last": str(result.last.resolve()),
                    "wsfcn.precision": result.precision,
                }
            )
            run.log_artifact(metrics_path)
            run.log_artifact(history_path)
    return TrainResult(result, metrics_path, history_path, run.run_id if run else None)


# ---------------------------------------------------------------------------------------------
# infer, crf, evaluate
@dataclass(frozen=True)
class InferResult:
    out_dir: Path
    summary: dict[str, Any]

    @property
    def skipped(self) -> list[dict[str, str]]:
        return self.summary["skipped"]


def check_classes(checkpoint: str | Path, trained_on: str, data_name: str) -> None:
    """Refuse (naming both) a checkpoint whose dataset has other classes than ``data.name``'s."""
    from wsfcn.data.classes import num_classes
    from wsfcn.train.checkpoints import CheckpointError

    have, want = num_classes(trained_on), num_classes(data_name)
    if have != want:
        raise CheckpointError(
            f"{checkpoint} segments the {have} classes of {trained_on}, but data.name={data_name} has "
            f"{want}: run with --set data.name={trained_on}"
        )


def infer(
    params: Params, *, device: str | None = None, batch_size: int = 0, quiet: bool = False
) -> InferResult:
    """Predict ``infer.split`` with ``infer.*`` from ``infer.checkpoint`` (METHOD §7) into ``infer.out_dir``.

    ``device`` None: ``train.device`` (auto: CUDA when present). A skipped image is listed in the
    result (and ``summary.json``), never silently dropped.
    """
    from wsfcn.data import build_dataset
    from wsfcn.device import resolve_device
    from wsfcn.infer.manifest import checkpoint_record, clear_predictions
    from wsfcn.infer.options import InferOptions
    from wsfcn.infer.split import predict_split, read_split_ids
    from wsfcn.train.checkpoints import load_model, stored_mlflow_run

    cfg = params.infer
    if cfg.use_gt_labels and cfg.split == "test":
        raise ConfigError("infer.use_gt_labels (§) needs image labels, which the test split does not have")
    device = resolve_device(device or params.train.device)
    model, model_params, provenance = load_model(cfg.checkpoint, device=device, with_provenance=True)
    check_classes(cfg.checkpoint, model_params.data.name, params.data.name)
    dataset = build_dataset(params.data, cfg.split, train=False)
    every = read_split_ids(Path(params.data.root) / params.data.name / "lists" / f"{cfg.split}.txt")
    ids = every[: cfg.max_images] if cfg.max_images > 0 else every
    options = InferOptions.from_params(cfg, device=device, batch_size=batch_size)
    info = {"split": cfg.split, "dataset": params.data.name, **checkpoint_record(cfg.checkpoint)}
    info |= {"checkpoint_dataset": model_params.data.name, "mlflow_run": stored_mlflow_run(cfg.checkpoint)}
    info |= {"split_size": len(every), "subset": len(ids) < len(every)}
    info |= {"provenance": provenance} if provenance else {}
    clear_predictions(cfg.out_dir)  # no mask of an earlier run survives to be scored
    summary = predict_split(
        model, dataset, ids, cfg.out_dir, options=options, use_gt_labels=cfg.use_gt_labels,
        save_probabilities=cfg.save_probs or params.eval.crf, test_layout=cfg.split == "test",
        progress=not quiet, info=info,
    )  # fmt: skip
    return InferResult(Path(cfg.out_dir), summary)


@dataclass(frozen=True)
class CRFResult:
    out_dir: Path
    ran: bool
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def skipped(self) -> list[dict[str, str]]:
        return self.summary.get("skipped", [])


def crf(
    params: Params, *, out: str | Path | None = None, processes: int | None = None, quiet: bool = False
) -> CRFResult:
    """Dense CRF (METHOD §7.7) on infer's saved probabilities into ``out`` (``<eval.out_dir>/crf_masks``).

    With ``eval.crf`` false only the (empty) folder is made. ``processes`` None:
    ``eval.crf_params.processes``.
    """
    from tqdm import tqdm

    from wsfcn.data import build_dataset
    from wsfcn.infer.crf import CRFJob, run_crf_jobs
    from wsfcn.infer.manifest import clear_predictions, read_manifest
    from wsfcn.infer.options import CRFOptions

    src, out = Path(params.infer.out_dir), Path(out or Path(params.eval.out_dir) / "crf_masks")
    clear_predictions(out)  # no CRF mask of an earlier run survives to be scored
    (out / "masks").mkdir(parents=True, exist_ok=True)
    if not params.eval.crf:
        return CRFResult(out, ran=False)
    summary = read_manifest(src)
    if not (src / "probs").is_dir():
        raise FileNotFoundError(f"{src}/probs missing: run infer with eval.crf=true or infer.save_probs=true")
    dataset = build_dataset(params.data, summary["split"], train=False)
    skipped = list(summary["skipped"])
    names = [i for i in summary["ids"] if i not in {s["id"] for s in skipped}]
    jobs = [
        CRFJob(
            i, str(dataset.image_path(i)), str(src / "probs" / f"{i}.npz"), str(out / "masks" / f"{i}.png")
        )
        for i in names
    ]
    options = CRFOptions.from_params(params.eval.crf_params)
    pool = params.eval.crf_params.processes if processes is None else processes
    start = time.perf_counter()
    for name, error in tqdm(
        run_crf_jobs(jobs, options, pool), total=len(jobs), desc="crf", unit="img", disable=quiet
    ):
        if error:
            tqdm.write(f"crf: skipped {name}: {error}", file=sys.stderr)
            skipped.append({"id": name, "path": str(dataset.image_path(name)), "error": error})
    seconds = time.perf_counter() - start
    summary.update(
        crf=True, crf_settings=dataclasses.asdict(options), skipped=skipped, num_skipped=len(skipped)
    )
    summary.update(crf_seconds=round(seconds, 3), crf_images_per_s=round(len(jobs) / max(seconds, 1e-9), 4))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return CRFResult(out, ran=True, summary=summary)


@dataclass(frozen=True)
class EvalResult:
    out_dir: Path
    metrics: dict[str, Any]
    info: dict[str, Any]

    @property
    def miou(self) -> float:
        """mIoU in percent (METHOD §8.2)."""
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
    """Score a prediction folder (``masks/`` + ``summary.json``) against the ground truth (METHOD §8.2).

    Writes ``metrics.json``, ``per_class.csv``/``.json``, ``confusion.csv`` (and, with ``figures``,
    ``confusion.png``, ``iou.png``) to ``eval.out_dir``. A missing or mis-sized prediction, or a split
    without ground truth, raises :class:`~wsfcn.evaluate.folder.EvaluationError` naming the file.
    """
    from wsfcn.data import build_dataset
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
    if summary.get("checkpoint_dataset"):
        check_classes(summary["checkpoint"], summary["checkpoint_dataset"], params.data.name)
    dataset = build_dataset(params.data, summary["split"], train=False)
    start = time.perf_counter()
    cm = evaluate_folder(
        summary["ids"], dataset.mask_path, pred / "masks", dataset.num_classes, workers=workers
    )
    info = prediction_info(summary) | {"eval_seconds": round(time.perf_counter() - start, 3)}
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


def evaluation_numbers(result: EvalResult) -> tuple[dict[str, float], dict[str, str]]:
    """The MLflow metrics (percent, as the paper) and ``eval.*`` tags of an evaluation."""
    m, info = result.metrics, result.info
    pct = {"mIoU": m.get("mIoU"), "PixAcc": m.get("PixAcc")}
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
    from wsfcn.data import build_dataset

    if params.infer.split == "test":
        return False
    dataset = build_dataset(params.data, params.infer.split, train=False)
    return any(dataset.mask_path(i) is not None for i in ids)


# ---------------------------------------------------------------------------------------------
# tables
def read_runs(uri: str, experiment_names: list[str]):
    """MLflow runs of the named experiments; ``MLFLOW_TRACKING_URI`` wins over ``uri``, as in training."""
    from wsfcn.integrations.mlflow_log import resolve_uri
    from wsfcn.integrations.mlflow_query import search_runs

    return search_runs(resolve_uri(uri), experiment_names)


@dataclass(frozen=True)
class TablesResult:
    tables: list[Any]  # wsfcn.report.tables.Table
    paths: list[Path]


def tables(
    params: Params,
    *,
    experiments: list[str] | None = None,
    setting: str | None = None,
    pipeline_metrics: str | Path | None = None,
    params_path: str | Path | None = "params.yaml",
    save_runs: str | Path | None = None,
    runs_csv: str | Path | list[str | Path] | None = None,
) -> TablesResult:
    """The MLflow runs of each experiments file → ``tables.out_dir/table{N}.{md,tex,csv}`` (METHOD §12).

    ``pipeline_metrics`` (evaluate's metrics.json of a ``dvc repro``) adds this pipeline's own result as
    the rows its params reproduce. ``save_runs``: also write the run rows the tables came from (the
    logging contract's columns) as CSV; ``runs_csv``: build from such files instead of MLflow (several:
    the rows of several stores, e.g. a sweep finished in a second store; the latest run of a seed wins).
    """
    import pandas as pd

    from wsfcn.experiments import load_experiment
    from wsfcn.report.param_counts import paper_param_counts
    from wsfcn.report.tables import experiment_table, pipeline_runs
    from wsfcn.report.writers import write_table

    loaded = [load_experiment(p) for p in (experiments or params.tables.experiments)]
    if runs_csv:
        from wsfcn.report.tables import read_runs_csv

        files = [runs_csv] if isinstance(runs_csv, (str, Path)) else runs_csv
        runs = pd.concat([read_runs_csv(f) for f in files], ignore_index=True)
    else:
        runs = read_runs(params.tracking.uri, [e.name for e in loaded])
    if pipeline_metrics:
        path = Path(pipeline_metrics)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (run the evaluate stage first)")
        from wsfcn.data.ids import read_json

        metrics, flat = read_json(path, "metrics file"), flatten(params)
        if isinstance(metrics, dict) and metrics.get("subset"):
            from wsfcn.errors import InputError

            raise InputError(
                f"{path} scores a subset ({metrics.get('num_images')} of {metrics.get('split_size')} images, "
                "infer.max_images): not a number for a table; re-run infer with infer.max_images=0"
            )
        extra = [pipeline_runs(e, flat, metrics, path.stat().st_mtime) for e in loaded]
        frames = [f for f in (runs, *extra) if not f.empty]
        runs = pd.concat(frames, ignore_index=True) if frames else runs
    built = [experiment_table(e, runs, setting, paper_param_counts(e, params_path)) for e in loaded]
    paths = [p for table in built for p in write_table(table, params.tables.out_dir)]
    if save_runs:
        from wsfcn.report.tables import contract_columns

        Path(save_runs).parent.mkdir(parents=True, exist_ok=True)
        contract_columns(runs).to_csv(save_runs, index=False)
        paths.append(Path(save_runs))
    return TablesResult(built, paths)


# ---------------------------------------------------------------------------------------------
# figures (not a dvc.yaml stage: run by hand on two or more infer/crf folders)
@dataclass(frozen=True)
class FiguresResult:
    path: Path
    ids: list[str]
    columns: list[str]
    logged: bool


def figures(
    params: Params, runs: dict[str, str | Path], *, ids: list[str] | None = None, num: int = 6, seed: int = 0,
    out: str | Path = "outputs/figures/qualitative.png",
) -> FiguresResult:  # fmt: skip
    """A Figure-7-style grid (image | run 1 | run 2 | ... | GT) of chosen or random images predicted by
    every run; attached to the MLflow training run of ``params`` when tracking is on and that run exists."""
    import random

    from wsfcn.data import build_dataset
    from wsfcn.data.io import read_mask, read_rgb
    from wsfcn.evaluate.figures import qualitative_grid
    from wsfcn.infer.manifest import read_manifest

    summaries = {name: read_manifest(d) for name, d in runs.items()}
    split = next(iter(summaries.values()))["split"]
    common = set.intersection(*(set(s["ids"]) - {k["id"] for k in s["skipped"]} for s in summaries.values()))
    ids = ids or sorted(random.Random(seed).sample(sorted(common), min(num, len(common))))
    missing = [i for i in ids if i not in common]
    if missing or not ids:
        raise FileNotFoundError(f"no prediction in every run for: {missing or 'any image'}")
    dataset = build_dataset(params.data, split, train=False)
    with_gt = all(dataset.mask_path(i) for i in ids)
    rows = [
        [read_rgb(dataset.image_path(i))]
        + [read_mask(Path(d) / "masks" / f"{i}.png") for d in runs.values()]
        + ([read_mask(dataset.mask_path(i))] if with_gt else [])
        for i in ids
    ]
    titles = ["image", *runs] + (["ground truth"] if with_gt else [])
    path = qualitative_grid(rows, titles, out, row_labels=ids)
    logged = False
    if params.tracking.enabled:
        from wsfcn.integrations.mlflow_log import log_artifact

        logged = log_artifact(path, params, artifact_path="figures")
    return FiguresResult(Path(path), ids, titles, logged)
