"""The embedded-only schedule (``train.lr_schedule: poly``) and selection (``train.select_by: last``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.tiny import prepare_tiny_data, training_params

from wsfcn.config import ConfigError, TrainParams
from wsfcn.experiments import experiment_run_params
from wsfcn.train.loop import fit, select_best
from wsfcn.train.optim import lr_factor

ROOT = Path(__file__).resolve().parents[1]


def factor(schedule, epoch, step, *, steps=10, pretrain=3, epochs=10, power=0.9, decay=0):
    return lr_factor(
        schedule,
        power=power,
        epoch=epoch,
        step=step,
        steps_per_epoch=steps,
        pretrain_epochs=pretrain,
        epochs=epochs,
        decay_epochs=decay,
    )


def test_constant_is_one_everywhere():
    assert {factor("constant", e, s) for e in range(1, 11) for s in range(10)} == {1.0}


def test_poly_holds_through_pretrain_then_decays_to_near_zero():
    assert {factor("poly", e, s) for e in (1, 2, 3) for s in range(10)} == {1.0}
    decayed = [factor("poly", e, s) for e in range(4, 11) for s in range(10)]
    assert decayed[0] == 1.0
    assert all(a > b for a, b in zip(decayed, decayed[1:], strict=False)), "strictly decreasing"
    assert decayed[-1] == pytest.approx((1 / 70) ** 0.9)
    assert factor("poly", 7, 5, power=1.0) == pytest.approx(1 - 35 / 70)


def test_poly_decay_epochs_hold_the_rate_until_the_last_epochs():
    held = [factor("poly", e, s, decay=4) for e in range(1, 7) for s in range(10)]
    assert set(held) == {1.0}, "epochs 1-6 of 10 run at the full rate"
    decayed = [factor("poly", e, s, decay=4) for e in range(7, 11) for s in range(10)]
    assert decayed[0] == 1.0 and all(a > b for a, b in zip(decayed, decayed[1:], strict=False))
    assert decayed[-1] == pytest.approx((1 / 40) ** 0.9)
    assert factor("poly", 9, 0, power=1.0, decay=4) == pytest.approx(1 - 20 / 40)
    # longer than the self-training phase: the decay starts when PRETRAIN ends, as with 0
    assert factor("poly", 5, 3, decay=99) == factor("poly", 5, 3, decay=0) < 1.0
    assert factor("constant", 10, 9, decay=4) == 1.0


def test_lr_decay_epochs_must_not_be_negative():
    with pytest.raises(ConfigError, match="train.lr_decay_epochs"):
        TrainParams(lr_decay_epochs=-1)


def test_lr_power_must_be_positive():
    with pytest.raises(ConfigError, match="train.lr_power"):
        TrainParams(lr_power=0.0)


def test_select_last_keeps_every_self_training_epoch_without_val():
    tp = TrainParams(epochs=4, pretrain_epochs=2, select_by="last")
    state = {"best_epoch": None, "best_score": None}
    assert not select_best(state, {"epoch": 2, "val_mIoU": 0.9}, tp)
    assert select_best(state, {"epoch": 3, "val_mIoU": 0.8}, tp) and state["best_epoch"] == 3
    assert select_best(state, {"epoch": 4, "val_mIoU": 0.5}, tp), "a worse val mIoU is kept all the same"
    assert state == {"best_epoch": 4, "best_score": 0.5}
    assert select_best(state, {"epoch": 5}, tp) and state["best_score"] is None


def test_paper_setting_keeps_the_authors_schedule_and_selection():
    table1, base = ROOT / "experiments/table1_ablation.yaml", ROOT / "params.yaml"
    params, _ = experiment_run_params(table1, "full", "paper", base, {})
    assert (params.train.lr_schedule, params.train.select_by) == ("constant", "miou")
    embedded, _ = experiment_run_params(table1, "full", "embedded", base, {})
    assert (embedded.train.lr_schedule, embedded.train.select_by) == ("poly", "last")


@pytest.mark.slow  # a 3-epoch fit per case: 24-30 s on 2 cores
@pytest.mark.parametrize("decay_epochs", [0, 1])
def test_poly_fit_sets_the_decayed_rate_and_keeps_pretrain_weights(tmp_path, decay_epochs):
    data = prepare_tiny_data(tmp_path / "data")
    sets = dict(train__epochs=3, train__pretrain_epochs=1, train__lr_schedule="poly", train__select_by="last")
    params = training_params(data, tmp_path, train__lr_decay_epochs=decay_epochs, **sets)
    fit(params, report=lambda entry: None, quiet=True)
    out = Path(params.train.out_dir)
    last = torch.load(out / "last.pt", weights_only=True, map_location="cpu")
    steps = last["metrics"]["history"][-1]["steps"]
    total = (1 if decay_epochs else 2) * steps  # decaying epochs: 2 and 3, or 3 alone; last step total - 1
    want = params.train.lr * (1 - (total - 1) / total) ** params.train.lr_power
    groups = last["optimizer"]["param_groups"]
    assert all(g["lr"] == pytest.approx(want * g["lr_mult"]) for g in groups)
    assert torch.load(out / "pretrain.pt", weights_only=True, map_location="cpu")["epoch"] == 1
    best = torch.load(out / "best.pt", weights_only=True, map_location="cpu")
    assert best["epoch"] == 3, "select_by last: best.pt is the last epoch"


@pytest.mark.slow  # two fits: 21 s on 2 cores
def test_ema_is_validated_checkpointed_and_loaded(tmp_path):
    from wsfcn.checkpoints import load_model

    data = prepare_tiny_data(tmp_path / "data")
    params = training_params(data, tmp_path, train__epochs=2, train__pretrain_epochs=1, train__ema_decay=0.5)
    fit(params, report=lambda entry: None, quiet=True)
    out = Path(params.train.out_dir)
    state = torch.load(out / "last.pt", weights_only=True, map_location="cpu")
    assert set(state["ema"]) == set(state["model"])
    name = next(k for k, v in state["model"].items() if v.is_floating_point() and v.numel() > 10)
    assert not torch.equal(state["ema"][name], state["model"][name]), "the average trails the weights"
    model, _ = load_model(out / "last.pt")
    assert torch.equal(model.state_dict()[name], state["ema"][name]), "inference gets the average"
    # the average is a side copy: the trained weights are those of the same run without it
    plain = training_params(data, tmp_path / "plain", train__epochs=2, train__pretrain_epochs=1)
    fit(plain, report=lambda entry: None, quiet=True)
    without = torch.load(Path(plain.train.out_dir) / "last.pt", weights_only=True, map_location="cpu")
    assert "ema" not in without
    assert all(torch.equal(without["model"][k], v) for k, v in state["model"].items())
    with pytest.raises(ConfigError, match="train.ema_decay"):
        TrainParams(ema_decay=1.0)
