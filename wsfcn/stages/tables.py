"""Stage ``tables``: the MLflow runs of each experiments file beside the paper's numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsfcn.config import Params
from wsfcn.params_coerce import flatten


def read_runs(uri: str, experiment_names: list[str]):
    """MLflow runs of the named experiments; ``MLFLOW_TRACKING_URI`` wins over ``uri``, as in training."""
    from wsfcn.integrations.mlflow_log import resolve_uri
    from wsfcn.integrations.mlflow_query import search_runs

    return search_runs(resolve_uri(uri), experiment_names)


@dataclass(frozen=True)
class TablesResult:
    tables: list[Any]  # wsfcn.report.tables.Table
    paths: list[Path]


def tables(
    params: Params,
    *,
    experiments: list[str] | None = None,
    setting: str | None = None,
    pipeline_metrics: str | Path | None = None,
    params_path: str | Path | None = "params.yaml",
    save_runs: str | Path | None = None,
    runs_csv: str | Path | list[str | Path] | None = None,
) -> TablesResult:
    """The MLflow runs of each experiments file → ``tables.out_dir/table{N}.{md,tex,csv}`` (method §12).

    ``pipeline_metrics`` (evaluate's metrics.json of a ``dvc repro``) adds this pipeline's own result as
    the rows its params reproduce. ``save_runs``: also write the run rows the tables came from (the
    logging contract's columns) as CSV; ``runs_csv``: build from such files instead of MLflow (several:
    the rows of several stores, e.g. a sweep finished in a second store; the latest run of a seed wins).
    """
    import pandas as pd

    from wsfcn.experiments import load_experiment
    from wsfcn.report.param_counts import paper_param_counts
    from wsfcn.report.tables import experiment_table, pipeline_runs
    from wsfcn.report.writers import write_table

    loaded = [load_experiment(p) for p in (experiments or params.tables.experiments)]
    if runs_csv:
        from wsfcn.report.tables import read_runs_csv

        files = [runs_csv] if isinstance(runs_csv, (str, Path)) else runs_csv
        runs = pd.concat([read_runs_csv(f) for f in files], ignore_index=True)
    else:
        runs = read_runs(params.tracking.uri, [e.name for e in loaded])
    if pipeline_metrics:
        path = Path(pipeline_metrics)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (run the evaluate stage first)")
        from wsfcn.data.ids import read_json

        metrics, flat = read_json(path, "metrics file"), flatten(params)
        if isinstance(metrics, dict) and metrics.get("subset"):
            from wsfcn.errors import InputError

            raise InputError(
                f"{path} scores a subset ({metrics.get('num_images')} of {metrics.get('split_size')} images, "
                "infer.max_images): not a number for a table; re-run infer with infer.max_images=0"
            )
        extra = [pipeline_runs(e, flat, metrics, path.stat().st_mtime) for e in loaded]
        frames = [f for f in (runs, *extra) if not f.empty]
        runs = pd.concat(frames, ignore_index=True) if frames else runs
    built = [experiment_table(e, runs, setting, paper_param_counts(e, params_path)) for e in loaded]
    paths = [p for table in built for p in write_table(table, params.tables.out_dir)]
    if save_runs:
        from wsfcn.report.tables import contract_columns

        Path(save_runs).parent.mkdir(parents=True, exist_ok=True)
        contract_columns(runs).to_csv(save_runs, index=False)
        paths.append(Path(save_runs))
    return TablesResult(built, paths)
