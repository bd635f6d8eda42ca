"""Checkpoints: atomic writes, weights_only round trip, RNG states, resume choice, load_model."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from wsfcn.checkpoints import (
    CheckpointError,
    capture_rng_state,
    link_or_copy,
    load_checkpoint,
    load_model,
    newest_resumable,
    restore_rng_state,
    save_checkpoint,
)
from wsfcn.model import build_model
from wsfcn.params_coerce import to_dict
from wsfcn.params_io import fingerprint
from wsfcn.params_yaml import load_params

PARAMS = load_params(None, {"model.head_channels": 32, "data.name": "synthetic"})


def _tiny() -> tuple[nn.Module, torch.optim.Optimizer]:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 5, 5)).sum().backward()
    opt.step()  # momentum buffers exist
    return model, opt


def test_round_trip_weights_only(tmp_path):
    model, opt = _tiny()
    path = save_checkpoint(
        tmp_path / "c.pt",
        model=model,
        optimizer=opt,
        epoch=3,
        params=PARAMS,
        rng_state=capture_rng_state(),
        metrics={"history": [{"epoch": 3, "loss": 0.5}]},
        num_classes=9,
    )
    state = load_checkpoint(path)  # weights_only=True inside
    assert state["epoch"] == 3 and state["num_classes"] == 9
    assert state["params"] == to_dict(PARAMS)
    assert state["metrics"]["history"][0]["loss"] == 0.5
    for k, v in model.state_dict().items():
        assert torch.equal(state["model"][k], v)
    restored = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    restored.load_state_dict(state["optimizer"])
    buf = next(iter(restored.state.values()))["momentum_buffer"]
    assert torch.equal(buf, next(iter(opt.state.values()))["momentum_buffer"])
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    model, _ = _tiny()
    path = save_checkpoint(tmp_path / "c.pt", model=model, epoch=1, params=PARAMS)

    def crash(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model=model, epoch=2, params=PARAMS)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert not list(tmp_path.glob(".*tmp*"))


def test_bad_files_raise_naming_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    truncated = tmp_path / "trunc.pt"
    model, _ = _tiny()
    save_checkpoint(truncated, model=model, epoch=1, params=PARAMS)
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="trunc.pt"):
        load_checkpoint(truncated)
    other = tmp_path / "other.pt"
    torch.save({"a": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="not a wsfcn checkpoint"):
        load_checkpoint(other)


def test_rng_state_restores_every_generator():
    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    restore_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert first[2] == again[2]


def test_fingerprint_ignores_only_resume_neutral_keys():
    base = fingerprint(PARAMS)
    same = load_params(
        None,
        {
            "model.head_channels": 32,
            "train.epochs": 99,
            "train.out_dir": "/x",
            "tracking.enabled": False,
            "train.num_workers": 2,
        },
    )
    assert fingerprint(same) == base
    assert fingerprint(load_params(None, {"model.head_channels": 32, "train.lr": 0.01})) != base
    assert fingerprint(to_dict(PARAMS)) == base
    rel = load_params(None, {"model.head_channels": 32, "model.pretrained": "w/r38.pth"})
    assert fingerprint(rel) == fingerprint(
        load_params(None, {"model.head_channels": 32, "model.pretrained": "/abs/w/r38.pth"})
    )


def test_newest_resumable_picks_latest_matching(tmp_path):
    model, _ = _tiny()
    other = load_params(None, {"train.lr": 0.5})
    a = save_checkpoint(tmp_path / "a.pt", model=model, epoch=2, params=PARAMS, code_fingerprint="c0de")
    b = save_checkpoint(tmp_path / "b.pt", model=model, epoch=5, params=PARAMS, code_fingerprint="c0de")
    c = save_checkpoint(tmp_path / "c.pt", model=model, epoch=9, params=other, code_fingerprint="c0de")
    e = save_checkpoint(tmp_path / "e.pt", model=model, epoch=7, params=PARAMS, code_fingerprint="beef")
    broken = tmp_path / "d.pt"
    broken.write_bytes(b"garbage")
    everything = [a, broken, b, c, e, tmp_path / "none.pt"]
    path, state = newest_resumable(everything, fingerprint(PARAMS), code="c0de")
    assert path == b and state["epoch"] == 5  # e has more epochs but other training code
    assert newest_resumable(everything, fingerprint(PARAMS), code="beef")[0] == e
    assert newest_resumable([c], fingerprint(PARAMS), code="c0de") is None


def test_resume_refusal_names_what_changed(tmp_path):
    from wsfcn.checkpoints import load_checkpoint, resume_refusal

    model, _ = _tiny()
    path = save_checkpoint(tmp_path / "last.pt", model=model, epoch=2, params=PARAMS, code_fingerprint="c0de")
    state, want = load_checkpoint(path), fingerprint(PARAMS)
    assert resume_refusal(state, want, "c0de", "last.pt") == ""
    assert resume_refusal(state, want, "beef", "last.pt") == (
        "training code changed since last.pt (fingerprint c0de → beef)"
    )
    assert resume_refusal(state, "0123", "c0de", "last.pt").startswith("params changed since last.pt")
    old = save_checkpoint(tmp_path / "old.pt", model=model, epoch=2, params=PARAMS)  # no code recorded
    assert "records no training-code fingerprint" in resume_refusal(load_checkpoint(old), want, "c0de", "x")


def test_link_or_copy_is_a_snapshot(tmp_path):
    model, _ = _tiny()
    last = save_checkpoint(tmp_path / "last.pt", model=model, epoch=1, params=PARAMS)
    best = link_or_copy(last, tmp_path / "best.pt")
    save_checkpoint(last, model=model, epoch=2, params=PARAMS)  # replaced by rename
    assert load_checkpoint(best)["epoch"] == 1 and load_checkpoint(last)["epoch"] == 2


def test_load_model_rebuilds_and_matches(tmp_path):
    model = build_model(PARAMS.model, 9, PARAMS.loss).eval()
    path = save_checkpoint(tmp_path / "m.pt", model=model, epoch=1, params=PARAMS, num_classes=9)
    loaded, params = load_model(path)
    assert params == PARAMS and not loaded.training
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x), strict=True):
            assert torch.equal(a, b)
    state = load_checkpoint(path)
    state["model"].pop(next(iter(state["model"])))
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path / "bad.pt")
