"""Stage ``train``: params → ``wsfcn.stages.train`` (in-process or on Ray Train) → checkpoints, curves.

Writes ``<train.out_dir>/last.pt`` (every epoch), ``best.pt`` (method §6.1 selection), ``metrics.json``
(DVC metrics), ``history.csv`` (DVC plot of the training curves) and ``figures/epoch_XXX.png``; tracks
the run in MLflow (``tracking.*``). Re-running the same ``train.run_name`` with the same params resumes
from ``last.pt`` (``--fresh`` starts over). Exit status 1 when the loss became NaN / infinite (the last
good checkpoint is kept).

    python pipeline/train.py [--params params.yaml] [--set train.epochs=3] [--quiet] [--fresh]
    python pipeline/train.py --experiment experiments/table1_ablation.yaml --run full [--setting embedded]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.arguments import add_params_arguments, params_from_args, params_path
from wsfcn.entry import run_entry
from wsfcn.experiments import experiment_run_params
from wsfcn.params_yaml import parse_overrides
from wsfcn.stages import train as stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument(
        "--experiment", default="", help="experiments/*.yaml: MLflow experiment + run overrides"
    )
    parser.add_argument("--run", default="", help="run name inside --experiment")
    parser.add_argument("--setting", default=None, help="setting block of --experiment (paper, embedded)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines (CI)")
    parser.add_argument("--fresh", action="store_true", help="do not resume from an existing last.pt")
    args = parser.parse_args(argv)
    if args.experiment and not args.run:
        parser.error("--experiment needs --run NAME")

    def body() -> int:
        if args.experiment:
            overrides = parse_overrides(args.overrides)
            params, experiment = experiment_run_params(
                args.experiment, args.run, args.setting, params_path(args), overrides
            )
        else:
            params = params_from_args(args)
            experiment = params.tracking.experiment
        fitted = stage.train(params, experiment=experiment, resume=not args.fresh, quiet=args.quiet).fit
        score = "n/a" if fitted.best_score is None else f"{fitted.best_score:.4f}"
        best = f"best epoch {fitted.best_epoch} ({params.train.select_by} {score})"
        size = f"{fitted.n_params / 1e6:.2f} M params"
        print(f"train: {fitted.epochs} epochs, {best}, {size}, {fitted.precision} -> {params.train.out_dir}")
        return 0

    return run_entry("train", body)


if __name__ == "__main__":
    sys.exit(main())
