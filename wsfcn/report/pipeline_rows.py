"""The ``dvc repro`` result as run rows: which rows of an experiment file the pipeline's params reproduce."""

from __future__ import annotations

import pandas as pd

from wsfcn.experiments import Experiment
from wsfcn.report.contract import (
    CHECKPOINT_TAG,
    MAX_IMAGES,
    TAG_COLUMNS,
    TRAINED_BY_SWEEP_TAG,
    provenance_key,
)
from wsfcn.report.runs import empty_runs

# What decides the numbers of a checkpoint that was not trained here: the data it is scored on and how.
EVALUATION_KEYS = ("data.name", "infer.", "eval.")


def matching_runs(
    experiment: Experiment, flat_params: dict[str, object], only: tuple[str, ...] | None = None
) -> list[tuple[str, str]]:
    """``[(run, setting)]`` of ``experiment`` whose every override (common + setting + run) holds in
    ``flat_params`` (``wsfcn.params_coerce.flatten`` of the pipeline's params); the paper setting is
    tried first.
    ``only``: compare just the keys that start with these prefixes (:data:`EVALUATION_KEYS` for a
    given checkpoint, whose network and training are its own, not the params')."""
    from wsfcn.params_coerce import flatten
    from wsfcn.params_yaml import load_params

    found = []
    for run in experiment.runs:
        for setting in sorted(experiment.settings, key=lambda s: s != "paper") or [None]:
            overrides = experiment.overrides(run, setting)
            wanted = flatten(load_params(None, overrides)) if overrides else {}
            keys = [k for k in _override_keys(overrides, wanted) if only is None or k.startswith(only)]
            if all(flat_params.get(key) == wanted[key] for key in keys):
                found.append((run, setting or "embedded"))
                break
    return found


def _override_keys(overrides: dict[str, object], wanted: dict[str, object]) -> list[str]:
    """The flattened keys an override mapping sets (a section override sets all its keys)."""
    return [k for k in wanted if any(k == o or k.startswith(o + ".") for o in overrides)]


def pipeline_runs(
    experiment: Experiment, flat_params: dict[str, object], metrics: dict, start_time: float
) -> pd.DataFrame:
    """The ``dvc repro`` result (``metrics.json`` of the evaluate stage, mIoU/PixAcc in percent) as run
    rows of ``experiment`` for each run it reproduces, shaped like the logged runs (logging contract).

    A result from a converted checkpoint (``provenance`` in metrics.json) is a given-checkpoint row, on
    the runs whose evaluation keys (:data:`EVALUATION_KEYS`) it matches."""
    provenance = metrics.get("provenance") or {}
    given = {
        f"tags.{TRAINED_BY_SWEEP_TAG}": "false",
        f"tags.{CHECKPOINT_TAG}": str(flat_params.get("infer.checkpoint", "")),
        **{f"tags.{CHECKPOINT_TAG}.{provenance_key(k)}": str(v) for k, v in provenance.items()},
    }
    rows = [
        {
            "run_id": "dvc-pipeline",
            "status": "FINISHED",
            "start_time": pd.Timestamp(start_time, unit="s", tz="UTC"),
            TAG_COLUMNS["experiment"]: experiment.name,
            TAG_COLUMNS["run"]: run,
            TAG_COLUMNS["setting"]: setting,
            TAG_COLUMNS["seed"]: str(flat_params["train.seed"]),
            TAG_COLUMNS["dataset"]: flat_params["data.name"],
            "metrics.mIoU": metrics.get("mIoU"),
            "metrics.PixAcc": metrics.get("PixAcc"),
            MAX_IMAGES: str(flat_params.get("infer.max_images", 0)),
            **(given if provenance else {}),
        }
        for run, setting in matching_runs(experiment, flat_params, EVALUATION_KEYS if provenance else None)
    ]
    return pd.DataFrame(rows) if rows else empty_runs()
