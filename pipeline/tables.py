"""Stage ``tables``: the MLflow runs of each experiments/*.yaml → tables/table{N}.{md,tex,csv}.

Each table puts our runs (mean ± std over seeds) beside the paper's numbers (method §12); the logging
contract is in wsfcn/report/contract.py. Prints the first table.

    python pipeline/tables.py [--params params.yaml] [--experiments experiments/table1_ablation.yaml ...]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.arguments import add_params_arguments, params_from_args, params_path
from wsfcn.entry import run_entry
from wsfcn.stages import tables as stage


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
    parser.add_argument("--save-runs", metavar="CSV", help="also write the run rows the tables came from")
    parser.add_argument(
        "--runs-csv",
        nargs="+",
        metavar="CSV",
        help="build from --save-runs files (one per store) instead of MLflow",
    )
    args = parser.parse_args(argv)

    def body() -> int:
        from wsfcn.report.writers import format_terminal

        result = stage.tables(
            params_from_args(args), experiments=args.experiments, setting=args.setting,
            pipeline_metrics=args.pipeline_metrics, params_path=params_path(args),
            save_runs=args.save_runs, runs_csv=args.runs_csv,
        )  # fmt: skip
        for path in result.paths:
            print(f"wrote {path}", file=sys.stderr)
        print(format_terminal(result.tables[0]))
        return 0

    return run_entry("tables", body)


if __name__ == "__main__":
    sys.exit(main())
