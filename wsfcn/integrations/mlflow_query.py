"""Read runs back from MLflow as the run frame ``wsfcn.report.runs`` describes (the logging contract of
``wsfcn.report.contract``).

Uses an ``MlflowClient`` bound to ``uri`` (the global tracking URI is left alone) and pages through
every run of the named experiments. Missing experiments, or a sqlite file that does not exist yet, give
an empty frame: no database is created by reading.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from wsfcn.report.runs import empty_runs


def search_runs(uri: str, experiment_names: list[str]) -> pd.DataFrame:
    """All runs of the named MLflow experiments at tracking ``uri``, one row per run.

    Columns: ``run_id``, ``experiment_id``, ``status``, ``start_time`` (UTC), ``metrics.<name>``,
    ``params.<name>``, ``tags.<name>`` (as ``mlflow.search_runs``).
    """
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return empty_runs()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    ids = [
        e.experiment_id
        for name in dict.fromkeys(experiment_names)
        if (e := client.get_experiment_by_name(name))
    ]
    rows, token = [], None
    while ids:
        page = client.search_runs(ids, max_results=1000, page_token=token)
        rows += [_row(run) for run in page]
        token = page.token
        if not token:
            break
    return pd.DataFrame(rows) if rows else empty_runs()


def _row(run) -> dict[str, object]:
    info, data = run.info, run.data
    return {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "status": info.status,
        "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
        **{f"metrics.{k}": v for k, v in data.metrics.items()},
        **{f"params.{k}": v for k, v in data.params.items()},
        **{f"tags.{k}": v for k, v in data.tags.items()},
    }
