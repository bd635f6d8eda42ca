"""Ablation sweep: an experiments file's runs × seeds as Ray Tune trials (train → infer → evaluate).

Each trial runs at the experiment's setting (``embedded``: the synthetic benchmark; ``paper``: the
paper's data and schedule) and is logged as an MLflow child run under one parent run per sweep
(``wsfcn/sweep/``). A failed trial is reported at the end and the exit status is 1; the others go on.
``--resume`` continues the newest sweep of this experiment/setting without redoing the trials it
finished. Trials train in-process (``train.num_workers: 0``) or on Ray Train workers; with
``--checkpoint FILE`` none trains: each evaluates FILE (e.g. the converted release) and is tagged so.

    python pipeline/ablate.py --experiment experiments/table1_ablation.yaml [--setting embedded|paper]
        [--seeds N] [--trials run-sN,...] [--max-concurrent K] [--resume] [--runs a,b]
        [--checkpoint FILE] [--set k=v] [--quiet]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.arguments import add_params_arguments, params_path
from wsfcn.entry import run_entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument("--experiment", required=True, help="experiments/*.yaml")
    parser.add_argument("--setting", default="embedded", help="setting block: embedded (default) or paper")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per run: train.seed .. train.seed+N-1")
    parser.add_argument("--runs", default="", help="comma-separated runs of the file (default: all)")
    parser.add_argument("--trials", default="", help="comma-separated <run>-s<seed> ids: only these trials")
    parser.add_argument("--max-concurrent", type=int, default=0, help="trials at once (0: all that fit)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the newest sweep, skip finished trials"
    )
    parser.add_argument("--checkpoint", help="evaluate this checkpoint in every trial; train nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress output from Ray or the trials")
    args = parser.parse_args(argv)

    def body() -> int:
        from wsfcn.sweep.driver import run_sweep
        from wsfcn.sweep.plan import format_outcomes

        runs, trials = ([x for x in arg.split(",") if x] or None for arg in (args.runs, args.trials))
        outcomes, parent = run_sweep(
            args.experiment, setting=args.setting, seeds=args.seeds, runs=runs, params_path=params_path(args),
            overrides=args.overrides, max_concurrent=args.max_concurrent, resume=args.resume,
            quiet=args.quiet, checkpoint=args.checkpoint, trials=trials,
        )  # fmt: skip
        print(format_outcomes(outcomes))
        failed = [o for o in outcomes if o.status == "FAILED"]
        done = len(outcomes) - len(failed)
        print(f"ablate: {done}/{len(outcomes)} trials finished (MLflow parent run {parent})")
        return 1 if failed else 0

    return run_entry("ablate", body)


if __name__ == "__main__":
    sys.exit(main())
