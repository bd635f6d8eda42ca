"""Stage ``tables``: the MLflow runs of each experiments/*.yaml → tables/table{N}.{md,tex,csv}.

Each table puts our runs (mean ± std over seeds) beside the paper's numbers (METHOD §12); the logging
contract is in wsfcn/reporting.py. Prints the first table.

    python pipeline/tables.py [--params params.yaml] [--experiments experiments/table1_ablation.yaml ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from wsfcn.cli import add_params_arguments, params_from_args
from wsfcn.config import ConfigError, Experiment, flatten, load_experiment
from wsfcn.reporting import experiment_table, pipeline_runs
from wsfcn.table_writers import format_terminal, write_table


def read_runs(uri: str, experiment_names: list[str]) -> pd.DataFrame:
    """MLflow runs of the named experiments; ``MLFLOW_TRACKING_URI`` wins over ``uri``, as in training."""
    from wsfcn.integrations.mlflow_log import resolve_uri
    from wsfcn.integrations.mlflow_query import search_runs

    return search_runs(resolve_uri(uri), experiment_names)


def paper_param_counts(experiment: Experiment, params_path: str | None) -> dict[str, int] | None:
    """Trainable parameters per run at the paper setting, if the paper gives Params and the model builds."""
    if "paper" not in experiment.settings or not any(
        "params_m" in (v or {}) for v in experiment.paper.values()
    ):
        return None
    try:
        from wsfcn.commands.count_params import count_experiment

        return count_experiment(experiment.path, "paper", params_path)
    except Exception as err:  # the table then shows "–" for our Params, never a guess
        print(f"tables: cannot count parameters of {experiment.path}: {err!r}", file=sys.stderr)
        return None


def with_pipeline_result(
    runs: pd.DataFrame, experiments: list[Experiment], params, path: Path
) -> pd.DataFrame:
    """Add the pipeline's own evaluation to ``runs`` as the experiment rows its params reproduce."""
    if not path.is_file():
        raise SystemExit(f"tables: {path} does not exist (run the evaluate stage first)")
    metrics = json.loads(path.read_text())
    flat = flatten(params)
    extra = [pipeline_runs(e, flat, metrics, path.stat().st_mtime) for e in experiments]
    frames = [f for f in (runs, *extra) if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument(
        "--experiments", nargs="+", metavar="FILE", help="default: the tables.experiments param"
    )
    parser.add_argument(
        "--setting", default=None, help="setting to show (default: paper if run, else embedded)"
    )
    parser.add_argument(
        "--pipeline-metrics",
        metavar="JSON",
        help="also show this dvc repro result (evaluate's metrics.json) as the rows its params reproduce",
    )
    args = parser.parse_args(argv)
    try:
        params = params_from_args(args)
        experiments = [load_experiment(p) for p in (args.experiments or params.tables.experiments)]
    except ConfigError as err:
        print(f"tables: parameter error: {err}", file=sys.stderr)
        return 2
    runs = read_runs(params.tracking.uri, [e.name for e in experiments])
    if args.pipeline_metrics:
        runs = with_pipeline_result(runs, experiments, params, Path(args.pipeline_metrics))
    params_path = args.params if Path(args.params).is_file() else None
    tables = [
        experiment_table(e, runs, args.setting, paper_param_counts(e, params_path)) for e in experiments
    ]
    for table in tables:
        for path in write_table(table, params.tables.out_dir):
            print(f"wrote {path}", file=sys.stderr)
    print(format_terminal(tables[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
