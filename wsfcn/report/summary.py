"""Statistics over seeds: each run's mean, sample standard deviation and count of its metrics."""

from __future__ import annotations

import math

import pandas as pd

from wsfcn.report.contract import METRICS, TAG_COLUMNS


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run: ``<metric>_mean/_std/_n`` over seeds and ``n_params`` (mean); indexed by run name."""
    frame = runs.copy()
    try:
        frame["seed"] = frame[TAG_COLUMNS["seed"]].astype(int)
    except (TypeError, ValueError) as err:
        raise ValueError(f"tag wsfcn.seed must be an integer in every run: {err}") from err
    if "start_time" in frame.columns:
        frame = frame.sort_values("start_time", kind="stable")
    frame = frame.drop_duplicates([TAG_COLUMNS["run"], "seed"], keep="last")
    for metric in (*METRICS, "n_params"):
        column = f"metrics.{metric}"
        frame[metric] = pd.to_numeric(frame[column], errors="coerce") if column in frame else math.nan
    _check_percent(frame)
    grouped = frame.groupby(TAG_COLUMNS["run"])
    out = pd.DataFrame(index=pd.Index(sorted(grouped.groups), name="run"))
    for metric in METRICS:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std(ddof=1)
        out[f"{metric}_n"] = grouped[metric].count()
    out["n_params"] = grouped["n_params"].mean()
    return out


def _check_percent(frame: pd.DataFrame) -> None:
    for metric in METRICS:
        bad = frame[(frame[metric] < 0) | (frame[metric] > 100)]
        if metric == "PixAcc":  # PixAcc <= 1 % cannot happen with a background class: a fraction
            bad = pd.concat([bad, frame[frame[metric] <= 1.0]])
        if not bad.empty:
            row = bad.iloc[0]
            raise ValueError(
                f"run {row.get('run_id', '?')} ({row[TAG_COLUMNS['run']]}): {metric}={row[metric]} is not a "
                "percentage in (1, 100]; the logging contract wants percent (wsfcn/report/contract.py)"
            )
