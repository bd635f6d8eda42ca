"""Ablation sweep: an experiments file's runs × seeds as Ray Tune trials (train → infer → evaluate).

Each trial runs at the experiment's setting (``embedded``: the synthetic benchmark; ``paper``: the
paper's data and schedule) and is logged as an MLflow child run under one parent run per sweep
(``wsfcn/sweep.py``). A failed trial is reported at the end and the exit status is 1; the others
go on. ``--resume`` continues the newest sweep of this experiment/setting without redoing the
trials it finished. Trials train in-process (``train.num_workers: 0``) or on Ray Train workers.

    python pipeline/ablate.py --experiment experiments/table1_ablation.yaml [--setting embedded|paper]
        [--seeds N] [--max-concurrent K] [--resume] [--runs a,b] [--params params.yaml] [--set k=v] [--quiet]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.cli import add_params_arguments
from wsfcn.config import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument("--experiment", required=True, help="experiments/*.yaml")
    parser.add_argument("--setting", default="embedded", help="setting block: embedded (default) or paper")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per run: train.seed .. train.seed+N-1")
    parser.add_argument("--runs", default="", help="comma-separated runs of the file (default: all)")
    parser.add_argument(
        "--max-concurrent", type=int, default=0, help="trials at once (0: as resources allow)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the newest sweep, skip its finished trials"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output from Ray or the trials")
    args = parser.parse_args(argv)

    from pathlib import Path

    from wsfcn.data.download import DownloadError
    from wsfcn.data.io import DataFileError
    from wsfcn.data.prepare import DataError
    from wsfcn.sweep import format_outcomes
    from wsfcn.sweep_run import run_sweep

    params_path = args.params if (args.params != "params.yaml" or Path(args.params).is_file()) else None
    try:
        outcomes, parent = run_sweep(
            args.experiment,
            setting=args.setting,
            seeds=args.seeds,
            runs=[r for r in args.runs.split(",") if r] or None,
            params_path=params_path,
            overrides=args.overrides,
            max_concurrent=args.max_concurrent,
            resume=args.resume,
            quiet=args.quiet,
        )
    except ConfigError as err:
        print(f"ablate: parameter error: {err}", file=sys.stderr)
        return 2
    except (DataError, DownloadError, DataFileError) as err:
        print(f"ablate: data error: {err}", file=sys.stderr)
        return 1
    print(format_outcomes(outcomes))
    failed = [o for o in outcomes if o.status == "FAILED"]
    print(
        f"ablate: {len(outcomes) - len(failed)}/{len(outcomes)} trials finished (MLflow parent run {parent})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
