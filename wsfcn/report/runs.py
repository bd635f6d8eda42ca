"""Run frames: the columns of the logging contract, and their CSV form (``pipeline/tables.py --save-runs``).

A run frame is shaped like ``mlflow.search_runs`` (``wsfcn.integrations.mlflow_query``), so tests can
feed hand-made rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from wsfcn.report.contract import MAX_IMAGES, METRICS, TAG_COLUMNS


def empty_runs() -> pd.DataFrame:
    """A run frame with the contract's columns and no rows."""
    columns = ["run_id", "status", *TAG_COLUMNS.values(), *(f"metrics.{m}" for m in (*METRICS, "n_params"))]
    return pd.DataFrame(columns=columns)


def contract_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """The columns of a run frame that the tables read (run id, status, start time, ``tags.wsfcn*``,
    the metrics, ``infer.max_images``, the run name), rows sorted by experiment, run and seed."""
    keep = ["run_id", "status", "start_time", "tags.mlflow.runName", MAX_IMAGES]
    keep += [c for c in runs.columns if c.startswith("tags.wsfcn")]
    keep += [f"metrics.{m}" for m in (*METRICS, "n_params")]
    frame = runs[[c for c in dict.fromkeys(keep) if c in runs.columns]]
    order = [c for c in (*TAG_COLUMNS.values(), "start_time") if c in frame.columns]
    return frame.sort_values(order, kind="stable") if order else frame


def read_runs_csv(path: str | Path) -> pd.DataFrame:
    """A run frame written by :func:`contract_columns` (``pipeline/tables.py --save-runs``); tags as text."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (write it with pipeline/tables.py --save-runs)")
    frame = pd.read_csv(path, dtype=str)
    for column in [c for c in frame.columns if c.startswith("metrics.")]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
