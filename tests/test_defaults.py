"""One source of truth for defaults: the dataclasses of wsfcn/config.py hold the paper's setting, and
every key where params.yaml (the embedded benchmark) departs from them is listed with its reason."""

from __future__ import annotations

from pathlib import Path

from wsfcn.config import EMBEDDED_DIFFERS, LossParams, ModelParams, Params
from wsfcn.params_coerce import flatten
from wsfcn.params_yaml import load_params

ROOT = Path(__file__).resolve().parents[1]


def test_params_yaml_differs_from_the_defaults_only_where_listed():
    defaults, shipped = flatten(Params()), flatten(load_params(ROOT / "params.yaml"))
    differing = {k for k in defaults if defaults[k] != shipped[k]}
    unexplained = {k: (defaults[k], shipped[k]) for k in differing - set(EMBEDDED_DIFFERS)}
    assert unexplained == {}, (
        "params.yaml differs from wsfcn/config.py here without a reason in EMBEDDED_DIFFERS"
    )
    stale = set(EMBEDDED_DIFFERS) - differing
    assert stale == set(), "EMBEDDED_DIFFERS lists keys that no longer differ"
    assert all(len(reason) > 10 for reason in EMBEDDED_DIFFERS.values())


def test_self_training_numbers_come_from_the_loss_params():
    from wsfcn.model import self_training
    from wsfcn.model.wsfcn import SelfTraining

    assert SelfTraining() == self_training(ModelParams(), LossParams())
