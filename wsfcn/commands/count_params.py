"""Print the trainable parameter count of each run of an experiments file (METHOD §11)."""

from __future__ import annotations

import argparse
import json

import torch

from wsfcn.config import load_experiment
from wsfcn.data.classes import num_classes
from wsfcn.model import build_model, count_parameters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiments/*.yaml file")
    parser.add_argument("--setting", default="paper", help="setting of the file to count (default: paper)")
    parser.add_argument("--json", action="store_true", help="print {run_name: trainable_parameters} as JSON")


def count_experiment(
    experiment_path: str, setting: str, base: str | None, overrides: dict | None = None
) -> dict[str, int]:
    """``{run: trainable parameters}``; models are built on the meta device (no memory, no init cost).

    Pretrained weights are not loaded: counting never reads a weight file.
    """
    experiment = load_experiment(experiment_path)
    counts = {}
    for run in experiment.runs:
        params = experiment.params(
            run, setting, base=base, extra={**(overrides or {}), "model.pretrained": ""}
        )
        with torch.device("meta"):
            model = build_model(params.model, num_classes(params.data.name), params.loss)
        counts[run] = count_parameters(model)
    return counts


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wsfcn.config import parse_overrides

    base = args.params if Path(args.params).is_file() else None
    counts = count_experiment(args.experiment, args.setting, base, parse_overrides(args.overrides))
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        for name, value in counts.items():
            print(f"{name:>12}  {value:>13,d}  {value / 1e6:8.2f} M")
    return 0
