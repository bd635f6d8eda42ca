"""Trainable parameter counts of an experiments file's runs (method §11: the Params column of Tables I/II)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from wsfcn.data.classes import num_classes
from wsfcn.experiments import Experiment, load_experiment
from wsfcn.model import build_model, count_parameters


def count_experiment(
    experiment_path: str | Path, setting: str, base: str | Path | None, overrides: dict | None = None
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


def paper_param_counts(experiment: Experiment, params_path: str | Path | None) -> dict[str, int] | None:
    """Trainable parameters per run at the paper setting, if the paper gives Params and the model builds."""
    if "paper" not in experiment.settings or not any(
        "params_m" in (v or {}) for v in experiment.paper.values()
    ):
        return None
    try:
        return count_experiment(experiment.path, "paper", params_path)
    except Exception as err:  # the table then shows "–" for our Params, never a guess
        print(f"tables: cannot count parameters of {experiment.path}: {err!r}", file=sys.stderr)
        return None
