"""Stage ``figures``: a Figure-7-style grid (image | run 1 | run 2 | ... | GT) for chosen or random
validation images, from two or more infer/crf output folders.

    python pipeline/figures.py --run baseline=outputs/infer_baseline --run WS-FCN=outputs/infer \
        [--ids 2007_000033,2007_000129 | --num 6 --seed 0] [--out outputs/figures/qualitative.png]

With ``tracking.enabled`` the PNG is also attached to the MLflow training run of the params
(``wsfcn.integrations.mlflow_log.log_artifact``), when that run exists.
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.arguments import add_params_arguments, params_from_args
from wsfcn.entry import run_entry
from wsfcn.stages import figures as stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument(
        "--run", action="append", required=True, metavar="NAME=DIR", help="a run's output folder"
    )
    parser.add_argument("--ids", default="", help="comma-separated image ids (default: random)")
    parser.add_argument("--num", type=int, default=6, help="random images when --ids is empty")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/figures/qualitative.png")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.run):
        raise SystemExit(f"--run wants NAME=DIR, got {args.run}")
    runs = dict(item.split("=", 1) for item in args.run)
    ids = [i for i in args.ids.split(",") if i]

    def body() -> int:
        try:
            result = stage.figures(
                params_from_args(args), runs, ids=ids, num=args.num, seed=args.seed, out=args.out
            )
        except FileNotFoundError as err:
            raise SystemExit(f"figures: {err}") from None
        logged = " (logged to MLflow)" if result.logged else ""
        print(f"figures: {len(result.ids)} images x {len(result.columns)} columns -> {result.path}{logged}")
        return 0

    return run_entry("figures", body)


if __name__ == "__main__":
    sys.exit(main())
