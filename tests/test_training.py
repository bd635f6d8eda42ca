"""Training loop: optimiser groups, PRETRAIN switch, steps, selection, resume, NaN stop, kill -9."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.tiny import prepare_tiny_data, training_params
from torch import nn

import wsfcn.model
from wsfcn.checkpoints import load_checkpoint
from wsfcn.model import WSFCNTrainOutput, build_model
from wsfcn.model.backbones.mini import MiniResNet
from wsfcn.train.loop import NonFiniteLossError, fit, select_best, step_loss, train_one_epoch
from wsfcn.train.optim import build_optimizer, parameter_groups
from wsfcn.train.runtime import Runtime, collate_by_size, mean_average_precision

ROOT = Path(__file__).resolve().parents[1]
CPU = Runtime(torch.device("cpu"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepare_tiny_data(tmp_path_factory.mktemp("tiny"))


# ---------------------------------------------------------------------------------------------
# pieces
def test_parameter_groups_follow_method_6_1():
    params = training_params({}, Path("unused"))
    model = build_model(params.model, 9, params.loss)
    groups = parameter_groups(model, lr=1e-3, weight_decay=5e-4, head_lr_mult=20, head_bias_lr_mult=40)
    by_name = {g["name"]: g for g in groups}
    assert (
        by_name["head_weight"]["lr"] == pytest.approx(2e-2) and by_name["head_weight"]["weight_decay"] == 5e-4
    )
    assert by_name["head_bias"]["lr"] == pytest.approx(4e-2) and by_name["head_bias"]["weight_decay"] == 0.0
    assert by_name["backbone_weight"]["lr"] == pytest.approx(1e-3)
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(
        trainable
    )  # every trainable parameter exactly once, frozen ones left out
    head = {id(p) for m in model.new_layers() for p in m.parameters()}
    assert {id(p) for p in by_name["head_bias"]["params"]} <= head
    model.stray = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="stray.weight"):
        build_optimizer(
            model, lr=1e-3, momentum=0.9, weight_decay=5e-4, head_lr_mult=10, head_bias_lr_mult=20
        )


def test_step_loss_pretrain_switch():
    cls, mask = torch.tensor(0.5), torch.tensor(0.25)
    assert step_loss(cls, mask, use_mask=False, mask_weight=2.0).item() == 0.5
    assert step_loss(cls, mask, use_mask=True, mask_weight=2.0).item() == 1.0


def test_mean_average_precision_by_hand():
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    # class 0: hits at ranks 1 and 3 -> (1/1 + 2/3) / 2; class 1 has no positive and is skipped
    assert mean_average_precision(scores, labels) == pytest.approx((1 + 2 / 3) / 2)


def test_collate_by_size_keeps_order():
    items = [{"image": torch.zeros(3, h, 4), "id": str(i)} for i, h in enumerate([4, 5, 4])]
    groups = collate_by_size(items)
    assert [g["id"] for g in groups] == [["0", "2"], ["1"]]
    assert groups[0]["image"].shape == (2, 3, 4, 4)


def test_select_waits_for_pretrain_and_prefers_later_ties():
    class Fake:
        params = training_params({}, Path("x"), train__pretrain_epochs=2)
        state = {"best_epoch": None, "best_score": None}

    def pick(f, entry):
        return select_best(f.state, entry, f.params.train)

    f = Fake()
    assert not pick(f, {"epoch": 2, "val_mIoU": 0.9, "val_loss": 0.1})  # still PRETRAIN
    assert pick(f, {"epoch": 3, "val_mIoU": 0.5, "val_loss": 0.1})
    assert not pick(f, {"epoch": 4, "val_mIoU": 0.4, "val_loss": 0.1})
    assert pick(f, {"epoch": 5, "val_mIoU": 0.5, "val_loss": 0.1}) and f.state["best_epoch"] == 5
    assert not pick(f, {"epoch": 6, "loss": 1.0})  # not validated
    f.params = training_params({}, Path("x"), train__pretrain_epochs=0, train__select_by="val_loss")
    f.state = {"best_epoch": None, "best_score": None}
    entry = {"epoch": 1, "val_mIoU": 0.0, "val_loss": 0.25}
    assert pick(f, entry) and entry["val_score"] == pytest.approx(0.75)


class StubNet(nn.Module):
    """WSFCN-shaped stand-in whose mask loss is never zero (the real one can gate every image out)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.3]))
        self.bn = nn.BatchNorm1d(1).eval()

    def forward(self, images, images_raw=None, labels=None):
        s = images.mean((1, 2, 3))[:, None] * self.w + self.w
        scores = s.expand(-1, labels.shape[1])
        loss_cls = nn.functional.multilabel_soft_margin_loss(scores, labels)
        loss_mask = ((self.w - 1.0) ** 2).sum()
        return WSFCNTrainOutput(scores, None, None, None, None, loss_cls, loss_mask)


def test_train_one_epoch_uses_mask_loss_only_after_pretrain():
    batches = [
        {
            "image": torch.randn(2, 3, 4, 4),
            "image_raw": torch.rand(2, 3, 4, 4),
            "labels": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        }
        for _ in range(2)
    ]
    for use_mask in (False, True):
        net = StubNet()
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        stats = train_one_epoch(net, batches, opt, epoch=1, use_mask=use_mask, mask_weight=2.0, rt=CPU)
        assert stats["steps"] == 2 and stats["loss_mask"] > 0
        expected = stats["loss_cls"] + (2.0 * stats["loss_mask"] if use_mask else 0.0)
        assert stats["loss"] == pytest.approx(expected)
        assert net.w.item() != 0.3 and math.isfinite(net.w.item())


# ---------------------------------------------------------------------------------------------
# the real model on tiny synthetic data
def test_two_real_steps_then_resume_changes_weights(data, tmp_path, monkeypatch):
    monkeypatch.setattr(MiniResNet, "freeze_bn", True)  # as ResNet-38: backbone BNs frozen in eval mode
    params = training_params(data, tmp_path, train__epochs=1)
    reports = []
    first = fit(params, report=reports.append, quiet=True)
    assert reports[0]["n_params"] == first.n_params > 0 and reports[0]["world_size"] == 1  # in-process
    entry = first.history[0]
    assert entry["steps"] == 2 and all(math.isfinite(entry[k]) for k in ("loss", "loss_cls", "loss_mask"))
    assert entry["loss"] == pytest.approx(entry["loss_cls"])  # epoch 1 is PRETRAIN: no mask loss
    assert 0.0 <= entry["val_mIoU"] <= 1.0 and Path(reports[-1]["figure"]).is_file()
    before = load_checkpoint(first.last)["model"]
    first.best.unlink()  # as if killed between writing last.pt and linking best.pt
    again = fit(params, report=reports.append, quiet=True)
    assert again.resumed_from == 1 and load_checkpoint(again.best)["epoch"] == 1
    second = fit(training_params(data, tmp_path, train__epochs=2), report=reports.append, quiet=True)
    assert second.resumed_from == 1 and [e["epoch"] for e in second.history] == [1, 2]
    after = load_checkpoint(second.last)["model"]
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert any(k.startswith("decoder") for k in changed)
    frozen_bn = [k for k in before if k.startswith("backbone") and k.endswith("running_mean")]
    assert frozen_bn and all(torch.equal(before[k], after[k]) for k in frozen_bn)  # frozen BNs stay in eval
    assert second.best_epoch == 2 and load_checkpoint(second.best)["epoch"] == 2


@pytest.mark.slow  # three fits: 26 s on 2 cores
def test_resumed_run_equals_uninterrupted_run(data, tmp_path):
    full = fit(
        training_params(data, tmp_path / "a", train__deterministic=True), report=lambda m: None, quiet=True
    )
    fit(
        training_params(data, tmp_path / "b", train__deterministic=True, train__epochs=1),
        report=lambda m: None,
        quiet=True,
    )
    resumed = fit(
        training_params(data, tmp_path / "b", train__deterministic=True), report=lambda m: None, quiet=True
    )
    assert resumed.resumed_from == 1
    a, b = load_checkpoint(full.last)["model"], load_checkpoint(resumed.last)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data, tmp_path, monkeypatch):
    real_build = wsfcn.model.build_model
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        model = real_build(*args, **kwargs)
        forward = model.forward

        def bad_forward(images, images_raw=None, labels=None):
            out = forward(images, images_raw=images_raw, labels=labels)
            if torch.is_grad_enabled():
                calls["n"] += 1
                if calls["n"] == 4:  # epoch 2, step 1
                    out = out._replace(loss_cls=out.loss_cls * float("nan"))
            return out

        model.forward = bad_forward
        return model

    monkeypatch.setattr(wsfcn.model, "build_model", poisoned)
    params = training_params(data, tmp_path, train__epochs=3)
    with pytest.raises(
        NonFiniteLossError, match=r"epoch 2 step 1.*last good checkpoint: .*last.pt \(epoch 1\)"
    ):
        fit(params, report=lambda m: None, quiet=True)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_and_finishes(data, tmp_path):
    sets = {
        **data,
        "train.out_dir": str(tmp_path / "run"),
        "train.epochs": 4,
        "train.max_steps_per_epoch": 4,
        "train.deterministic": True,
    }
    from helpers.tiny import TINY

    args = [sys.executable, str(ROOT / "pipeline" / "train.py"), "--quiet"]
    for k, v in {**TINY, **sets}.items():
        args += ["--set", f"{k}={v}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    last = tmp_path / "run" / "last.pt"
    deadline = time.time() + 60
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(last)["epoch"]
    assert 1 <= killed_at < 4
    rerun = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    state = load_checkpoint(last)
    assert state["epoch"] == 4 and state["metrics"]["resumed_from"] == killed_at
    assert [e["epoch"] for e in state["metrics"]["history"]] == [1, 2, 3, 4]
    assert (tmp_path / "run" / "history.csv").read_text().count("\n") == 5
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the subprocess ran with OMP_NUM_THREADS=1: same reduction order
    try:
        ref = fit(
            training_params(
                data,
                tmp_path / "ref",
                train__epochs=4,
                train__max_steps_per_epoch=4,
                train__deterministic=True,
            ),
            report=lambda m: None,
            quiet=True,
        )
    finally:
        torch.set_num_threads(threads)
    expected = load_checkpoint(ref.last)["model"]
    assert all(torch.equal(expected[k], state["model"][k]) for k in expected)
