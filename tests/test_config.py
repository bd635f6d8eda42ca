"""params.yaml and experiments/*.yaml load; bad keys, types and choices fail with clear messages."""

from pathlib import Path

import pytest
import yaml

from wsfcn.config import ConfigError, Params
from wsfcn.experiments import load_experiment
from wsfcn.params_coerce import flatten
from wsfcn.params_yaml import load_params, parse_overrides

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))


def test_params_yaml_loads_and_is_complete():
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params, Params)
    raw_keys = set(flatten_yaml(yaml.safe_load((ROOT / "params.yaml").read_text())))
    schema_keys = set(flatten(params))
    # every schema key is written in params.yaml, so DVC tracks and `dvc exp run -S` can set it
    assert schema_keys == raw_keys, f"params.yaml lacks {sorted(schema_keys - raw_keys)}"


def flatten_yaml(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flatten_yaml(value, f"{prefix}{key}.")
        else:
            yield prefix + key


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_every_experiment_run_loads(path):
    experiment = load_experiment(path)
    assert experiment.runs
    for run in experiment.runs:
        for setting in [None, *experiment.settings]:
            experiment.params(run, setting, base=ROOT / "params.yaml")


def test_override_parsing_and_types():
    params = load_params(
        None,
        [
            "model.context=ppm",
            "train.epochs=3",
            "train.pretrain_epochs=1",
            "infer.scales=[1, 0.5]",
            "train.lr=1e-2",
        ],
    )
    assert params.model.context == "ppm"
    assert params.train.epochs == 3
    assert params.infer.scales == (1.0, 0.5)
    assert params.train.lr == pytest.approx(0.01)


def test_unknown_key_names_key_and_allowed():
    with pytest.raises(ConfigError, match=r"unknown key 'model.contxt'.*context"):
        load_params(None, {"model.contxt": "fca"})


def test_bad_choice_lists_choices():
    with pytest.raises(
        ConfigError, match=r"model.context='psp'.*\['aspp', 'fca', 'ppm', 'nonlocal', 'largeconv'\]"
    ):
        load_params(None, {"model.context": "psp"})


def test_wrong_type_named():
    with pytest.raises(ConfigError, match=r"train.epochs must be an integer, got 'ten'"):
        load_params(None, {"train.epochs": "ten"})
    with pytest.raises(ConfigError, match=r"infer.flip must be true or false"):
        load_params(None, {"infer.flip": 1})


def test_section_given_a_value():
    with pytest.raises(ConfigError, match="model"):
        load_params(None, {"model": 3})


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["model.context"])


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")


def test_experiment_merge_order(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(
        "caption: x\ncommon: {train.epochs: 2, train.pretrain_epochs: 1}\n"
        "settings: {paper: {train.epochs: 30, model.backbone: resnet38}}\n"
        "runs: {a: {train.epochs: 5}, b: {}}\n"
    )
    experiment = load_experiment(path)
    assert experiment.params("a", "paper", base=None).train.epochs == 5
    assert experiment.params("b", "paper", base=None).train.epochs == 30
    assert experiment.params("b", None, base=None).train.epochs == 2
    with pytest.raises(ConfigError, match="no run 'c'"):
        experiment.overrides("c")
    with pytest.raises(ConfigError, match="no setting 'gpu'"):
        experiment.overrides("a", "gpu")


@pytest.mark.parametrize("value", ["[3,6]", "[0,6,9]"])
def test_bad_context_dilations_named(value):
    with pytest.raises(ConfigError, match=r"model\.context_dilations"):
        load_params(None, [f"model.context_dilations={value}"])
    assert load_params(None, ["model.context_dilations=[3,6,9]"]).model.context_dilations == (3, 6, 9)


def test_setting_runs_apply_to_one_run_at_one_setting(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(
        "caption: x\nsettings: {paper: {train.head_lr_mult: 20.0}, embedded: {}}\n"
        "runs: {baseline: {model.fusion: baseline}, full: {}}\n"
        "setting_runs: {paper: {baseline: {train.head_lr_mult: 10.0}},\n"
        "               embedded: {baseline: {train.head_lr_mult: 0.5}}}\n"
    )
    experiment = load_experiment(path)
    assert experiment.params("baseline", "paper", base=None).train.head_lr_mult == 10.0
    assert experiment.params("full", "paper", base=None).train.head_lr_mult == 20.0
    assert experiment.params("baseline", "embedded", base=None).train.head_lr_mult == 0.5
    assert "train.head_lr_mult" not in experiment.overrides("full", "embedded")
    assert "train.head_lr_mult" not in experiment.overrides("baseline")  # no setting: no setting_runs
    path.write_text("caption: x\nsettings: {paper: {}}\nruns: {a: {}}\nsetting_runs: {paper: {b: {}}}\n")
    with pytest.raises(ConfigError, match="setting_runs.paper names run 'b'"):
        load_experiment(path)
    path.write_text("caption: x\nsettings: {paper: {}}\nruns: {a: {}}\nsetting_runs: {gpu: {a: {}}}\n")
    with pytest.raises(ConfigError, match="setting_runs names setting 'gpu'"):
        load_experiment(path)
