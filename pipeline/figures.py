"""Stage ``figures``: a Figure-7-style grid (image | run 1 | run 2 | ... | GT) for chosen or random
validation images, from two or more infer/crf output folders.

    python pipeline/figures.py --run baseline=outputs/infer_baseline --run WS-FCN=outputs/infer \
        [--ids 2007_000033,2007_000129 | --num 6 --seed 0] [--out outputs/figures/qualitative.png]

With ``tracking.enabled`` the PNG is also attached to the MLflow training run of the params
(``wsfcn.integrations.mlflow_log.log_artifact``), when that run exists.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from wsfcn.cli import add_params_arguments, params_from_args


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
    params = params_from_args(args)

    from wsfcn.data import build_dataset
    from wsfcn.data.io import read_mask, read_rgb
    from wsfcn.figures import qualitative_grid

    if any("=" not in item for item in args.run):
        raise SystemExit(f"--run wants NAME=DIR, got {args.run}")
    runs = dict(item.split("=", 1) for item in args.run)
    summaries = {name: json.loads((Path(d) / "summary.json").read_text()) for name, d in runs.items()}
    split = next(iter(summaries.values()))["split"]
    common = set.intersection(*(set(s["ids"]) - {k["id"] for k in s["skipped"]} for s in summaries.values()))
    ids = [i for i in args.ids.split(",") if i] or sorted(
        random.Random(args.seed).sample(sorted(common), min(args.num, len(common)))
    )
    missing = [i for i in ids if i not in common]
    if missing or not ids:
        raise SystemExit(f"no prediction in every run for: {missing or 'any image'}")
    dataset = build_dataset(params.data, split, train=False)
    with_gt = all(dataset.mask_path(i) for i in ids)
    rows = [
        [read_rgb(dataset.image_path(i))]
        + [read_mask(Path(d) / "masks" / f"{i}.png") for d in runs.values()]
        + ([read_mask(dataset.mask_path(i))] if with_gt else [])
        for i in ids
    ]
    titles = ["image", *runs] + (["ground truth"] if with_gt else [])
    path = qualitative_grid(rows, titles, args.out, row_labels=ids)
    logged = False
    if params.tracking.enabled:  # attach to the training run of these params, if there is one
        try:
            from wsfcn.integrations.mlflow_log import log_artifact
        except ImportError:
            log_artifact = None
        logged = bool(log_artifact and log_artifact(path, params, artifact_path="figures"))
    print(
        f"figures: {len(ids)} images x {len(titles)} columns -> {path}"
        + (" (logged to MLflow)" if logged else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
