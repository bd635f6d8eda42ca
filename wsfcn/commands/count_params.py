"""Print the trainable parameter count of each run of an experiments file (method §11)."""

from __future__ import annotations

import argparse
import json

from wsfcn.report.param_counts import count_experiment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiments/*.yaml file")
    parser.add_argument("--setting", default="paper", help="setting of the file to count (default: paper)")
    parser.add_argument("--json", action="store_true", help="print {run_name: trainable_parameters} as JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wsfcn.params_yaml import parse_overrides

    base = args.params if Path(args.params).is_file() else None
    counts = count_experiment(args.experiment, args.setting, base, parse_overrides(args.overrides))
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        for name, value in counts.items():
            print(f"{name:>12}  {value:>13,d}  {value / 1e6:8.2f} M")
    return 0
