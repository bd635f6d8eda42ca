"""Stage ``train``: params → ``wsfcn.training.fit`` (in-process or on Ray Train) → checkpoints and curves.

Writes ``<train.out_dir>/last.pt`` (every epoch), ``best.pt`` (METHOD §6.1 selection),
``metrics.json`` (DVC metrics), ``history.csv`` (DVC plot of the training curves) and
``figures/epoch_XXX.png``; tracks the run in MLflow (``tracking.*``). Re-running the same
``train.run_name`` with the same params resumes from ``last.pt`` (``--fresh`` starts over).
Exit status 1 when the loss became NaN / infinite (the last good checkpoint is kept).

    python pipeline/train.py [--params params.yaml] [--set train.epochs=3] [--quiet] [--fresh]
    python pipeline/train.py --experiment experiments/table1_ablation.yaml --run full [--setting embedded]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from wsfcn.cli import add_params_arguments, params_from_args
from wsfcn.config import Params, load_experiment, load_params, parse_overrides

SUMMARY_KEYS = (
    "loss",
    "loss_cls",
    "loss_mask",
    "mAP",
    "images_per_s",
    "val_mIoU",
    "val_pixacc",
    "val_mAP",
    "val_loss",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument(
        "--experiment", default="", help="experiments/*.yaml: MLflow experiment + run overrides"
    )
    parser.add_argument("--run", default="", help="run name inside --experiment")
    parser.add_argument("--setting", default=None, help="setting block of --experiment (paper, embedded)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines (CI)")
    parser.add_argument("--fresh", action="store_true", help="do not resume from an existing last.pt")
    return parser.parse_args(argv)


def resolve(args: argparse.Namespace) -> tuple[Params, str]:
    """The run's params and its MLflow experiment name (``tracking.experiment`` without --experiment)."""
    if not args.experiment:
        params = params_from_args(args)
        return params, params.tracking.experiment
    if not args.run:
        raise SystemExit("--experiment needs --run NAME")
    exp = load_experiment(args.experiment)
    base = args.params if (args.params != "params.yaml" or Path(args.params).is_file()) else None
    extra = parse_overrides(args.overrides)
    explicit = {**exp.overrides(args.run, args.setting), **extra}
    extra.setdefault("train.run_name", args.run)
    if "train.out_dir" not in explicit:  # one folder per run, so the runs of a table do not collide
        extra["train.out_dir"] = str(Path(load_params(base).train.out_dir) / exp.name / args.run)
    return exp.params(args.run, args.setting, base=base, extra=extra), exp.name


def write_outputs(result, params: Params) -> tuple[Path, Path]:
    """``metrics.json`` (final and best-epoch numbers) and ``history.csv`` (one row per epoch)."""
    history = result.history
    last = history[-1] if history else {}
    best = next((e for e in history if e["epoch"] == result.best_epoch), {})
    metrics = {
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "best_score": result.best_score,
        "select_by": params.train.select_by,
        "n_params": result.n_params,
        "params_M": round(result.n_params / 1e6, 2),
        "last": {k: last[k] for k in SUMMARY_KEYS if k in last},
        "best": {k: best[k] for k in SUMMARY_KEYS if k.startswith("val_") and k in best},
    }
    metrics_path = result.out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    columns = ["epoch", *SUMMARY_KEYS, "val_score", "steps"]
    history_path = result.out_dir / "history.csv"
    with open(history_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
    return metrics_path, history_path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params, experiment = resolve(args)

    from wsfcn.checkpoints import fingerprint, newest_resumable
    from wsfcn.integrations.ray_train import run_training
    from wsfcn.training import NonFiniteLossError

    out_dir = Path(params.train.out_dir)
    resume = not args.fresh
    tracker = None
    if params.tracking.enabled:
        from wsfcn.integrations.mlflow_log import MLflowReporter, resolve_uri, start_run

        resuming = resume and newest_resumable([out_dir / "last.pt"], fingerprint(params)) is not None
        run_id = start_run(params, experiment, params.train.run_name, resume=resuming)
        tracker = MLflowReporter(resolve_uri(params.tracking.uri), run_id)
    try:
        mlflow_run = (tracker.uri, tracker.run_id) if tracker else None
        result = run_training(params, mlflow_run=mlflow_run, resume=resume, quiet=args.quiet)
    except NonFiniteLossError as err:
        print(f"train: {err}", file=sys.stderr)
        if tracker:
            tracker.finish("FAILED")
        return 1
    except BaseException:
        if tracker:
            tracker.finish("KILLED" if isinstance(sys.exc_info()[1], KeyboardInterrupt) else "FAILED")
        raise
    metrics_path, history_path = write_outputs(result, params)
    if tracker:
        tracker.set_tags(
            {"checkpoint.best": str(result.best.resolve()), "checkpoint.last": str(result.last.resolve())}
        )
        tracker.log_artifact(metrics_path)
        tracker.log_artifact(history_path)
        tracker.finish()
    score = "n/a" if result.best_score is None else f"{result.best_score:.4f}"
    print(
        f"train: {result.epochs} epochs, best epoch {result.best_epoch} ({params.train.select_by} {score}), "
        f"{result.n_params / 1e6:.2f} M params -> {out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
